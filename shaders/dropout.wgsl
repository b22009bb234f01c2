// Inverted dropout: y[i] = x[i]·scale where element i is kept, else 0, with scale = 1 / (1 − rate).
//
// The keep decision is a pure function of (seed, i), drawn with the Philox-4x32-10 generator of
// random.wgsl (see there for the algorithm; the two functions below are a copy and must stay identical).
// Element i uses word (i mod 4) of philox((i div 4, 0, 0, STREAM), seed) and is kept when that word is at
// least `threshold` = round(rate·2^32), so P(keep) = 1 − rate to within 2^-32. STREAM = 1 in the last
// counter word separates these words from those of randomBits/randomUniform (stream 0) under the same seed.
//
// Because the mask depends on nothing but (seed, i), the backward pass is this same kernel applied to
// the upstream gradient: dx = g·mask·scale. No mask is stored.

override WG: u32 = 64u;

struct Params {
  n: u32,
  key0: u32,        // seed, low 32 bits
  key1: u32,        // seed, high bits
  threshold: u32,   // keep when the random word is ≥ threshold
  scale: f32,       // 1 / (1 − rate), rounded to f32
  block0: u32,      // the window's first block (a large tensor runs in windows): element 0 is element 4·block0
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

const STREAM: u32 = 1u;

// ---- Copied from random.wgsl ----
const M0: u32 = 0xD2511F53u;
const M1: u32 = 0xCD9E8D57u;
const W0: u32 = 0x9E3779B9u;
const W1: u32 = 0xBB67AE85u;

fn mulhilo(a: u32, b: u32) -> vec2u {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p10 = a1 * b0;
  let mid = ((a0 * b0) >> 16u) + (p10 & 0xffffu) + a0 * b1;
  return vec2u(a1 * b1 + (p10 >> 16u) + (mid >> 16u), a * b);
}

fn philox(counter: vec4u, seed: vec2u) -> vec4u {
  var c = counter;
  var k = seed;
  for (var r = 0u; r < 10u; r++) {
    if (r > 0u) { k += vec2u(W0, W1); }
    let p0 = mulhilo(M0, c.x);
    let p1 = mulhilo(M1, c.z);
    c = vec4u(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
  }
  return c;
}
// ---- end of copy ----

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let b = gid.x + gid.y * nwg.x * WG;   // block of four elements, within the window
  if (4u * b >= p.n) { return; }
  let words = philox(vec4u(p.block0 + b, 0u, 0u, STREAM), vec2u(p.key0, p.key1));
  for (var j = 0u; j < 4u; j++) {
    let i = 4u * b + j;
    if (i < p.n) {
      y[i] = select(0.0, x[i] * p.scale, words[j] >= p.threshold);
    }
  }
}
