// Matmul v3: 8 rows × one vec4 of columns per invocation, with A shared across the subgroup.
//
// On lavapipe every storage load is a bounds-checked scalar load per lane, so the kernel is budgeted in
// loads per multiply-add (see /work/shared/notes/lavapipe-kernels.md). The 8 lanes of a subgroup own
// 8 adjacent vec4 column blocks of the same 8 rows, so they all need the same values of A. Instead of each
// lane loading A(r, k) for its 8 rows at every k, lane l loads A(r, k0 + l) for a chunk of 8 k values,
// and step j of the chunk takes row r's value from lane j with subgroupBroadcast. Per chunk of 8 k a lane
// loads 8 scalars of A and 8 vec4 of B, and does 8·8·4 = 256 multiply-adds.
//
// Two entry points read B as vec4 in two layouts:
//   main      B row-major [K, N]: one vec4 of a B row per step of k.
//   main_bt   B stored transposed, [N, K] with K % 4 == 0 (dX = dY·Wᵀ in backward): each of the lane's 4
//             columns is a row of storage, read as vec4 along k, one load per 4 steps, transposed in
//             registers. Each lane then streams 4 contiguous rows, which for a few rows of A (a dense
//             layer's batch) is faster than `main` (10.5 vs 6–7 GFLOP/s at [8, 4096]·[4096, 4096]).
//
// Requirements, checked on the TypeScript side: the `subgroups` feature with subgroups of at least 8 lanes
// that do not straddle two rows of the workgroup (WG_X a multiple of the subgroup size), and N % 4 == 0,
// so that C is written as vec4. A is read through element strides as in v1 and v2, so a transposed A
// costs nothing.
//
// Params as in matmul_v1.wgsl, including the block offsets and `accumulate` of a split problem. B's vec4
// row stride is b_row / 4 for `main` and b_col / 4 (K of the whole B) for `main_bt`; C's is c_row / 4.
// The TypeScript side keeps these strides and the offsets of B, C and bias multiples of 4.
//
// Edges: rows and columns are clamped into range for the loads and only in-range outputs are stored.
// Invocations that hang over the edge still take part in the broadcasts, so no lane leaves early.
// K is processed in chunks of 8; the last, partial chunk runs only its first K % 8 steps.

enable subgroups;

override WG_X: u32 = 16u;
override WG_Y: u32 = 4u;
override HAS_BIAS: bool = false;
override ACT: u32 = 0u;          // 0 none, 1 relu
override HAS_RESIDUAL: bool = false;   // add residual (shaped and strided as C) before the activation

struct Params {
  M: u32, N: u32, K: u32,
  accumulate: u32,                                  // 1: C += A·B (a block of K after the first)
  a_row: u32, a_col: u32, b_row: u32, b_col: u32,   // element strides of A(m, k) and B(k, n)
  a_batch: u32, b_batch: u32, c_batch: u32,         // element strides between batch entries
  c_row: u32,                                       // element stride of C's rows
  a_off: u32, b_off: u32, c_off: u32, bias_off: u32, // elements before A(0, 0), B(0, 0), C(0, 0), bias[0]
  res_off: u32, _pad0: u32, _pad1: u32, _pad2: u32,  // elements before residual(0, 0)
}

@group(0) @binding(0) var<uniform> p: Params;
// Storage is f32 or f16 (Elem, declared by the pipeline cache); loads widen to f32, sums stay f32.
@group(0) @binding(1) var<storage, read> a: array<Elem>;
@group(0) @binding(2) var<storage, read> b: array<vec4<Elem>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<Elem>>;
@group(0) @binding(4) var<storage, read> residual: array<vec4<Elem>>;   // C's layout, at res_off
@group(0) @binding(5) var<storage, read_write> c: array<vec4<Elem>>;

fn b4(i: u32) -> vec4f { return vec4f(b[i]); }
fn a4(rows: vec4u, ak: u32) -> vec4f { return vec4f(f32(a[rows.x + ak]), f32(a[rows.y + ak]), f32(a[rows.z + ak]), f32(a[rows.w + ak])); }

