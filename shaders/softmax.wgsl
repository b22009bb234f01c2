// Softmax and log-softmax along one axis, numerically stable.
//
// The input is viewed as [outer, n, inner]: n is the length of the softmax axis and inner the product of
// the dims after it (1 for the last axis, the usual case of rows of logits). Row r, for r < outer·inner,
// is the n elements at base(r) + k·inner with base(r) = (r / inner)·n·inner + r % inner.
//
// For each row:
//   m = max_k x_k                      subtracting the row max keeps every exponent ≤ 0, so exp cannot
//   s = Σ_k exp(x_k − m)               overflow, and s ≥ 1 (the max term is exp(0)) cannot underflow;
//   softmax_k     = exp(x_k − m) / s
//   log_softmax_k = x_k − m − log(s)
//
// Two entry points; src/ops/softmax.ts chooses by row length and row count, as it does for reduce.wgsl:
//   main      one invocation per row: three passes over the row (max, sum of exps, write);
//   main_wg   one workgroup per row: WG invocations stride over the row, and the max and the sum are each
//             combined by a tree reduction in workgroup memory. For a few very long rows.

override LOG: bool = false;   // false: softmax, true: log-softmax
override WG: u32 = 64u;       // a power of two (the tree reduction halves it)

struct Params {
  rows: u32,
  n: u32,
  inner: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

const LOWEST = -3.402823466e+38;  // the most negative finite f32: the identity of max

fn row_base(r: u32) -> u32 {
  return (r / p.inner) * p.n * p.inner + r % p.inner;
}

// The output for one element, given the row's max m and sum of exponentials s (passed as 1/s and log s).
fn output(v: f32, m: f32, inv_s: f32, log_s: f32) -> f32 {
  if (LOG) { return v - m - log_s; }
  return exp(v - m) * inv_s;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * WG;
  if (r >= p.rows) { return; }
  let base = row_base(r);
  var m = LOWEST;
  for (var k = 0u; k < p.n; k++) {
    m = max(m, x[base + k * p.inner]);
  }
  var s = 0.0;
  for (var k = 0u; k < p.n; k++) {
    s += exp(x[base + k * p.inner] - m);
  }
  let inv_s = 1.0 / s;
  let log_s = log(s);
  for (var k = 0u; k < p.n; k++) {
    let i = base + k * p.inner;
    y[i] = output(x[i], m, inv_s, log_s);
  }
}

var<workgroup> scratch: array<f32, WG>;

// Combines one value per invocation into one value for the workgroup (max, or sum), returned to all.
// Must be called from uniform control flow.
fn workgroup_reduce(v: f32, lane: u32, take_max: bool) -> f32 {
  workgroupBarrier();   // an earlier reduction may still be reading scratch[0]
  scratch[lane] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lane < stride) {
      let other = scratch[lane + stride];
      scratch[lane] = select(scratch[lane] + other, max(scratch[lane], other), take_max);
    }
    workgroupBarrier();
  }
  return scratch[0];
}

@compute @workgroup_size(WG)
fn main_wg(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u,
           @builtin(num_workgroups) nwg: vec3u) {
  let r = wid.x + wid.y * nwg.x;   // the same for the whole workgroup, so this return is uniform
  if (r >= p.rows) { return; }
  let base = row_base(r);
  let lane = lid.x;
  var m_part = LOWEST;
  for (var k = lane; k < p.n; k += WG) {
    m_part = max(m_part, x[base + k * p.inner]);
  }
  let m = workgroup_reduce(m_part, lane, true);
  var s_part = 0.0;
  for (var k = lane; k < p.n; k += WG) {
    s_part += exp(x[base + k * p.inner] - m);
  }
  let s = workgroup_reduce(s_part, lane, false);
  let inv_s = 1.0 / s;
  let log_s = log(s);
  for (var k = lane; k < p.n; k += WG) {
    let i = base + k * p.inner;
    y[i] = output(x[i], m, inv_s, log_s);
  }
}
