// Batch normalisation backward, step 1: per-channel sums of the upstream gradient g over the batch,
//
//   sum_g[c]    = Σ_rows g              = dL/dβ[c]
//   sum_gxhat[c] = Σ_rows g · x̂          = dL/dγ[c]        x̂ = (x − mean[c]) / sqrt(variance[c] + ε)
//
// which are the gradients of β and γ in both modes, and the two reductions that training mode's input
// gradient needs (batchnorm_backward.wgsl). x̂ is recomputed from x rather than saved, so the forward pass
// keeps no extra activation. With the fused ReLU, g is first masked where the forward output was clamped:
// the pre-activation x̂·γ + β is recomputed with the forward kernel's exact arithmetic.
//
// Layout and entry points are those of batchnorm_stats.wgsl: [rows, channels] channels last;
//   main_v1   one invocation per channel, walking its column;
//   main_v2   one workgroup per block of CB channels, WG/CB row lanes per channel, a tree in workgroup memory.

override WG: u32 = 64u;
override CB: u32 = 8u;
override HAS_GAMMA: bool = true;
override HAS_BETA: bool = true;
override RELU: bool = false;

struct Params {
  rows: u32,
  channels: u32,
  epsilon: f32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> variance: array<f32>;
@group(0) @binding(5) var<storage, read> gamma: array<f32>;
@group(0) @binding(6) var<storage, read> beta: array<f32>;
@group(0) @binding(7) var<storage, read_write> sum_gxhat: array<f32>;
@group(0) @binding(8) var<storage, read_write> sum_g: array<f32>;

// (g, g · x̂) for element i of channel c, given the channel's mean and 1/σ.
fn terms(i: u32, c: u32, mu: f32, inv_std: f32) -> vec2f {
  let xhat = (x[i] - mu) * inv_std;
  var gi = g[i];
  if (RELU) {
    var pre = xhat;
    if (HAS_GAMMA) { pre *= gamma[c]; }
    if (HAS_BETA) { pre += beta[c]; }
    gi = select(0.0, gi, pre > 0.0);
  }
  return vec2f(gi, gi * xhat);
}

@compute @workgroup_size(WG)
fn main_v1(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = gid.x + gid.y * nwg.x * WG;
  if (c >= p.channels) { return; }
  let mu = mean[c];
  let inv_std = inverseSqrt(variance[c] + p.epsilon);
  var acc = vec2f(0.0);
  for (var r = 0u; r < p.rows; r++) {
    acc += terms(r * p.channels + c, c, mu, inv_std);
  }
  sum_g[c] = acc.x;
  sum_gxhat[c] = acc.y;
}

var<workgroup> partial: array<vec2f, WG>;

@compute @workgroup_size(WG)
fn main_v2(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u,
           @builtin(num_workgroups) nwg: vec3u) {
  let lane = lid.x;
  let row_lanes = WG / CB;
  let row_lane = lane / CB;
  let c = (wid.x + wid.y * nwg.x) * CB + lane % CB;
  let valid = c < p.channels;
  var acc = vec2f(0.0);
  if (valid) {
    let mu = mean[c];
    let inv_std = inverseSqrt(variance[c] + p.epsilon);
    for (var r = row_lane; r < p.rows; r += row_lanes) {
      acc += terms(r * p.channels + c, c, mu, inv_std);
    }
  }
  partial[lane] = acc;
  workgroupBarrier();
  for (var stride = WG / 2u; stride >= CB; stride = stride / 2u) {
    if (lane < stride) {
      partial[lane] += partial[lane + stride];
    }
    workgroupBarrier();
  }
  if (valid && row_lane == 0u) {
    sum_g[c] = partial[lane].x;
    sum_gxhat[c] = partial[lane].y;
  }
}
