// Conversion between f32 and f16 storage.
//
// An f16 tensor packs two elements into each u32 word: element 2k in the low 16 bits and element 2k + 1
// in the high 16 bits, which is the little-endian layout of an array<f16>. For an odd length the high half
// of the last word is zero. Both entry points take one word per invocation, so no two invocations write
// the same word, and neither needs 16-bit storage access.
//
// f32 → f16 rounds to nearest, ties to even, whatever the device does by default:
//   NaN                          → quiet NaN (0x7e00), sign kept
//   |v| ≥ 65520                  → ±infinity (65520 is halfway between 65504, the largest f16, and 2^16)
//   2^-14 ≤ |v| < 65520          → the hardware conversion f16(v), with v clamped to ±65504 first
//   |v| < 2^-14 (f16 subnormals) → computed exactly here: the mantissa is round(|v|·2^24), and WGSL's
//                                  round() breaks ties to even. Devices may flush subnormals, so the
//                                  hardware conversion is not trusted with them.
// WGSL lets an implementation round an inexact conversion either way; every device we test rounds to
// nearest even, and test/ops/cast.test.ts checks that against @petamoriken/float16.
// f16 → f32 is exact; subnormal halves are again computed here (mantissa · 2^-24) rather than trusted
// to the device.

enable f16;

override WG: u32 = 64u;

struct Params {
  n: u32,       // elements
  words: u32,   // ceil(n / 2): one invocation per word
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;

const SMALLEST_NORMAL_F16: f32 = 6.103515625e-05;   // 2^-14
const TWO_POW_24: f32 = 16777216.0;

/** The 16 bits of the f16 nearest to the f32 with bit pattern `bits`. */
fn f16_bits(bits: u32) -> u32 {
  let sign = (bits >> 16u) & 0x8000u;
  let mag = bits & 0x7fffffffu;
  if (mag > 0x7f800000u) { return sign | 0x7e00u; }
  let a = bitcast<f32>(mag);
  if (a >= 65520.0) { return sign | 0x7c00u; }
  if (a < SMALLEST_NORMAL_F16) { return sign | u32(round(a * TWO_POW_24)); }
  let h = f16(min(a, 65504.0));
  return sign | (bitcast<u32>(vec2<f16>(h, 0.0h)) & 0xffffu);
}

/** The f32 bit pattern of the f16 with bits `h` (low 16 bits). */
fn f32_bits(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  if ((h & 0x7c00u) == 0u) {
    return sign | bitcast<u32>(f32(h & 0x3ffu) / TWO_POW_24);
  }
  return bitcast<u32>(f32(bitcast<vec2<f16>>(h)[0]));
}

@compute @workgroup_size(WG)
fn to_f16(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = gid.x + gid.y * nwg.x * WG;
  if (k >= p.words) { return; }
  let lo = f16_bits(x[2u * k]);
  var hi = 0u;
  if (2u * k + 1u < p.n) { hi = f16_bits(x[2u * k + 1u]); }
  y[k] = lo | (hi << 16u);
}

@compute @workgroup_size(WG)
fn to_f32(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = gid.x + gid.y * nwg.x * WG;
  if (k >= p.words) { return; }
  let w = x[k];
  y[2u * k] = f32_bits(w & 0xffffu);
  if (2u * k + 1u < p.n) { y[2u * k + 1u] = f32_bits(w >> 16u); }
}