/**
 * Runs `steps` (at most 8) steps of k from k0: step j takes this lane's rows' A values from lane j, which
 * loaded A(row, k0 + j) into `a_lo` (rows 0..3) and `a_hi` (rows 4..7), and B(k0 + j, cols) as one vec4
 * from row-major B, where `bi` indexes B(k0, cols) and B's rows are `b_step` vec4s apart. `steps` is
 * uniform, so the broadcasts stay in uniform control flow; it is the constant 8 in the main loop, where the
 * branches fold away.
 * (Loading B step by step, rather than the chunk's 8 rows up front, keeps fewer registers live: faster.)
 */
fn k_chunk(acc: ptr<function, array<vec4f, 8>>, a_lo: vec4f, a_hi: vec4f, bi: u32, b_step: u32, steps: u32) {
  rank1(acc, subgroupBroadcast(a_lo, 0u), subgroupBroadcast(a_hi, 0u), b4(bi));
  if (steps > 1u) { rank1(acc, subgroupBroadcast(a_lo, 1u), subgroupBroadcast(a_hi, 1u), b4(bi + b_step)); }
  if (steps > 2u) { rank1(acc, subgroupBroadcast(a_lo, 2u), subgroupBroadcast(a_hi, 2u), b4(bi + 2u * b_step)); }
  if (steps > 3u) { rank1(acc, subgroupBroadcast(a_lo, 3u), subgroupBroadcast(a_hi, 3u), b4(bi + 3u * b_step)); }
  if (steps > 4u) { rank1(acc, subgroupBroadcast(a_lo, 4u), subgroupBroadcast(a_hi, 4u), b4(bi + 4u * b_step)); }
  if (steps > 5u) { rank1(acc, subgroupBroadcast(a_lo, 5u), subgroupBroadcast(a_hi, 5u), b4(bi + 5u * b_step)); }
  if (steps > 6u) { rank1(acc, subgroupBroadcast(a_lo, 6u), subgroupBroadcast(a_hi, 6u), b4(bi + 6u * b_step)); }
  if (steps > 7u) { rank1(acc, subgroupBroadcast(a_lo, 7u), subgroupBroadcast(a_hi, 7u), b4(bi + 7u * b_step)); }
}

/**
 * The same for B stored transposed, [N, K] with K % 4 == 0: each of the lane's 4 columns is a row of
 * storage, read as vec4 along k (one load serves 4 steps), and each 4×4 block is transposed in registers.
 * `b_rows[j]` is the vec4 index of B(k0, col j). `steps` is 8, or 4 in a partial last chunk.
 */
fn k_chunk_t(acc: ptr<function, array<vec4f, 8>>, a_lo: vec4f, a_hi: vec4f, b_rows: vec4u, steps: u32) {
  let l0 = b4(b_rows.x); let l1 = b4(b_rows.y); let l2 = b4(b_rows.z); let l3 = b4(b_rows.w);
  rank1(acc, subgroupBroadcast(a_lo, 0u), subgroupBroadcast(a_hi, 0u), vec4f(l0.x, l1.x, l2.x, l3.x));
  rank1(acc, subgroupBroadcast(a_lo, 1u), subgroupBroadcast(a_hi, 1u), vec4f(l0.y, l1.y, l2.y, l3.y));
  rank1(acc, subgroupBroadcast(a_lo, 2u), subgroupBroadcast(a_hi, 2u), vec4f(l0.z, l1.z, l2.z, l3.z));
  rank1(acc, subgroupBroadcast(a_lo, 3u), subgroupBroadcast(a_hi, 3u), vec4f(l0.w, l1.w, l2.w, l3.w));
  if (steps > 4u) {
    let h0 = b4(b_rows.x + 1u); let h1 = b4(b_rows.y + 1u); let h2 = b4(b_rows.z + 1u); let h3 = b4(b_rows.w + 1u);
    rank1(acc, subgroupBroadcast(a_lo, 4u), subgroupBroadcast(a_hi, 4u), vec4f(h0.x, h1.x, h2.x, h3.x));
    rank1(acc, subgroupBroadcast(a_lo, 5u), subgroupBroadcast(a_hi, 5u), vec4f(h0.y, h1.y, h2.y, h3.y));
    rank1(acc, subgroupBroadcast(a_lo, 6u), subgroupBroadcast(a_hi, 6u), vec4f(h0.z, h1.z, h2.z, h3.z));
    rank1(acc, subgroupBroadcast(a_lo, 7u), subgroupBroadcast(a_hi, 7u), vec4f(h0.w, h1.w, h2.w, h3.w));
  }
}

