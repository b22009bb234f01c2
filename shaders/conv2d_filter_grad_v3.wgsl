// Conv2d filter gradient v3: dW as an implicit GEMM with the subgroup recipe of matmul v3.
//
//   dw[kh, kw, ci, co] = Σ_{n, oh, ow} x[n, oh·sh − pt + kh, ow·sw − pl + kw, ci] · g[n, oh, ow, co]
//
// The GEMM: rows m = (kh, kw, ci) (KH·KW·Cin of them), columns co (one vec4 per invocation), and the
// reduction runs over output pixels k = (n, oh, ow). B(k, co) is g read as vec4 rows; A(m, k) is x
// gathered at pixel k shifted by row m's tap, zero in the padding. Each row's tap offset is computed
// once; per chunk of 8 pixels, lane l finds the input pixel of output pixel k0 + l (one origin address),
// loads A for its 8 rows at that pixel, and step j of the chunk takes pixel k0 + j from lane j by
// subgroupBroadcast, with one vec4 of g.
//
// The pixel of each lane is advanced by 8 per chunk without division: each wrap of ow (or oh) is a
// select inside a loop of uniform length, so the broadcasts stay in uniform control flow.
//
// Split-K: the pixels are cut into gid.z ranges of k_split (a host choice that gives enough workgroups
// when the filter is small and the image large); range z writes its partial sums to out[z], and the
// host adds the partials. The last chunk of a range runs only its remaining steps (k_split is a multiple
// of 8, so only the last range has one).
//
// Requirements, checked on the host: subgroups as for v3, and c_out % 4 == 0.

enable subgroups;

override WG_X: u32 = 16u;
override WG_Y: u32 = 4u;

