// col2im: the second half of a convolution's input gradient computed as a GEMM and a gather
// (src/ops/conv-col2im.ts). The first half is one matmul of every output pixel's gradient with the whole
// filter, w [KH, KW, C, F] seen as [KH·KW·C, F]:
//
//   cols[n, oy, ox, ky, kx, c] = Σ_f dY[n, oy, ox, f] · w[ky, kx, c, f]
//
// and this kernel adds up, for each input element, the columns of the outputs whose windows read it in the
// forward pass. Output (oy, ox) reads input (oy·sh − pt + ky, ox·sw − pl + kx) through tap (ky, kx), so
//
//   dX[n, iy, ix, c] = Σ cols[n, oy, ox, ky, kx, c]   over the taps with iy + pt − ky = oy·sh, 0 ≤ oy < OH
//                                                      (and the same for x)
//
// Every input element is written once, by one invocation, so no atomics are needed. The GEMM does only
// the multiply-adds that the convolution does: a gather over dY (conv2d_v3's dX) also multiplies the zeros
// of the padding around dY, which for a 5×5 'valid' convolution of an 8×8 output is more than half of its
// work.
//
// One invocation per vec4 of channels of one input pixel (C % 4 == 0, as for conv2d_v3's dX).

override WG: u32 = 64u;

struct Params {
  n: u32,          // invocations
  H: u32, W: u32, C: u32,
  OH: u32, OW: u32, KH: u32, KW: u32,
  sh: u32, sw: u32, pt: u32, pl: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> cols4: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> dx4: array<vec4f>;

/** Index of cols[n, oy, ox, ky, kx, 0]. */
fn column_base(n: u32, oy: u32, ox: u32, ky: u32, kx: u32) -> u32 {
  return (((n * p.OH + oy) * p.OW + ox) * p.KH * p.KW + ky * p.KW + kx) * p.C;
}

/**
 * The smallest tap k ≡ t (mod stride) whose output (t − k)/stride is below `out`; beyond every tap (so the
 * loop runs zero times) when t is too far past the last output. The loop's k ≤ t bound keeps o ≥ 0.
 */
fn first_tap(t: u32, stride: u32, out: u32) -> u32 {
  let last = (out - 1u) * stride;             // padded coordinate of the last output's first tap
  let lo = select(0u, t - last, t > last);     // k ≥ t − (out − 1)·stride
  return lo + (t - lo) % stride;               // rounded up to k ≡ t (mod stride)
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let c4 = p.C / 4u;
  let cg = i % c4;
  let pixel = i / c4;
  let ix = pixel % p.W;
  let iy = (pixel / p.W) % p.H;
  let n = pixel / (p.W * p.H);
  // The taps that reach this pixel: ky ≡ ty (mod sh) with 0 ≤ ky < KH, ky ≤ ty and oy = (ty − ky)/sh < OH,
  // so oy falls by one as ky rises by sh (and likewise for x): no division inside the loops.
  let ty = iy + p.pt;   // padded coordinates
  let tx = ix + p.pl;
  let ky0 = first_tap(ty, p.sh, p.OH);
  let kx0 = first_tap(tx, p.sw, p.OW);
  var total = vec4f(0.0);
  var oy = (ty - ky0) / p.sh;
  for (var ky = ky0; ky < min(p.KH, ty + 1u); ky += p.sh) {
    var ox = (tx - kx0) / p.sw;
    for (var kx = kx0; kx < min(p.KW, tx + 1u); kx += p.sw) {
      total += cols4[column_base(n, oy, ox, ky, kx) / 4u + cg];
      ox -= 1u;
    }
    oy -= 1u;
  }
  dx4[pixel * c4 + cg] = total;
}
