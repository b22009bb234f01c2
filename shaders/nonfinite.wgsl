// Non-finite detection: `flag` becomes 1.0 when any element of x is NaN, +Inf or −Inf, and is left as it
// was otherwise (the caller zeroes it once and may run this over several tensors into the same flag).
//
// An f32 is NaN or infinite exactly when its 8 exponent bits are all ones, so the test is on the bits: x is
// bound as array<u32>. Testing the floats themselves (x != x, or x − x != 0) is not reliable, because WGSL
// lets an implementation assume that floating-point values are finite and optimise accordingly; integer
// operations have no such licence. A hit sets the flag with atomicOr of the bits of 1.0, so the flag reads
// as the f32 1.0 or 0.0 and no second pass is needed to convert it. Hits are rare, so the atomics are too.

override WG: u32 = 64u;

struct Params {
  n: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> flag: array<atomic<u32>>;

const EXPONENT_BITS: u32 = 0x7f800000u;
const ONE_F32_BITS: u32 = 0x3f800000u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  if ((x[i] & EXPONENT_BITS) == EXPONENT_BITS) {
    atomicOr(&flag[0], ONE_F32_BITS);
  }
}
