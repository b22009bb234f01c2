// Batch normalisation, the normalising step (both modes), one element per invocation:
//
//   y = (x − mean[c]) / sqrt(variance[c] + ε) · γ[c] + β[c]        c = i mod channels
//   y = max(y, 0)                                                   with the fused ReLU epilogue
//
// `mean` and `variance` are the batch's statistics (training, from batchnorm_stats.wgsl) or the running
// ones (inference). The subtraction comes first on purpose: folding everything into y = x·a + b with
// b = β − mean·a would cancel catastrophically when the mean is large and the variance small.
//
// γ and β are optional (Keras's scale=False, center=False); without them the TypeScript side binds a
// 16-byte placeholder that the overrides keep this kernel from reading.

override WG: u32 = 64u;
override HAS_GAMMA: bool = true;
override HAS_BETA: bool = true;
override RELU: bool = false;

struct Params {
  n: u32,
  channels: u32,
  epsilon: f32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// Storage is f32 or f16 (Elem, declared by the pipeline cache); the arithmetic is f32.
@group(0) @binding(1) var<storage, read> x: array<Elem>;
@group(0) @binding(2) var<storage, read> mean: array<Elem>;
@group(0) @binding(3) var<storage, read> variance: array<Elem>;
@group(0) @binding(4) var<storage, read> gamma: array<Elem>;
@group(0) @binding(5) var<storage, read> beta: array<Elem>;
@group(0) @binding(6) var<storage, read_write> y: array<Elem>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let c = i % p.channels;
  var v = (f32(x[i]) - f32(mean[c])) * inverseSqrt(f32(variance[c]) + p.epsilon);
  if (HAS_GAMMA) { v *= f32(gamma[c]); }
  if (HAS_BETA) { v += f32(beta[c]); }
  if (RELU) { v = max(v, 0.0); }
  y[i] = Elem(v);
}
