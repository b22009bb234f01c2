// Counter-based random numbers: Philox-4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random numbers:
// as easy as 1, 2, 3", SC 2011).
//
// Philox is a keyed bijection on 128-bit counters. Each of its ten rounds multiplies two of the four
// 32-bit words by fixed constants into 64-bit products and XORs the high halves with the other words and
// the key; the 64-bit key (the seed) is bumped by two Weyl constants between rounds. Its outputs pass
// BigCrush, and any counter can be computed on its own, so there is no generator state at all.
//
// Element i of the output is word (i mod 4) of philox((i div 4, round, 0, 0), seed). One invocation
// computes one block of four elements, so every value depends on (seed, i) alone: not on the workgroup
// size, the dispatch shape, or timing. A tensor over the storage binding limit is generated in windows;
// `out` is then the window, whose first element is element 4·block0 of the tensor. `round` is 0, except that the truncated normal redraws an element
// with rounds 1, 2, … until it lands within two standard deviations.
//
// DIST: 0 raw u32 bits; 1 uniform in [a, a + b); 2 normal with mean a and standard deviation b;
// 3 normal truncated to |z| ≤ 2, then a + b·z.
//
// Uniform: u = (w >> 8)·2^-24, the 24 high bits of a word, exact in f32 and in [0, 1).
// Normal (Box–Muller): from two words, u1 = ((w0 >> 8) + 1)·2^-24 in (0, 1] (so log(u1) is finite) and
// u2 = (w1 >> 8)·2^-24; with r = sqrt(−2·ln u1) and θ = π·(2·u2 − 1) in [−π, π), r·cos θ and r·sin θ are
// two independent standard normals. Words (0, 1) give elements 0 and 1 of a block, words (2, 3) give 2, 3.

override DIST: u32 = 0u;
override WG: u32 = 64u;

struct Params {
  n: u32,        // elements in this window
  key0: u32,     // seed, low 32 bits
  key1: u32,     // seed, high bits
  block0: u32,   // the window's first block: its element 0 is element 4·block0 of the tensor
  a: f32,        // low, or mean
  b: f32,        // high − low, or standard deviation
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

const M0: u32 = 0xD2511F53u;
const M1: u32 = 0xCD9E8D57u;
const W0: u32 = 0x9E3779B9u;   // golden ratio
const W1: u32 = 0xBB67AE85u;   // sqrt(3) − 1
const PI: f32 = 3.14159265358979;
const TWO_POW_M24: f32 = 5.9604644775390625e-08;
const TRUNCATE_ROUNDS: u32 = 32u;   // P(an element needs more) = 0.0455^32 ≈ 1e-43

/** The 64-bit product a·b as (high word, low word), from 16-bit halves (WGSL has no mul-high). */
fn mulhilo(a: u32, b: u32) -> vec2u {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p10 = a1 * b0;
  let mid = ((a0 * b0) >> 16u) + (p10 & 0xffffu) + a0 * b1;   // cannot overflow: at most 0xffffffff
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

fn unit(w: u32) -> f32 {
  return f32(w >> 8u) * TWO_POW_M24;
}

/**
 * −ln(u) for u = k·2^-24 in (0, 1]. Near u = 1 the result is tiny and a device's log, whose error WGSL
 * bounds only in absolute terms (2^-21 on [0.5, 2]), loses most of its digits; lavapipe's was off by 1.5 %
 * there. So for v = 1 − u < 1/16 (exact, as u ≥ 1/2) this sums −ln(1 − v) = v + v²/2 + v³/3 + …, whose
 * terms beyond the seventh are below 2^-28 relative.
 */
fn neg_log(u: f32) -> f32 {
  let v = 1.0 - u;
  if (v < 0.0625) {
    return v * (1.0 + v * (0.5 + v * (1.0 / 3.0 + v * (0.25 + v * (0.2 + v * (1.0 / 6.0 + v / 7.0))))));
  }
  return -log(u);
}

/** Four standard normals from the four words of a block. */
fn normals(w: vec4u) -> vec4f {
  let u1 = (vec2f(f32(w.x >> 8u), f32(w.z >> 8u)) + 1.0) * TWO_POW_M24;
  let theta = PI * (vec2f(unit(w.y), unit(w.w)) * 2.0 - 1.0);
  let r = sqrt(2.0 * vec2f(neg_log(u1.x), neg_log(u1.y)));
  return vec4f(r.x * cos(theta.x), r.x * sin(theta.x), r.y * cos(theta.y), r.y * sin(theta.y));
}

fn block(b: u32, seed: vec2u) -> vec4u {
  let w = philox(vec4u(b, 0u, 0u, 0u), seed);
  switch DIST {
    case 0u: { return w; }
    case 1u: {
      let u = vec4f(unit(w.x), unit(w.y), unit(w.z), unit(w.w));
      return bitcast<vec4u>(p.a + p.b * u);
    }
    case 2u: { return bitcast<vec4u>(p.a + p.b * normals(w)); }
    default: {
      var z = normals(w);
      var done = abs(z) <= vec4f(2.0);
      for (var r = 1u; r < TRUNCATE_ROUNDS && !all(done); r++) {
        z = select(normals(philox(vec4u(b, r, 0u, 0u), seed)), z, done);
        done = done | (abs(z) <= vec4f(2.0));
      }
      return bitcast<vec4u>(p.a + p.b * clamp(z, vec4f(-2.0), vec4f(2.0)));
    }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let b = gid.x + gid.y * nwg.x * WG;   // block within the window
  if (4u * b >= p.n) { return; }
  let v = block(p.block0 + b, vec2u(p.key0, p.key1));
  for (var j = 0u; j < 4u; j++) {
    if (4u * b + j < p.n) { out[4u * b + j] = v[j]; }
  }
}
