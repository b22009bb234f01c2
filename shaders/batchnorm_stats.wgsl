// Batch normalisation, training mode, step 1: each channel's mean and (biased) variance over the batch,
// and the in-place update of the running statistics.
//
// The input is viewed as [rows, channels] (channels last: rows = N·H·W for NHWC images, N for [N, C]),
// so channel c is the column x[r·C + c], r < rows.
//
// Why not E[x²] − E[x]²? In f32 that formula cancels catastrophically: a channel with mean 1e3 and standard
// deviation 0.05 has E[x²] ≈ 1e6, whose f32 spacing (0.06) is 25 times the variance (0.0025) it is meant
// to reveal. Instead each channel takes three sums in two passes over its column (the "corrected two-pass"
// algorithm of Chan, Golub and LeVeque):
//   pass 1   s  = Σ (x − x₀)              x₀ = the channel's first element: the terms are deviations, small
//            m  = x₀ + s / n              even when the mean is large, so the mean is accurate
//   pass 2   d  = Σ (x − m),  q = Σ (x − m)²
//            mean     = m + d / n         d / n corrects what rounding left in m
//            variance = q / n − (d / n)²  the biased variance, as Keras normalises with; never negative
//
// Then, when UPDATE_RUNNING is set (training with running statistics), following Keras:
//   running_mean ← running_mean · momentum + mean · (1 − momentum)
//   running_var  ← running_var  · momentum + variance · (1 − momentum)
// (1 − momentum is computed in f64 on the CPU and passed in, as 0.99 is not exact in f32.)
//
// Two entry points, numbered as the kernels in src/ops/matmul.ts are (src/ops/batchnorm.ts picks one):
//   main_v1   one invocation per channel, walking the whole column itself: the baseline, and the better
//             choice when rows are few (a batch of [N, C] after a dense layer).
//   main_v2   one workgroup per block of CB channels: its WG lanes are CB channels × WG/CB row lanes,
//             neighbouring lanes on neighbouring channels (one contiguous run of memory per row), each row
//             lane striding over rows by WG/CB; the per-lane sums are combined by a tree in workgroup
//             memory. For long columns (N·H·W in the thousands).

override WG: u32 = 64u;                 // invocations per workgroup, a power of two
override CB: u32 = 8u;                  // main_v2: channels per workgroup, a power of two dividing WG
override UPDATE_RUNNING: bool = false;  // false: the running buffers are 16-byte placeholders, never touched

struct Params {
  rows: u32,
  channels: u32,
  momentum: f32,
  one_minus_momentum: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> var_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> running_var: array<f32>;

// Turns channel c's sums into its statistics, stores them, and updates the running statistics.
fn finish(c: u32, m: f32, d: f32, q: f32) {
  let inv_n = 1.0 / f32(p.rows);
  let dn = d * inv_n;
  let mean = m + dn;
  let variance = max(q * inv_n - dn * dn, 0.0);
  mean_out[c] = mean;
  var_out[c] = variance;
  if (UPDATE_RUNNING) {
    running_mean[c] = running_mean[c] * p.momentum + mean * p.one_minus_momentum;
    running_var[c] = running_var[c] * p.momentum + variance * p.one_minus_momentum;
  }
}

@compute @workgroup_size(WG)
fn main_v1(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let c = gid.x + gid.y * nwg.x * WG;
  if (c >= p.channels) { return; }
  let C = p.channels;
  let x0 = x[c];
  var s = 0.0;
  for (var r = 0u; r < p.rows; r++) {
    s += x[r * C + c] - x0;
  }
  let m = x0 + s / f32(p.rows);
  var d = 0.0;
  var q = 0.0;
  for (var r = 0u; r < p.rows; r++) {
    let dev = x[r * C + c] - m;
    d += dev;
    q += dev * dev;
  }
  finish(c, m, d, q);
}

var<workgroup> partial: array<vec2f, WG>;

// Sums each lane's pair over the row lanes of its channel; every lane gets its channel's totals.
// Lane = row_lane · CB + channel_in_block, so lanes `stride` apart (a multiple of CB) share a channel.
// Must be called from uniform control flow.
fn sum_over_rows(v: vec2f, lane: u32) -> vec2f {
  workgroupBarrier();   // a previous call may still be reading `partial`
  partial[lane] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride >= CB; stride = stride / 2u) {
    if (lane < stride) {
      partial[lane] += partial[lane + stride];
    }
    workgroupBarrier();
  }
  return partial[lane % CB];
}

@compute @workgroup_size(WG)
fn main_v2(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u,
           @builtin(num_workgroups) nwg: vec3u) {
  let lane = lid.x;
  let row_lanes = WG / CB;
  let row_lane = lane / CB;
  let C = p.channels;
  let c = (wid.x + wid.y * nwg.x) * CB + lane % CB;
  // Lanes past the last channel take part in the barriers with zeros, and store nothing.
  let valid = c < C;
  let x0 = x[min(c, C - 1u)];
  var s = 0.0;
  if (valid) {
    for (var r = row_lane; r < p.rows; r += row_lanes) {
      s += x[r * C + c] - x0;
    }
  }
  let m = x0 + sum_over_rows(vec2f(s, 0.0), lane).x / f32(p.rows);
  var dq = vec2f(0.0);
  if (valid) {
    for (var r = row_lane; r < p.rows; r += row_lanes) {
      let dev = x[r * C + c] - m;
      dq += vec2f(dev, dev * dev);
    }
  }
  let totals = sum_over_rows(dq, lane);
  if (valid && row_lane == 0u) {
    finish(c, m, totals.x, totals.y);
  }
}
