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
//
// Params as in matmul_v1.wgsl, including the block offsets and `accumulate` of a split problem. For
// main_vec4 the row strides and offsets of B, C and bias are multiples of 4.

override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
override HAS_BIAS: bool = false;
override ACT: u32 = 0u;          // 0 none, 1 relu

struct Params {
  M: u32, N: u32, K: u32,
  accumulate: u32,                                  // 1: C += A·B (a block of K after the first)
  a_row: u32, a_col: u32, b_row: u32, b_col: u32,   // element strides of A(m, k) and B(k, n)
  a_batch: u32, b_batch: u32, c_batch: u32,         // element strides between batch entries
  c_row: u32,                                       // element stride of C's rows
  a_off: u32, b_off: u32, c_off: u32, bias_off: u32, // elements before A(0, 0), B(0, 0), C(0, 0), bias[0]
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
  return p.a_off + batch * p.a_batch + rows * p.a_row;
}

/** The value stored for accumulators `v`: plus C's old values when accumulating, then bias and activation. */
fn epilogue(v: vec4f, old: vec4f, bias_v: vec4f) -> vec4f {
  var r = v + old;
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
  let bc = p.b_off + batch * p.b_batch + cols * p.b_col;
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
  if (HAS_BIAS) {
    let bcols = p.bias_off + cols;
    bias_v = vec4f(bias[bcols.x], bias[bcols.y], bias[bcols.z], bias[bcols.w]);
  }
  let acc = array<vec4f, 4>(acc0, acc1, acc2, acc3);
  for (var i = 0u; i < 4u; i++) {
    let m = row0 + i;
    if (m >= p.M) { break; }
    let row = p.c_off + batch * p.c_batch + m * p.c_row + col0;
    var old = vec4f(0.0);
    if (p.accumulate != 0u) {
      for (var j = 0u; j < 4u; j++) {
        if (col0 + j < p.N) { old[j] = c[row + j]; }
      }
    }
    let out = epilogue(acc[i], old, bias_v);
    for (var j = 0u; j < 4u; j++) {
      if (col0 + j < p.N) { c[row + j] = out[j]; }
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
  var bi = (p.b_off + batch * p.b_batch) / 4u + col;
  let b_step = p.b_row / 4u;
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
    bi += b_step;
  }
  var bias_v = vec4f(0.0);
  if (HAS_BIAS) { bias_v = bias4[p.bias_off / 4u + col]; }
  let acc = array<vec4f, 4>(acc0, acc1, acc2, acc3);
  if (gid.x >= n4) { return; }
  let c_base = (p.c_off + batch * p.c_batch) / 4u + col;
  let c_step = p.c_row / 4u;
  for (var i = 0u; i < 4u; i++) {
    let m = row0 + i;
    if (m >= p.M) { break; }
    var old = vec4f(0.0);
    if (p.accumulate != 0u) { old = c4[c_base + m * c_step]; }
    c4[c_base + m * c_step] = epilogue(acc[i], old, bias_v);
  }
}
