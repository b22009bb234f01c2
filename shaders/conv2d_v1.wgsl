// Conv2d v1: direct convolution, one output element per invocation. The baseline for the faster kernels
// and the version every shape can run. NHWC activations, HWIO filters.
//
// Three entry points, one per term of the chain rule of y = conv(x, w):
//   main      y[n, oh, ow, co]  = Σ_{kh, kw, ci} x[n, oh·sh − pt + kh, ow·sw − pl + kw, ci] · w[kh, kw, ci, co]
//             (+ bias[co], then relu if ACT == 1); taps that fall in the padding read zero.
//   main_dx   dx[n, ih, iw, ci] = Σ_{kh, kw, co} g[n, oh, ow, co] · w[kh, kw, ci, co], over the taps where
//             ih = oh·sh − pt + kh for an integer 0 ≤ oh < OH (and likewise for iw): the forward's
//             gather, read backwards.
//   main_dw   dw[kh, kw, ci, co] = Σ_{n, oh, ow} x[n, oh·sh − pt + kh, ow·sw − pl + kw, ci] · g[n, oh, ow, co].
// Each entry declares only the bindings it uses, so that they sit at 1, 2, … in the order the host passes.

override WG: u32 = 64u;
override HAS_BIAS: bool = false;
override ACT: u32 = 0u;          // 0 none, 1 relu

struct Params {
  n: u32, h: u32, w: u32, c_in: u32,          // x is [n, h, w, c_in]
  oh: u32, ow: u32, c_out: u32, kh: u32,      // y is [n, oh, ow, c_out]; w is [kh, kw, c_in, c_out]
  kw: u32, sh: u32, sw: u32, total: u32,      // strides; total = number of outputs of this entry
  pt: i32, pl: i32, _pad0: u32, _pad1: u32,   // padding before (top, left)
}

@group(0) @binding(0) var<uniform> p: Params;

// main: x, w, bias → y
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
// main_dx: g, w → dx
@group(0) @binding(1) var<storage, read> g_dx: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
// main_dw: x, g → dw
@group(0) @binding(2) var<storage, read> g_dw: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;

fn flat_index(gid: vec3u, nwg: vec3u) -> u32 {
  return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i >= p.total) { return; }
  let co = i % p.c_out;
  let pix = i / p.c_out;
  let ow = pix % p.ow;
  let oh = (pix / p.ow) % p.oh;
  let n = pix / (p.ow * p.oh);
  var acc = 0.0;
  for (var kh = 0u; kh < p.kh; kh++) {
    let ih = i32(oh * p.sh + kh) - p.pt;
    if (ih < 0 || ih >= i32(p.h)) { continue; }
    for (var kw = 0u; kw < p.kw; kw++) {
      let iw = i32(ow * p.sw + kw) - p.pl;
      if (iw < 0 || iw >= i32(p.w)) { continue; }
      let xi = ((n * p.h + u32(ih)) * p.w + u32(iw)) * p.c_in;
      let wi = (kh * p.kw + kw) * p.c_in * p.c_out + co;
      for (var ci = 0u; ci < p.c_in; ci++) {
        acc += x[xi + ci] * w[wi + ci * p.c_out];
      }
    }
  }
  if (HAS_BIAS) { acc += bias[co]; }
  if (ACT == 1u) { acc = max(acc, 0.0); }
  y[i] = acc;
}

@compute @workgroup_size(WG)
fn main_dx(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i >= p.total) { return; }
  let ci = i % p.c_in;
  let pix = i / p.c_in;
  let iw = pix % p.w;
  let ih = (pix / p.w) % p.h;
  let n = pix / (p.w * p.h);
  var acc = 0.0;
  for (var kh = 0u; kh < p.kh; kh++) {
    let th = i32(ih) + p.pt - i32(kh);           // = oh·sh for the output row that used this tap
    if (th < 0 || th % i32(p.sh) != 0) { continue; }
    let oh = u32(th) / p.sh;
    if (oh >= p.oh) { continue; }
    for (var kw = 0u; kw < p.kw; kw++) {
      let tw = i32(iw) + p.pl - i32(kw);
      if (tw < 0 || tw % i32(p.sw) != 0) { continue; }
      let ow = u32(tw) / p.sw;
      if (ow >= p.ow) { continue; }
      let gi = ((n * p.oh + oh) * p.ow + ow) * p.c_out;
      let wi = ((kh * p.kw + kw) * p.c_in + ci) * p.c_out;
      for (var co = 0u; co < p.c_out; co++) {
        acc += g_dx[gi + co] * w[wi + co];
      }
    }
  }
  dx[i] = acc;
}

@compute @workgroup_size(WG)
fn main_dw(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = flat_index(gid, nwg);
  if (i >= p.total) { return; }
  let co = i % p.c_out;
  let ci = (i / p.c_out) % p.c_in;
  let tap = i / (p.c_out * p.c_in);
  let kw = tap % p.kw;
  let kh = tap / p.kw;
  var acc = 0.0;
  for (var n = 0u; n < p.n; n++) {
    for (var oh = 0u; oh < p.oh; oh++) {
      let ih = i32(oh * p.sh + kh) - p.pt;
      if (ih < 0 || ih >= i32(p.h)) { continue; }
      for (var ow = 0u; ow < p.ow; ow++) {
        let iw = i32(ow * p.sw + kw) - p.pl;
        if (iw < 0 || iw >= i32(p.w)) { continue; }
        let xi = ((n * p.h + u32(ih)) * p.w + u32(iw)) * p.c_in + ci;
        let gi = ((n * p.oh + oh) * p.ow + ow) * p.c_out + co;
        acc += x[xi] * g_dw[gi];
      }
    }
  }
  dw[i] = acc;
}
