// Batch normalisation, the normalising step (both modes):
//
//   y = (x − mean[c]) / sqrt(variance[c] + ε) · γ[c] + β[c]        c = i mod channels
//   y = max(y, 0)                                                   with the fused ReLU epilogue
//
// `mean` and `variance` are the batch's statistics (training, from batchnorm_stats.wgsl) or the running
// ones (inference). The subtraction comes first on purpose: folding everything into y = x·a + b with
// b = β − mean·a would cancel catastrophically when the mean is large and the variance small.
//
// Two entry points:
//   main        one element per invocation, c = i mod channels: any channel count.
//   main_vec4   channels % 4 == 0: invocation t takes the vec4 of channels cg = t mod (channels/4) in RUN
//               consecutive rows (pixels), so it loads the statistics, γ and β once for RUN vec4s of x.
//               Adjacent invocations take adjacent vec4s of a row. The arithmetic is main's, in the same
//               order, so both entries give the same bits (batchnorm_backward.wgsl recomputes it for the
//               ReLU mask).
//
// γ and β are optional (Keras's scale=False, center=False); without them the TypeScript side binds a
// 16-byte placeholder that the overrides keep this kernel from reading.

override WG: u32 = 64u;
override HAS_GAMMA: bool = true;
override HAS_BETA: bool = true;
override RELU: bool = false;
override RUN: u32 = 16u;   // rows per invocation in main_vec4

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
// The same buffers seen as vec4 (main_vec4; a binding number may be reused across entry points).
@group(0) @binding(1) var<storage, read> x4: array<vec4<Elem>>;
@group(0) @binding(2) var<storage, read> mean4: array<vec4<Elem>>;
@group(0) @binding(3) var<storage, read> variance4: array<vec4<Elem>>;
@group(0) @binding(4) var<storage, read> gamma4: array<vec4<Elem>>;
@group(0) @binding(5) var<storage, read> beta4: array<vec4<Elem>>;
@group(0) @binding(6) var<storage, read_write> y4: array<vec4<Elem>>;

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

@compute @workgroup_size(WG)
fn main_vec4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * WG;
  let c4 = p.channels / 4u;
  let rows = p.n / p.channels;
  let cg = t % c4;
  let row0 = (t / c4) * RUN;
  if (row0 >= rows) { return; }
  let m = vec4f(mean4[cg]);
  let inv_std = inverseSqrt(vec4f(variance4[cg]) + p.epsilon);
  var g = vec4f(1.0);
  var b = vec4f(0.0);
  if (HAS_GAMMA) { g = vec4f(gamma4[cg]); }
  if (HAS_BETA) { b = vec4f(beta4[cg]); }
  for (var row = row0; row < min(row0 + RUN, rows); row++) {
    let i = row * c4 + cg;
    var v = (vec4f(x4[i]) - m) * inv_std;
    if (HAS_GAMMA) { v *= g; }
    if (HAS_BETA) { v += b; }
    if (RELU) { v = max(v, vec4f(0.0)); }
    y4[i] = vec4<Elem>(v);
  }
}