/** acc[r] += A(r, k) · B(k, cols) for the 8 rows: one rank-1 update of the 8×4 tile. */
fn rank1(acc: ptr<function, array<vec4f, 8>>, lo: vec4f, hi: vec4f, bv: vec4f) {
  (*acc)[0] += lo.x * bv;
  (*acc)[1] += lo.y * bv;
  (*acc)[2] += lo.z * bv;
  (*acc)[3] += lo.w * bv;
  (*acc)[4] += hi.x * bv;
  (*acc)[5] += hi.y * bv;
  (*acc)[6] += hi.z * bv;
  (*acc)[7] += hi.w * bv;
}

/** The whole kernel; `b_transposed` is a constant at each entry point, so its branches fold away. */
fn matmul_tile(gid: vec3u, sg_lane: u32, b_transposed: bool) {
  let n4 = p.N / 4u;
  let col = min(gid.x, n4 - 1u);
  let row0 = gid.y * 8u;
  let batch = gid.z;
  let last = p.M - 1u;
  let a_base = p.a_off + batch * p.a_batch;
  let rows_lo = a_base + min(vec4u(row0, row0 + 1u, row0 + 2u, row0 + 3u), vec4u(last)) * p.a_row;
  let rows_hi = a_base + min(vec4u(row0 + 4u, row0 + 5u, row0 + 6u, row0 + 7u), vec4u(last)) * p.a_row;
  let lane = sg_lane & 7u;      // subgroups wider than 8 repeat the pattern; only lanes 0..7 are read
  let b_base = (p.b_off + batch * p.b_batch) / 4u;
  let b_step = p.b_row / 4u;                                          // row-major B: vec4s per row of B
  let b_col = b_base + col;                                           // row-major B: B(0, col)
  let b_rows = b_base + (vec4u(col * 4u) + vec4u(0u, 1u, 2u, 3u)) * (p.b_col / 4u);   // transposed B
  var acc: array<vec4f, 8>;

  let k_full = p.K & ~7u;
  for (var k0 = 0u; k0 < k_full; k0 += 8u) {
    let ak = (k0 + lane) * p.a_col;
    let a_lo = a4(rows_lo, ak);
    let a_hi = a4(rows_hi, ak);
    if (b_transposed) { k_chunk_t(&acc, a_lo, a_hi, b_rows + k0 / 4u, 8u); } else { k_chunk(&acc, a_lo, a_hi, b_col + k0 * b_step, b_step, 8u); }
  }
  if (k_full < p.K) {
    // The partial last chunk: lanes past the end of K load a valid duplicate that no step uses.
    let ak = min(k_full + lane, p.K - 1u) * p.a_col;
    let a_lo = a4(rows_lo, ak);
    let a_hi = a4(rows_hi, ak);
    let steps = p.K - k_full;
    if (b_transposed) { k_chunk_t(&acc, a_lo, a_hi, b_rows + k_full / 4u, steps); } else { k_chunk(&acc, a_lo, a_hi, b_col + k_full * b_step, b_step, steps); }
  }

  if (gid.x >= n4) { return; }
  var bias_v = vec4f(0.0);
  if (HAS_BIAS) { bias_v = vec4f(bias[p.bias_off / 4u + col]); }
  let c_base = (p.c_off + batch * p.c_batch) / 4u + col;
  let r_base = (p.res_off + batch * p.c_batch) / 4u + col;
  let c_step = p.c_row / 4u;
  for (var r = 0u; r < 8u; r++) {
    let m = row0 + r;
    if (m >= p.M) { break; }
    var v = acc[r] + bias_v;
    if (p.accumulate != 0u) { v += vec4f(c[c_base + m * c_step]); }
    if (HAS_RESIDUAL) { v += vec4f(residual[r_base + m * c_step]); }
    if (ACT == 1u) { v = max(v, vec4f(0.0)); }
    c[c_base + m * c_step] = vec4<Elem>(v);
  }
}

/** B row-major [K, N], N % 4 == 0. */
@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(subgroup_invocation_id) sg_lane: u32) {
  matmul_tile(gid, sg_lane, false);
}

/** B stored transposed, [N, K], with N % 4 == 0 and K % 4 == 0. */
@compute @workgroup_size(WG_X, WG_Y)
fn main_bt(@builtin(global_invocation_id) gid: vec3u, @builtin(subgroup_invocation_id) sg_lane: u32) {
  matmul_tile(gid, sg_lane, true);
}
