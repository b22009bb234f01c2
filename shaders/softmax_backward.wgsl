// Backward of softmax and log-softmax along one axis, fused: one reduction over the row, then one write.
//
// Rows are laid out as in softmax.wgsl: row r is the n elements at base(r) + k·inner. Given the forward
// output y and the upstream gradient g of a row:
//   softmax:      dx_k = y_k · (g_k − Σ_j g_j y_j)        (the Jacobian diag(y) − y yᵀ applied to g)
//   log-softmax:  dx_k = g_k − exp(y_k) · Σ_j g_j         (exp(y) is the softmax)
// Entry points as in softmax.wgsl: main (one invocation per row), main_wg (one workgroup per row).

override LOG: bool = false;
override WG: u32 = 64u;   // a power of two

struct Params {
  rows: u32,
  n: u32,
  inner: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

fn row_base(r: u32) -> u32 {
  return (r / p.inner) * p.n * p.inner + r % p.inner;
}

// The term summed over the row: g·y for softmax, g for log-softmax.
fn row_term(i: u32) -> f32 {
  if (LOG) { return g[i]; }
  return g[i] * y[i];
}

fn input_grad(i: u32, total: f32) -> f32 {
  if (LOG) { return g[i] - exp(y[i]) * total; }
  return y[i] * (g[i] - total);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * WG;
  if (r >= p.rows) { return; }
  let base = row_base(r);
  var total = 0.0;
  for (var k = 0u; k < p.n; k++) {
    total += row_term(base + k * p.inner);
  }
  for (var k = 0u; k < p.n; k++) {
    let i = base + k * p.inner;
    dx[i] = input_grad(i, total);
  }
}

var<workgroup> scratch: array<f32, WG>;

@compute @workgroup_size(WG)
fn main_wg(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u,
           @builtin(num_workgroups) nwg: vec3u) {
  let r = wid.x + wid.y * nwg.x;   // uniform across the workgroup
  if (r >= p.rows) { return; }
  let base = row_base(r);
  let lane = lid.x;
  var part = 0.0;
  for (var k = lane; k < p.n; k += WG) {
    part += row_term(base + k * p.inner);
  }
  scratch[lane] = part;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    if (lane < stride) {
      scratch[lane] += scratch[lane + stride];
    }
    workgroupBarrier();
  }
  let total = scratch[0];
  for (var k = lane; k < p.n; k += WG) {
    let i = base + k * p.inner;
    dx[i] = input_grad(i, total);
  }
}
