// Conv2d v3: implicit GEMM with the subgroup recipe of matmul v3 (8 rows × one vec4 of columns per
// invocation, A shared across the subgroup with subgroupBroadcast). It runs the forward pass and dX.
//
// The GEMM. Rows are destination pixels, columns are destination channels (one vec4 per invocation), and
// the reduction runs over taps × source channels:
//   dst[pixel m, cols] = Σ_{tap (jh, jw)} Σ_c src[the pixel that m reads at that tap, c] · filter[f(tap), c, cols]
// A (the source pixels at each tap) is never materialised: each row's source coordinates are computed
// once, before the tap loops, and each tap only adds an offset. A tap that falls outside the source (the
// padding) reads a valid address and is zeroed by a per-pixel validity select.
//
// One kernel serves both passes because both are this gather; the host sets the maps (all per dimension):
//   row m = (n, u, v), u < rows_u, v < rows_v
//   source coordinate  = u · src_row + j · src_tap + src_off      (j = the tap index, j < taps)
//   filter index       = j · f_step + f_off
//   destination        = u · dst_step + dst_off
// Forward (src = x, filter = w [KH, KW, Cin, Cout]): src_row = stride, src_tap = 1, src_off = −pad,
//   f_step = 1, f_off = 0, dst_step = 1, dst_off = 0.
// dX (src = g, filter = wᵀ [KH, KW, Cout, Cin]), one dispatch per stride phase r (r < stride): the input
//   rows ih ≡ r − pad (mod stride) are reached only by the taps kh = r + j·stride, from output row
//   oh = q − j where ih = q·stride + r − pad. So rows are q = q0 + u, src_row = 1, src_tap = −1,
//   src_off = q0, f_step = stride, f_off = r, dst_step = stride, dst_off = q0·stride + r − pad. No tap
//   is wasted on the zeros a strided convolution's gradient would otherwise multiply.
//
// Per chunk of 8 source channels, lane l of the subgroup loads channel c0 + l of each of its 8 pixels;
// step j takes channel c0 + j from lane j by subgroupBroadcast, with one vec4 of the filter. The last,
// partial chunk runs only its first (c_in mod 8) steps, so any c_in works (3 for an RGB input).
//
// Entry `main_bt` reads the filter with its last two dims swapped, [taps, c_out, c_in] (c_in % 4 == 0):
// dX reads w [KH, KW, Cin, Cout] this way, as matmul v3's main_bt reads a transposed B, instead of
// transposing the weights first (on a CPU adapter that copy can take as long as the GEMM). Each of the
// lane's 4 columns is a row of storage, read as vec4 along c (one load serves 4 steps), and each 4×4
// block is transposed in registers.
//
// Entry `main_span`, forward only, for c_in % 8 != 0 (an RGB input, where chunks of a tap's 3 channels
// would run 3 of 8 broadcast steps): in NHWC, the taps kw and channels ci that one kernel row reads from a
// pixel row are one contiguous span of taps_w · c_in values of src, and the matching filter rows are
// contiguous too. So each kernel row is one reduction over that span, in chunks of 8 (for the 7×7 stem:
// 21 values, 3 chunks, instead of 7 chunks of 3). A lane finds its value's tap as span index / c_in, one
// division per chunk, to zero the values that fall in the left or right padding.
//
// Requirements, checked on the host: subgroups of at least 8 lanes that do not straddle two rows of the
// workgroup (WG_X a multiple of the subgroup size), and c_out % 4 == 0. Rows past the end are clamped for
// the loads (and take part in the broadcasts), and only real rows are stored.

enable subgroups;

override WG_X: u32 = 16u;
override WG_Y: u32 = 4u;
override HAS_BIAS: bool = false;
override ACT: u32 = 0u;          // 0 none, 1 relu
override HAS_RESIDUAL: bool = false;   // forward: add residual[pixel, cols] before the activation (a ResNet block's shortcut)

struct Params {
  rows: u32, rows_u: u32, rows_v: u32, c_out: u32,          // GEMM rows = n · rows_u · rows_v; columns = c_out
  c_in: u32, src_h: u32, src_w: u32, filter_w: u32,         // src is [n, src_h, src_w, c_in]; filter [., filter_w, c_in, c_out]
  taps_h: u32, taps_w: u32, dst_h: u32, dst_w: u32,         // taps per row; dst is [n, dst_h, dst_w, c_out]
  src_row_h: i32, src_tap_h: i32, src_off_h: i32, f_step_h: u32,
  src_row_w: i32, src_tap_w: i32, src_off_w: i32, f_step_w: u32,
  f_off_h: u32, f_off_w: u32, dst_step_h: u32, dst_step_w: u32,
  dst_off_h: u32, dst_off_w: u32, row_base: u32, _pad0: u32,   // row_base: first row of this dispatch
}

