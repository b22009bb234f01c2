// Conv2d filter gradient v2: dW as an implicit GEMM with a 4×4 register tile and no optional features
// (the fallback of conv2d_filter_grad_v3.wgsl, which explains the GEMM and the split-K partials).
//
// Each invocation owns 4 rows (kh, kw, ci) × 4 output channels. All invocations walk the same output
// pixels in the same order, so the pixel coordinates (n, oh, ow) are uniform and advance by counting.
// Per pixel: 4 values of A (x at the pixel shifted by each row's tap, zero in the padding), 4 of g, and
// 16 multiply-adds.
//
// Two entry points:
//   main       any c_out: g is read as 4 scalars (columns clamped into range); only real channels stored.
//   main_vec4  c_out % 4 == 0: g and the output are accessed as vec4.

override WG_X: u32 = 16u;
override WG_Y: u32 = 4u;

struct Params {
  n: u32, h: u32, w: u32, c_in: u32,
  oh: u32, ow: u32, c_out: u32, kw: u32,
  sh: u32, sw: u32, pt: i32, pl: i32,
  rows: u32, pixels: u32, k_split: u32, _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@group(0) @binding(2) var<storage, read> g4: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> out4: array<vec4f>;

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

fn load4(r: FilterRows4, ih0: i32, iw0: i32, origin: i32) -> vec4f {
  let ih = vec4i(ih0) + r.dh;
  let iw = vec4i(iw0) + r.dw;
  let ok = (ih >= vec4i(0)) & (ih < vec4i(i32(p.h))) & (iw >= vec4i(0)) & (iw < vec4i(i32(p.w)));
  let idx = select(vec4u(0u), vec4u(vec4i(origin) + r.off), ok);
  return select(vec4f(0.0), vec4f(x[idx.x], x[idx.y], x[idx.z], x[idx.w]), ok);
}

/** The output pixel (n, oh, ow) where this workgroup's range of pixels starts. */
fn first_pixel(k: u32) -> vec3u {
  return vec3u(k / (p.oh * p.ow), (k / p.ow) % p.oh, k % p.ow);
}

/** The next output pixel after c, by counting (uniform: every invocation walks the same pixels). */
fn next_pixel(c: vec3u) -> vec3u {
  var r = vec3u(c.x, c.y, c.z + 1u);
  if (r.z == p.ow) {
    r.z = 0u;
    r.y += 1u;
    if (r.y == p.oh) {
      r.y = 0u;
      r.x += 1u;
    }
  }
  return r;
}

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let col0 = gid.x * 4u;
  let cols = min(vec4u(col0) + vec4u(0u, 1u, 2u, 3u), vec4u(p.c_out - 1u));
  let row0 = gid.y * 4u;
  let r4 = filter_rows4(row0);
  let k_begin = gid.z * p.k_split;
  let k_end = min(p.pixels, k_begin + p.k_split);
  var pix = first_pixel(k_begin);
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var k = k_begin; k < k_end; k++) {
    let ih0 = pix.y * p.sh;
    let iw0 = pix.z * p.sw;
    let a = load4(r4, i32(ih0), i32(iw0), i32(((pix.x * p.h + ih0) * p.w + iw0) * p.c_in));
    let gi = k * p.c_out;
    let bv = vec4f(g[gi + cols.x], g[gi + cols.y], g[gi + cols.z], g[gi + cols.w]);
    acc0 += a.x * bv;
    acc1 += a.y * bv;
    acc2 += a.z * bv;
    acc3 += a.w * bv;
    pix = next_pixel(pix);
  }
  let acc = array<vec4f, 4>(acc0, acc1, acc2, acc3);
  let base = gid.z * p.rows;
  for (var i = 0u; i < 4u; i++) {
    let m = row0 + i;
    if (m >= p.rows) { break; }
    for (var j = 0u; j < 4u; j++) {
      if (col0 + j < p.c_out) { out[(base + m) * p.c_out + col0 + j] = acc[i][j]; }
    }
  }
}

@compute @workgroup_size(WG_X, WG_Y)
fn main_vec4(@builtin(global_invocation_id) gid: vec3u) {
  let n4 = p.c_out / 4u;
  let col = min(gid.x, n4 - 1u);
  let row0 = gid.y * 4u;
  let r4 = filter_rows4(row0);
  let k_begin = gid.z * p.k_split;
  let k_end = min(p.pixels, k_begin + p.k_split);
  var pix = first_pixel(k_begin);
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var k = k_begin; k < k_end; k++) {
    let ih0 = pix.y * p.sh;
    let iw0 = pix.z * p.sw;
    let a = load4(r4, i32(ih0), i32(iw0), i32(((pix.x * p.h + ih0) * p.w + iw0) * p.c_in));
    let bv = g4[k * n4 + col];
    acc0 += a.x * bv;
    acc1 += a.y * bv;
    acc2 += a.z * bv;
    acc3 += a.w * bv;
    pix = next_pixel(pix);
  }
  if (gid.x >= n4) { return; }
  let acc = array<vec4f, 4>(acc0, acc1, acc2, acc3);
  let base = gid.z * p.rows;
  for (var i = 0u; i < 4u; i++) {
    let m = row0 + i;
    if (m >= p.rows) { break; }
    out4[(base + m) * n4 + col] = acc[i];
  }
}
