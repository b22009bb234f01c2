// Matmul v1, the naive kernel: one output element per invocation.
//
//   C[batch, m, n] = act( sum_k A(m, k) · B(k, n) + bias[n] )
//
// Operands are read through element strides, so one kernel serves every layout: A(m, k) lives at
// a_batch·batch + m·a_row + k·a_col, and likewise for B. A transposed operand is just another pair of
// strides, and a batch stride of 0 broadcasts a 2-D operand over the batch. The output is contiguous.
// Works for any shape and needs no optional feature; it is the correctness baseline for v2 and v3.
//
// The epilogue (bias add, activation) is selected by override constants. With HAS_BIAS = false the bias
// binding is still declared (layout 'auto' needs it) but never read, and any small buffer fills it.
//
// Split problems (src/ops/matmul-split.ts). When an operand exceeds the storage binding limit, the
// TypeScript side runs blocks of the problem, each binding a window of every operand. Then M, N and K
// are the block's sizes, the strides (a_row … c_row) stay those of the whole tensors, and a_off … bias_off
// are where the block starts in each window. A block of K adds onto C (`accumulate` = 1) and only the last
// one applies the epilogue. Every matmul kernel version reads its Params the same way.

override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;
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

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let n = gid.x;
  let m = gid.y;
  let batch = gid.z;
  if (m >= p.M || n >= p.N) { return; }
  var ai = p.a_off + batch * p.a_batch + m * p.a_row;
  var bi = p.b_off + batch * p.b_batch + n * p.b_col;
  var sum = 0.0;
  for (var k = 0u; k < p.K; k++) {
    sum += a[ai] * b[bi];
    ai += p.a_col;
    bi += p.b_row;
  }
  let ci = p.c_off + batch * p.c_batch + m * p.c_row + n;
  if (p.accumulate != 0u) { sum += c[ci]; }
  if (HAS_BIAS) { sum += bias[p.bias_off + n]; }
  if (ACT == 1u) { sum = max(sum, 0.0); }
  c[ci] = sum;
}