@group(0) @binding(0) var<uniform> p: Params;
// Storage is f32 or f16 (Elem, declared by the pipeline cache); loads widen to f32, sums stay f32.
@group(0) @binding(1) var<storage, read> src: array<Elem>;
@group(0) @binding(2) var<storage, read> weights: array<vec4<Elem>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<Elem>>;
@group(0) @binding(4) var<storage, read> residual: array<vec4<Elem>>;   // shaped as dst
@group(0) @binding(5) var<storage, read_write> dst: array<vec4<Elem>>;

fn w4(i: u32) -> vec4f { return vec4f(weights[i]); }
fn src4(i: vec4u) -> vec4f { return vec4f(f32(src[i.x]), f32(src[i.y]), f32(src[i.z]), f32(src[i.w])); }

/** Four GEMM rows: where tap 0 reads (source row, column, and the image's first row n · src_h), and where they write. */
struct Rows4 {
  src_h: vec4i,
  src_w: vec4i,
  src_img: vec4i,
  dst: vec4u,      // vec4 index of the destination pixel's first channel
}

fn rows4(m0: u32) -> Rows4 {
  let m = min(vec4u(m0) + vec4u(0u, 1u, 2u, 3u), vec4u(p.rows - 1u));
  let v = m % p.rows_v;
  let t = m / p.rows_v;
  let u = t % p.rows_u;
  let n = t / p.rows_u;
  var r: Rows4;
  r.src_h = vec4i(u) * p.src_row_h + p.src_off_h;
  r.src_w = vec4i(v) * p.src_row_w + p.src_off_w;
  r.src_img = vec4i(n * p.src_h);
  let dh = u * p.dst_step_h + p.dst_off_h;
  let dw = v * p.dst_step_w + p.dst_off_w;
  r.dst = ((n * p.dst_h + dh) * p.dst_w + dw) * (p.c_out / 4u);
  return r;
}

/** At one tap: each row's source pixel (element offset of its channel 0), and whether it lies inside the source. */
struct Taps4 {
  base: vec4u,
  ok: vec4<bool>,
}

fn taps4(r: Rows4, dh: i32, dw: i32) -> Taps4 {
  let ih = r.src_h + dh;
  let iw = r.src_w + dw;
  let ok = (ih >= vec4i(0)) & (ih < vec4i(i32(p.src_h))) & (iw >= vec4i(0)) & (iw < vec4i(i32(p.src_w)));
  let base = ((r.src_img + ih) * i32(p.src_w) + iw) * i32(p.c_in);
  return Taps4(select(vec4u(0u), vec4u(base), ok), ok);
}