struct Params {
  n: u32, h: u32, w: u32, c_in: u32,         // x is [n, h, w, c_in]
  oh: u32, ow: u32, c_out: u32, kw: u32,     // g is [n, oh, ow, c_out]; dw is [kh, kw, c_in, c_out]
  sh: u32, sw: u32, pt: i32, pl: i32,
  rows: u32, pixels: u32, k_split: u32, _pad0: u32,   // rows = kh·kw·c_in; pixels = n·oh·ow
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4f>;

/** Four rows (kh, kw, ci): the tap's offset from the output pixel's origin, in rows, columns and elements of x. */
struct FilterRows4 {
  dh: vec4i,
  dw: vec4i,
  off: vec4i,
}

fn filter_rows4(m0: u32) -> FilterRows4 {
  let m = min(vec4u(m0) + vec4u(0u, 1u, 2u, 3u), vec4u(p.rows - 1u));
  let ci = m % p.c_in;
  let tap = m / p.c_in;
  var r: FilterRows4;
  r.dh = vec4i(tap / p.kw) - p.pt;
  r.dw = vec4i(tap % p.kw) - p.pl;
  r.off = (r.dh * i32(p.w) + r.dw) * i32(p.c_in) + vec4i(ci);
  return r;
}

/**
 * A for 4 rows at one output pixel, whose origin x[n, oh·sh, ow·sw, 0] is at element `origin`, row
 * ih0 = oh·sh and column iw0 = ow·sw; zero in the padding and where `live` is false.
 */
fn load4(r: FilterRows4, ih0: i32, iw0: i32, origin: i32, live: bool) -> vec4f {
  let ih = vec4i(ih0) + r.dh;
  let iw = vec4i(iw0) + r.dw;
  let ok = (ih >= vec4i(0)) & (ih < vec4i(i32(p.h))) & (iw >= vec4i(0)) & (iw < vec4i(i32(p.w))) & vec4<bool>(live);
  let idx = select(vec4u(0u), vec4u(vec4i(origin) + r.off), ok);
  return select(vec4f(0.0), vec4f(x[idx.x], x[idx.y], x[idx.z], x[idx.w]), ok);
}

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

/** `steps` (at most 8, uniform) pixels: step j takes the rows' A values from lane j and g's vec4 at bi + j · n4. */
fn k_chunk(acc: ptr<function, array<vec4f, 8>>, a_lo: vec4f, a_hi: vec4f, bi: u32, n4: u32, steps: u32) {
  rank1(acc, subgroupBroadcast(a_lo, 0u), subgroupBroadcast(a_hi, 0u), g[bi]);
  if (steps > 1u) { rank1(acc, subgroupBroadcast(a_lo, 1u), subgroupBroadcast(a_hi, 1u), g[bi + n4]); }
  if (steps > 2u) { rank1(acc, subgroupBroadcast(a_lo, 2u), subgroupBroadcast(a_hi, 2u), g[bi + 2u * n4]); }
  if (steps > 3u) { rank1(acc, subgroupBroadcast(a_lo, 3u), subgroupBroadcast(a_hi, 3u), g[bi + 3u * n4]); }
  if (steps > 4u) { rank1(acc, subgroupBroadcast(a_lo, 4u), subgroupBroadcast(a_hi, 4u), g[bi + 4u * n4]); }
  if (steps > 5u) { rank1(acc, subgroupBroadcast(a_lo, 5u), subgroupBroadcast(a_hi, 5u), g[bi + 5u * n4]); }
  if (steps > 6u) { rank1(acc, subgroupBroadcast(a_lo, 6u), subgroupBroadcast(a_hi, 6u), g[bi + 6u * n4]); }
  if (steps > 7u) { rank1(acc, subgroupBroadcast(a_lo, 7u), subgroupBroadcast(a_hi, 7u), g[bi + 7u * n4]); }
}

/** (n, oh, ow) moved forward by 8 output pixels. */
fn advance8(c: vec3u) -> vec3u {
  var n = c.x;
  var oh = c.y;
  var ow = c.z + 8u;
  // ow wraps at most once when ow ≥ 8, and oh at most once when one image has ≥ 8 pixels.
  let wraps_w = select(8u, 1u, p.ow >= 8u);
  for (var i = 0u; i < wraps_w; i++) {
    let wrap = ow >= p.ow;
    ow = select(ow, ow - p.ow, wrap);
    oh = select(oh, oh + 1u, wrap);
  }
  let wraps_h = select(8u, 1u, p.oh * p.ow >= 8u);
  for (var i = 0u; i < wraps_h; i++) {
    let wrap = oh >= p.oh;
    oh = select(oh, oh - p.oh, wrap);
    n = select(n, n + 1u, wrap);
  }
  return vec3u(n, oh, ow);
}

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(workgroup_id) wid: vec3u, @builtin(subgroup_invocation_id) sg_lane: u32) {
  let n4 = p.c_out / 4u;
  let col = min(gid.x, n4 - 1u);
  let row0 = gid.y * 8u;
  let lo = filter_rows4(row0);
  let hi = filter_rows4(row0 + 4u);
  let lane = sg_lane & 7u;
  let split = wid.z;            // from workgroup_id, so that the loop over k stays uniform
  let k_begin = split * p.k_split;
  let k_end = min(p.pixels, k_begin + p.k_split);
  let first = k_begin + lane;
  var pix = vec3u(first / (p.oh * p.ow), (first / p.ow) % p.oh, first % p.ow);   // (n, oh, ow) of this lane
  var acc: array<vec4f, 8>;

  // Full chunks with a constant 8 steps (k_chunk's branches fold away), then the partial last chunk.
  var k0 = k_begin;
  for (; k0 + 8u <= k_end; k0 += 8u) {
    let ih0 = pix.y * p.sh;
    let iw0 = pix.z * p.sw;
    let origin = i32(((pix.x * p.h + ih0) * p.w + iw0) * p.c_in);
    k_chunk(&acc, load4(lo, i32(ih0), i32(iw0), origin, true), load4(hi, i32(ih0), i32(iw0), origin, true), k0 * n4 + col, n4, 8u);
    pix = advance8(pix);
  }
  if (k0 < k_end) {
    let steps = k_end - k0;
    let ih0 = pix.y * p.sh;
    let iw0 = pix.z * p.sw;
    let origin = i32(((pix.x * p.h + ih0) * p.w + iw0) * p.c_in);
    let live = lane < steps;     // lanes past the end hold pixels beyond the range: zero, and unused
    k_chunk(&acc, load4(lo, i32(ih0), i32(iw0), origin, live), load4(hi, i32(ih0), i32(iw0), origin, live), k0 * n4 + col, n4, steps);
  }

  if (gid.x >= n4) { return; }
  let base = split * p.rows;
  for (var r = 0u; r < 8u; r++) {
    let m = row0 + r;
    if (m >= p.rows) { break; }
    out[(base + m) * n4 + col] = acc[r];
  }
}
