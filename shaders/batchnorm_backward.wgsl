// Batch normalisation backward, step 2: the input gradient. Entry `main` takes one element per
// invocation; `main_vec4` (channels % 4 == 0) takes a vec4 of channels in RUN consecutive rows and loads
// the per-channel values once for them, as batchnorm.wgsl's main_vec4.
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
override RUN: u32 = 16u;   // rows per invocation in main_vec4

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
// The same buffers seen as vec4 (main_vec4; a binding number may be reused across entry points).
@group(0) @binding(1) var<storage, read> x4: array<vec4f>;
@group(0) @binding(2) var<storage, read> g4: array<vec4f>;
@group(0) @binding(3) var<storage, read> mean4: array<vec4f>;
@group(0) @binding(4) var<storage, read> variance4: array<vec4f>;
@group(0) @binding(5) var<storage, read> gamma4: array<vec4f>;
@group(0) @binding(6) var<storage, read> beta4: array<vec4f>;
@group(0) @binding(7) var<storage, read> sum_gxhat4: array<vec4f>;
@group(0) @binding(8) var<storage, read> sum_g4: array<vec4f>;
@group(0) @binding(9) var<storage, read_write> dx4: array<vec4f>;

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

@compute @workgroup_size(WG)
fn main_vec4(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * WG;
  let c4 = p.channels / 4u;
  let rows = p.n / p.channels;
  let cg = t % c4;
  let row0 = (t / c4) * RUN;
  if (row0 >= rows) { return; }
  let m = mean4[cg];
  let inv_std = inverseSqrt(variance4[cg] + p.epsilon);
  var gamma = vec4f(1.0);
  var beta = vec4f(0.0);
  if (HAS_GAMMA) { gamma = gamma4[cg]; }
  if (HAS_BETA && RELU) { beta = beta4[cg]; }
  var scale = inv_std;
  if (HAS_GAMMA) { scale *= gamma; }
  var sg = vec4f(0.0);
  var sgx = vec4f(0.0);
  if (TRAINING) { sg = sum_g4[cg]; sgx = sum_gxhat4[cg]; }
  for (var row = row0; row < min(row0 + RUN, rows); row++) {
    let i = row * c4 + cg;
    let xhat = (x4[i] - m) * inv_std;
    var gi = g4[i];
    if (RELU) {
      var pre = xhat;
      if (HAS_GAMMA) { pre *= gamma; }
      if (HAS_BETA) { pre += beta; }
      gi = select(vec4f(0.0), gi, pre > vec4f(0.0));
    }
    if (TRAINING) {
      gi -= (sg + xhat * sgx) * p.inv_rows;
    }
    dx4[i] = gi * scale;
  }
}