/** Channel c of the four rows' source pixels, zero in the padding. */
fn load4(t: Taps4, c: u32) -> vec4f {
  return select(vec4f(0.0), src4(t.base + vec4u(c)), t.ok);
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

/**
 * `steps` (at most 8, uniform) channels: step j takes the rows' values of channel c0 + j from lane j, and
 * the filter's vec4 at `bi` + j · n4.
 */
fn k_chunk(acc: ptr<function, array<vec4f, 8>>, a_lo: vec4f, a_hi: vec4f, bi: u32, n4: u32, steps: u32) {
  rank1(acc, subgroupBroadcast(a_lo, 0u), subgroupBroadcast(a_hi, 0u), w4(bi));
  if (steps > 1u) { rank1(acc, subgroupBroadcast(a_lo, 1u), subgroupBroadcast(a_hi, 1u), w4(bi + n4)); }
  if (steps > 2u) { rank1(acc, subgroupBroadcast(a_lo, 2u), subgroupBroadcast(a_hi, 2u), w4(bi + 2u * n4)); }
  if (steps > 3u) { rank1(acc, subgroupBroadcast(a_lo, 3u), subgroupBroadcast(a_hi, 3u), w4(bi + 3u * n4)); }
  if (steps > 4u) { rank1(acc, subgroupBroadcast(a_lo, 4u), subgroupBroadcast(a_hi, 4u), w4(bi + 4u * n4)); }
  if (steps > 5u) { rank1(acc, subgroupBroadcast(a_lo, 5u), subgroupBroadcast(a_hi, 5u), w4(bi + 5u * n4)); }
  if (steps > 6u) { rank1(acc, subgroupBroadcast(a_lo, 6u), subgroupBroadcast(a_hi, 6u), w4(bi + 6u * n4)); }
  if (steps > 7u) { rank1(acc, subgroupBroadcast(a_lo, 7u), subgroupBroadcast(a_hi, 7u), w4(bi + 7u * n4)); }
}

/**
 * The same with the filter stored transposed: `b_rows[j]` is the vec4 index of filter(c0, column j), each
 * column a row of storage along c. `steps` is 8, or 4 in a partial last chunk (c_in % 4 == 0).
 */
fn k_chunk_t(acc: ptr<function, array<vec4f, 8>>, a_lo: vec4f, a_hi: vec4f, b_rows: vec4u, steps: u32) {
  let l0 = w4(b_rows.x); let l1 = w4(b_rows.y); let l2 = w4(b_rows.z); let l3 = w4(b_rows.w);
  rank1(acc, subgroupBroadcast(a_lo, 0u), subgroupBroadcast(a_hi, 0u), vec4f(l0.x, l1.x, l2.x, l3.x));
  rank1(acc, subgroupBroadcast(a_lo, 1u), subgroupBroadcast(a_hi, 1u), vec4f(l0.y, l1.y, l2.y, l3.y));
  rank1(acc, subgroupBroadcast(a_lo, 2u), subgroupBroadcast(a_hi, 2u), vec4f(l0.z, l1.z, l2.z, l3.z));
  rank1(acc, subgroupBroadcast(a_lo, 3u), subgroupBroadcast(a_hi, 3u), vec4f(l0.w, l1.w, l2.w, l3.w));
  if (steps > 4u) {
    let h0 = w4(b_rows.x + 1u); let h1 = w4(b_rows.y + 1u); let h2 = w4(b_rows.z + 1u); let h3 = w4(b_rows.w + 1u);
    rank1(acc, subgroupBroadcast(a_lo, 4u), subgroupBroadcast(a_hi, 4u), vec4f(h0.x, h1.x, h2.x, h3.x));
    rank1(acc, subgroupBroadcast(a_lo, 5u), subgroupBroadcast(a_hi, 5u), vec4f(h0.y, h1.y, h2.y, h3.y));
    rank1(acc, subgroupBroadcast(a_lo, 6u), subgroupBroadcast(a_hi, 6u), vec4f(h0.z, h1.z, h2.z, h3.z));
    rank1(acc, subgroupBroadcast(a_lo, 7u), subgroupBroadcast(a_hi, 7u), vec4f(h0.w, h1.w, h2.w, h3.w));
  }
}

/** dst[i] = act(v + bias (+ residual[i])), rounded to the storage type once. */
fn store(i: u32, v: vec4f, bias_v: vec4f) {
  var r = v + bias_v;
  if (HAS_RESIDUAL) { r += vec4f(residual[i]); }
  if (ACT == 1u) { r = max(r, vec4f(0.0)); }
  dst[i] = vec4<Elem>(r);
}

/** The whole kernel; `b_transposed` is a constant at each entry point, so its branches fold away. */
fn gather_tile(gid: vec3u, sg_lane: u32, b_transposed: bool) {
  let n4 = p.c_out / 4u;
  let col = min(gid.x, n4 - 1u);
  let row0 = p.row_base + gid.y * 8u;
  let lo = rows4(row0);
  let hi = rows4(row0 + 4u);
  let lane = sg_lane & 7u;      // subgroups wider than 8 repeat the pattern; only lanes 0..7 are read
  let c_full = p.c_in & ~7u;
  var acc: array<vec4f, 8>;

  for (var jh = 0u; jh < p.taps_h; jh++) {
    let dh = i32(jh) * p.src_tap_h;
    let fh = jh * p.f_step_h + p.f_off_h;
    for (var jw = 0u; jw < p.taps_w; jw++) {
      let dw = i32(jw) * p.src_tap_w;
      let fw = jw * p.f_step_w + p.f_off_w;
      let t_lo = taps4(lo, dh, dw);
      let t_hi = taps4(hi, dh, dw);
      let tap = fh * p.filter_w + fw;
      let b_tap = tap * p.c_in * n4 + col;                                                  // row-major
      let b_rows = (vec4u(tap * p.c_out + col * 4u) + vec4u(0u, 1u, 2u, 3u)) * (p.c_in / 4u);  // transposed
      for (var c0 = 0u; c0 < c_full; c0 += 8u) {
        let c = c0 + lane;
        if (b_transposed) {
          k_chunk_t(&acc, load4(t_lo, c), load4(t_hi, c), b_rows + c0 / 4u, 8u);
        } else {
          k_chunk(&acc, load4(t_lo, c), load4(t_hi, c), b_tap + c0 * n4, n4, 8u);
        }
      }
      if (c_full < p.c_in) {
        // Lanes past the last channel load a valid duplicate that no step uses.
        let c = min(c_full + lane, p.c_in - 1u);
        if (b_transposed) {
          k_chunk_t(&acc, load4(t_lo, c), load4(t_hi, c), b_rows + c_full / 4u, p.c_in - c_full);
        } else {
          k_chunk(&acc, load4(t_lo, c), load4(t_hi, c), b_tap + c_full * n4, n4, p.c_in - c_full);
        }
      }
    }
  }

  if (gid.x >= n4) { return; }
  var bias_v = vec4f(0.0);
  if (HAS_BIAS) { bias_v = vec4f(bias[col]); }
  for (var r = 0u; r < 4u; r++) {
    if (row0 + r >= p.rows) { return; }
    store(lo.dst[r] + col, acc[r], bias_v);
  }
  for (var r = 0u; r < 4u; r++) {
    if (row0 + 4u + r >= p.rows) { return; }
    store(hi.dst[r] + col, acc[4u + r], bias_v);
  }
}

/** Filter row-major [taps, c_in, c_out]. */
@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(subgroup_invocation_id) sg_lane: u32) {
  gather_tile(gid, sg_lane, false);
}

