// Batch normalisation backward, step 2: the input gradient, one element per invocation.
//
// With x̂ = (x − μ)/σ, σ = sqrt(variance + ε), y = γ·x̂ + β, and g = dL/dy (masked by the fused ReLU):
//
//   inference (TRAINING = false): μ and σ are the running statistics, constants, so
//       dx = g · γ / σ
//   training (TRAINING = true): μ and σ are functions of the whole channel (n = rows elements), and
//   differentiating through them gives the standard formula
//       dx = (γ / σ) · (g − Σg / n − x̂ · Σ(g·x̂) / n)
//   where the two channel sums come from batchnorm_backward_reduce.wgsl (they are also dβ and dγ).
//   In inference mode those sums are not read, and the TypeScript side binds placeholders for them.

override WG: u32 = 64u;
override TRAINING: bool = true;
override HAS_GAMMA: bool = true;
override HAS_BETA: bool = true;
override RELU: bool = false;

struct Params {
  n: u32,
  channels: u32,
  epsilon: f32,
  inv_rows: f32,       // 1 / n, the mean over a channel
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> variance: array<f32>;
@group(0) @binding(5) var<storage, read> gamma: array<f32>;
@group(0) @binding(6) var<storage, read> beta: array<f32>;
@group(0) @binding(7) var<storage, read> sum_gxhat: array<f32>;
@group(0) @binding(8) var<storage, read> sum_g: array<f32>;
@group(0) @binding(9) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let c = i % p.channels;
  let inv_std = inverseSqrt(variance[c] + p.epsilon);
  let xhat = (x[i] - mean[c]) * inv_std;
  var scale = inv_std;
  var gi = g[i];
  if (HAS_GAMMA) { scale *= gamma[c]; }
  if (RELU) {
    // The forward kernel's arithmetic, so the mask matches the output it produced.
    var pre = xhat;
    if (HAS_GAMMA) { pre *= gamma[c]; }
    if (HAS_BETA) { pre += beta[c]; }
    gi = select(0.0, gi, pre > 0.0);
  }
  if (TRAINING) {
    gi -= (sum_g[c] + xhat * sum_gxhat[c]) * p.inv_rows;
  }
  dx[i] = gi * scale;
}
