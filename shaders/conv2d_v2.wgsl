// Conv2d v2: implicit GEMM with a 4×4 register tile (4 destination pixels × 4 channels per invocation)
// and no optional features: the fallback where subgroups are missing (Deno) or c_out % 4 != 0.
// It runs the forward pass and dX through the same gather as v3; see conv2d_v3.wgsl for the GEMM and
// the maps in the uniform (this file takes the same Params).
//
// Per tap, each invocation computes its 4 pixels' source offsets and validity once; then per source
// channel it loads 4 values of A (zero in the padding, by select) and 4 filter values, for 16
// multiply-adds, like matmul v2. Lanes adjacent in x own adjacent 4-channel blocks.
//
// Two entry points:
//   main       any c_out: the filter and bias are read as 4 scalars (columns clamped into range), and
//              only in-range channels are stored.
//   main_vec4  c_out % 4 == 0: the filter, bias and output are accessed as vec4.

override WG_X: u32 = 16u;
override WG_Y: u32 = 4u;
override HAS_BIAS: bool = false;
override ACT: u32 = 0u;          // 0 none, 1 relu

struct Params {
  rows: u32, rows_u: u32, rows_v: u32, c_out: u32,
  c_in: u32, src_h: u32, src_w: u32, filter_w: u32,
  taps_h: u32, taps_w: u32, dst_h: u32, dst_w: u32,
  src_row_h: i32, src_tap_h: i32, src_off_h: i32, f_step_h: u32,
  src_row_w: i32, src_tap_w: i32, src_off_w: i32, f_step_w: u32,
  f_off_h: u32, f_off_w: u32, dst_step_h: u32, dst_step_w: u32,
  dst_off_h: u32, dst_off_w: u32, row_base: u32, _pad0: u32,   // row_base: first row of this dispatch
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

@group(0) @binding(2) var<storage, read> weights4: array<vec4f>;
@group(0) @binding(3) var<storage, read> bias4: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> dst4: array<vec4f>;

/** Four GEMM rows: where tap 0 reads (source row, column, and the image's first row n · src_h), and where they write. */
struct Rows4 {
  src_h: vec4i,
  src_w: vec4i,
  src_img: vec4i,
  dst: vec4u,      // element index of the destination pixel's first channel
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
  r.dst = ((n * p.dst_h + dh) * p.dst_w + dw) * p.c_out;
  return r;
}

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

fn load4(t: Taps4, c: u32) -> vec4f {
  return select(vec4f(0.0), vec4f(src[t.base.x + c], src[t.base.y + c], src[t.base.z + c], src[t.base.w + c]), t.ok);
}

fn epilogue(v: vec4f, bias_v: vec4f) -> vec4f {
  var r = v + bias_v;
  if (ACT == 1u) { r = max(r, vec4f(0.0)); }
  return r;
}

@compute @workgroup_size(WG_X, WG_Y)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let col0 = gid.x * 4u;
  let cols = min(vec4u(col0) + vec4u(0u, 1u, 2u, 3u), vec4u(p.c_out - 1u));
  let row0 = p.row_base + gid.y * 4u;
  let r4 = rows4(row0);
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var jh = 0u; jh < p.taps_h; jh++) {
    let fh = jh * p.f_step_h + p.f_off_h;
    for (var jw = 0u; jw < p.taps_w; jw++) {
      let fw = jw * p.f_step_w + p.f_off_w;
      let t = taps4(r4, i32(jh) * p.src_tap_h, i32(jw) * p.src_tap_w);
      var bi = (fh * p.filter_w + fw) * p.c_in * p.c_out;
      for (var c = 0u; c < p.c_in; c++) {
        let a = load4(t, c);
        let bv = vec4f(weights[bi + cols.x], weights[bi + cols.y], weights[bi + cols.z], weights[bi + cols.w]);
        acc0 += a.x * bv;
        acc1 += a.y * bv;
        acc2 += a.z * bv;
        acc3 += a.w * bv;
        bi += p.c_out;
      }
    }
  }
  var bias_v = vec4f(0.0);
  if (HAS_BIAS) { bias_v = vec4f(bias[cols.x], bias[cols.y], bias[cols.z], bias[cols.w]); }
  let out = array<vec4f, 4>(epilogue(acc0, bias_v), epilogue(acc1, bias_v), epilogue(acc2, bias_v), epilogue(acc3, bias_v));
  for (var i = 0u; i < 4u; i++) {
    if (row0 + i >= p.rows) { break; }
    for (var j = 0u; j < 4u; j++) {
      if (col0 + j < p.c_out) { dst[r4.dst[i] + col0 + j] = out[i][j]; }
    }
  }
}

@compute @workgroup_size(WG_X, WG_Y)
fn main_vec4(@builtin(global_invocation_id) gid: vec3u) {
  let n4 = p.c_out / 4u;
  let col = min(gid.x, n4 - 1u);
  let row0 = p.row_base + gid.y * 4u;
  let r4 = rows4(row0);
  var acc0 = vec4f(0.0);
  var acc1 = vec4f(0.0);
  var acc2 = vec4f(0.0);
  var acc3 = vec4f(0.0);
  for (var jh = 0u; jh < p.taps_h; jh++) {
    let fh = jh * p.f_step_h + p.f_off_h;
    for (var jw = 0u; jw < p.taps_w; jw++) {
      let fw = jw * p.f_step_w + p.f_off_w;
      let t = taps4(r4, i32(jh) * p.src_tap_h, i32(jw) * p.src_tap_w);
      var bi = (fh * p.filter_w + fw) * p.c_in * n4 + col;
      for (var c = 0u; c < p.c_in; c++) {
        let a = load4(t, c);
        let bv = weights4[bi];
        acc0 += a.x * bv;
        acc1 += a.y * bv;
        acc2 += a.z * bv;
        acc3 += a.w * bv;
        bi += n4;
      }
    }
  }
  var bias_v = vec4f(0.0);
  if (HAS_BIAS) { bias_v = bias4[col]; }
  let out = array<vec4f, 4>(epilogue(acc0, bias_v), epilogue(acc1, bias_v), epilogue(acc2, bias_v), epilogue(acc3, bias_v));
  if (gid.x >= n4) { return; }
  for (var i = 0u; i < 4u; i++) {
    if (row0 + i >= p.rows) { break; }
    dst4[r4.dst[i] / 4u + col] = out[i];
  }
}