/** Filter stored [taps, c_out, c_in], with c_in % 4 == 0. */
@compute @workgroup_size(WG_X, WG_Y)
fn main_bt(@builtin(global_invocation_id) gid: vec3u, @builtin(subgroup_invocation_id) sg_lane: u32) {
  gather_tile(gid, sg_lane, true);
}

/** Span values of the four rows: zero where the row (ok_h) or the value's column iw is in the padding. */
fn load_span(ok_h: vec4<bool>, iw: vec4i, idx: vec4i) -> vec4f {
  let ok = ok_h & (iw >= vec4i(0)) & (iw < vec4i(i32(p.src_w)));
  let i = select(vec4u(0u), vec4u(idx), ok);
  return select(vec4f(0.0), src4(i), ok);
}

@compute @workgroup_size(WG_X, WG_Y)
fn main_span(@builtin(global_invocation_id) gid: vec3u, @builtin(subgroup_invocation_id) sg_lane: u32) {
  let n4 = p.c_out / 4u;
  let col = min(gid.x, n4 - 1u);
  let row0 = p.row_base + gid.y * 8u;
  let lo = rows4(row0);
  let hi = rows4(row0 + 4u);
  let lane = sg_lane & 7u;
  let span = p.taps_w * p.c_in;
  let s_full = span & ~7u;
  var acc: array<vec4f, 8>;

  for (var kh = 0u; kh < p.taps_h; kh++) {
    let ih_lo = lo.src_h + i32(kh);
    let ih_hi = hi.src_h + i32(kh);
    let ok_lo = (ih_lo >= vec4i(0)) & (ih_lo < vec4i(i32(p.src_h)));
    let ok_hi = (ih_hi >= vec4i(0)) & (ih_hi < vec4i(i32(p.src_h)));
    // Element offset of (ih, the row's first tap column, channel 0); negative where that column is padding.
    let start_lo = ((lo.src_img + ih_lo) * i32(p.src_w) + lo.src_w) * i32(p.c_in);
    let start_hi = ((hi.src_img + ih_hi) * i32(p.src_w) + hi.src_w) * i32(p.c_in);
    let b_row = kh * span * n4 + col;
    for (var s0 = 0u; s0 < s_full; s0 += 8u) {
      let j = s0 + lane;
      let kw = i32(j / p.c_in);
      let a_lo = load_span(ok_lo, lo.src_w + kw, start_lo + i32(j));
      let a_hi = load_span(ok_hi, hi.src_w + kw, start_hi + i32(j));
      k_chunk(&acc, a_lo, a_hi, b_row + s0 * n4, n4, 8u);
    }
    if (s_full < span) {
      let j = min(s_full + lane, span - 1u);
      let kw = i32(j / p.c_in);
      let a_lo = load_span(ok_lo, lo.src_w + kw, start_lo + i32(j));
      let a_hi = load_span(ok_hi, hi.src_w + kw, start_hi + i32(j));
      k_chunk(&acc, a_lo, a_hi, b_row + s_full * n4, n4, span - s_full);
    }
  }

  if (gid.x >= n4) { return; }
  var bias_v = vec4f(0.0);
  if (HAS_BIAS) { bias_v = vec4f(bias[col]); }
  for (var r = 0u; r < 4u; r++) {
    if (row0 + r >= p.rows) { return; }
    store(lo.dst[r] + col, acc[r], bias_v);
  }
  for (var r = 0u; r < 4u; r++) {
    if (row0 + 4u + r >= p.rows) { return; }
    store(hi.dst[r] + col, acc[4u + r], bias_v);
  }
}
