// Matmul v2: register tiling, a 4×4 block of outputs per invocation, no optional features.
//
// Each invocation keeps 16 accumulators. Per step of k it loads 4 values of A (a column slice of its 4 rows)
// and 4 values of B (a row slice of its 4 columns) and does 16 multiply-adds, against 2 loads per
// multiply-add in v1. Lanes adjacent in x own adjacent 4-column blocks, so neighbouring lanes read
// neighbouring B addresses (on lavapipe this "strided" mapping beat giving a lane several adjacent blocks).
//
// Operands are addressed through element strides as in v1 (transposes and batch broadcasting for free).
// Edges: row and column indices are clamped into range for the loads, so an invocation that hangs over
// the edge computes duplicates of valid outputs; only in-range outputs are stored. K needs no edge case.
//
// Two entry points:
//   main       any strides, any N: B is read as 4 scalars per step.
//   main_vec4  B row-major [K, N] with N % 4 == 0 (and a batch stride that is a multiple of 4): B and C
//              are accessed as vec4, which lavapipe loads much faster than 4 scalars.

override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
override HAS_BIAS: bool = false;
override ACT: u32 = 0u;          // 0 none, 1 relu

struct Params {
  M: u32, N: u32, K: u32, _pad0: u32,
  a_row: u32, a_col: u32, b_row: u32, b_col: u32,   // element strides of A(m, k) and B(k, n)
  a_batch: u32, b_batch: u32, c_batch: u32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

@group(0) @binding(2) var<storage, read> b4: array<vec4f>;
@group(0) @binding(3) var<storage, read> bias4: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> c4: array<vec4f>;

/** Offsets of A(row0 + i, 0) for i = 0..3, rows clamped into range. */
fn a_row_offsets(batch: u32, row0: u32) -> vec4u {
  let last = p.M - 1u;
  let rows = min(vec4u(row0, row0 + 1u, row0 + 2u, row0 + 3u), vec4u(last));
  return batch * p.a_batch + rows * p.a_row;
}

fn epilogue(v: vec4f, bias_v: vec4f) -> vec4f {
  var r = v;
  if (HAS_BIAS) { r += bias_v; }
  if (ACT == 1u) { r = max(r, vec4f(0.0)); }
  return r;
}

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let col0 = gid.x * 4u;
  let row0 = gid.y * 4u;
  let batch = gid.z;
  let ar = a_row_offsets(batch, row0);
  let cols = min(vec4u(col0, col0 + 1u, col0 + 2u, col0 + 3u), vec4u(p.N - 1u));
  let bc = batch * p.b_batch + cols * p.b_col;
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var k = 0u; k < p.K; k++) {
    let ak = k * p.a_col;
    let bk = k * p.b_row;
    let av = vec4f(a[ar.x + ak], a[ar.y + ak], a[ar.z + ak], a[ar.w + ak]);
    let bv = vec4f(b[bc.x + bk], b[bc.y + bk], b[bc.z + bk], b[bc.w + bk]);
    acc0 += av.x * bv;
    acc1 += av.y * bv;
    acc2 += av.z * bv;
    acc3 += av.w * bv;
  }
  var bias_v = vec4f(0.0);
  if (HAS_BIAS) { bias_v = vec4f(bias[cols.x], bias[cols.y], bias[cols.z], bias[cols.w]); }
  let out = array<vec4f, 4>(epilogue(acc0, bias_v), epilogue(acc1, bias_v), epilogue(acc2, bias_v), epilogue(acc3, bias_v));
  let c_base = batch * p.c_batch;
  for (var i = 0u; i < 4u; i++) {
    let m = row0 + i;
    if (m >= p.M) { break; }
    for (var j = 0u; j < 4u; j++) {
      if (col0 + j < p.N) { c[c_base + m * p.N + col0 + j] = out[i][j]; }
    }
  }
}

@compute @workgroup_size(WG_X, WG_Y)
fn main_vec4(@builtin(global_invocation_id) gid: vec3u) {
  let n4 = p.N / 4u;
  let col = min(gid.x, n4 - 1u);
  let row0 = gid.y * 4u;
  let batch = gid.z;
  let ar = a_row_offsets(batch, row0);
  var bi = batch * p.b_batch / 4u + col;
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var k = 0u; k < p.K; k++) {
    let ak = k * p.a_col;
    let av = vec4f(a[ar.x + ak], a[ar.y + ak], a[ar.z + ak], a[ar.w + ak]);
    let bv = b4[bi];
    acc0 += av.x * bv;
    acc1 += av.y * bv;
    acc2 += av.z * bv;
    acc3 += av.w * bv;
    bi += n4;
  }
  var bias_v = vec4f(0.0);
  if (HAS_BIAS) { bias_v = bias4[col]; }
  let out = array<vec4f, 4>(epilogue(acc0, bias_v), epilogue(acc1, bias_v), epilogue(acc2, bias_v), epilogue(acc3, bias_v));
  if (gid.x >= n4) { return; }
  let c_base = batch * p.c_batch / 4u;
  for (var i = 0u; i < 4u; i++) {
    let m = row0 + i;
    if (m >= p.M) { break; }
    c4[c_base + m * n4 + col] = out[i];
  }
}
