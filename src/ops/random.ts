/**
 * Seeded random tensors on the GPU, and the Keras weight initialisers built on them.
 *
 * The generator is Philox-4x32-10 (shaders/random.wgsl), a counter-based RNG: element i of any random
 * tensor is a pure function of (seed, i). There is no hidden state, so the same seed gives the same tensor
 * on every run, device and dispatch shape, and the plain-TypeScript reference below reproduces it: exactly
 * for bits and uniforms, and up to the device's sin/cos/log error for normals.
 *
 * Seeds are integers in [0, 2^53), used as Philox's 64-bit key. They are required: Graft has no global
 * random state. To draw several tensors, use several seeds (e.g. base + layer index).
 *
 * Fans follow Keras: a dense kernel [in, out] has fanIn = in, fanOut = out; a conv kernel HWIO
 * [h, w, in, out] has fanIn = h·w·in and fanOut = h·w·out. Keras's normal initialisers (HeNormal,
 * GlorotNormal) draw from a normal truncated at two standard deviations, with the standard deviation divided
 * by 0.8796… (the std of a standard normal truncated to [−2, 2]) so the result has the intended std.
 */
import { Uniforms } from '../gpu/uniforms.js';
import { type Shape, Tensor } from '../tensor/tensor.js';
import { ArgumentError } from '../errors.js';
import { launchFlat } from './kernel.js';

const WG = 64;
const DIST = { bits: 0, uniform: 1, normal: 2, truncatedNormal: 3 } as const;
/** The standard deviation of a standard normal truncated to [−2, 2] (Keras's constant). */
export const TRUNCATED_STD = 0.87962566103423978;

export interface UniformOptions {
  seed: number;
  /** Inclusive lower bound; default 0. */
  low?: number;
  /** Exclusive upper bound; default 1. */
  high?: number;
}

export interface NormalOptions {
  seed: number;
  mean?: number;
  /** Standard deviation; default 1. For truncatedNormal, that of the normal before truncation. */
  std?: number;
}

function checkOptions(op: string, options: object, allowed: readonly string[]): void {
  for (const k of Object.keys(options)) {
    if (!allowed.includes(k)) throw new ArgumentError(`${op}: unknown option '${k}'; expected ${allowed.map((a) => `'${a}'`).join(', ')}.`);
  }
}

/** The seed as Philox's key (low and high 32 bits). */
export function seedKey(op: string, seed: number): [number, number] {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new ArgumentError(`${op}: seed must be an integer in [0, 2^53), got ${seed}.`);
  }
  return [seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0];
}

function finite(op: string, name: string, v: number): number {
  if (!Number.isFinite(v)) throw new ArgumentError(`${op}: ${name} must be a finite number, got ${v}.`);
  return v;
}

function generate(op: string, kind: keyof typeof DIST, shape: Shape, seed: number, a: number, b: number): Tensor {
  const key = seedKey(op, seed);
  const out = Tensor.empty(shape, kind === 'bits' ? 'u32' : 'f32', op);
  if (out.size === 0) return out;
  // Windows of a large tensor start on a block boundary (perInvocation: 4), and each passes its first
  // block so that element i is still drawn from counter i div 4: windowed or not, the values are the same.
  launchFlat(op, {
    shader: 'random',
    constants: { DIST: DIST[kind], WG },
    uniforms: ({ start, count }) => new Uniforms().u32(count).u32(key[0]).u32(key[1]).u32(start / 4).f32(a).f32(b),
    inputs: [],
    outputs: [out],
    elements: out.size,
    workgroupSize: WG,
    perInvocation: 4,
    flopsPerElement: 40,
  });
  return out;
}

/** Raw Philox output: a u32 tensor of uniformly distributed 32-bit words. */
export function randomBits(shape: Shape, seed: number): Tensor {
  return generate('randomBits', 'bits', shape, seed, 0, 0);
}

/** Uniform in [low, high) (24 random bits per value). */
export function randomUniform(shape: Shape, options: UniformOptions): Tensor {
  checkOptions('randomUniform', options, ['seed', 'low', 'high']);
  const low = finite('randomUniform', 'low', options.low ?? 0);
  const high = finite('randomUniform', 'high', options.high ?? 1);
  if (!(low < high)) throw new ArgumentError(`randomUniform: low (${low}) must be less than high (${high}).`);
  return generate('randomUniform', 'uniform', shape, options.seed, low, Math.fround(high - low));
}

function normalParams(op: string, options: NormalOptions): [number, number] {
  checkOptions(op, options, ['seed', 'mean', 'std']);
  const mean = finite(op, 'mean', options.mean ?? 0);
  const std = finite(op, 'std', options.std ?? 1);
  if (std < 0) throw new ArgumentError(`${op}: std must be non-negative, got ${std}.`);
  return [mean, std];
}

/** Normal with the given mean and standard deviation (Box–Muller). */
export function randomNormal(shape: Shape, options: NormalOptions): Tensor {
  const [mean, std] = normalParams('randomNormal', options);
  return generate('randomNormal', 'normal', shape, options.seed, mean, std);
}

/** Normal, with values more than two standard deviations from the mean redrawn (Keras's TruncatedNormal). */
export function truncatedNormal(shape: Shape, options: NormalOptions): Tensor {
  const [mean, std] = normalParams('truncatedNormal', options);
  return generate('truncatedNormal', 'truncatedNormal', shape, options.seed, mean, std);
}

// ---------------------------------------------------------------------------------------------------------
// Initialisers (Keras's definitions)

/** Keras's fan-in and fan-out of a weight shape: [in, out], or [...receptive field, in, out]. */
export function computeFans(shape: Shape): { fanIn: number; fanOut: number } {
  if (shape.length === 0) return { fanIn: 1, fanOut: 1 };
  if (shape.length === 1) return { fanIn: shape[0]!, fanOut: shape[0]! };
  const receptive = shape.slice(0, -2).reduce((a, d) => a * d, 1);
  return { fanIn: shape[shape.length - 2]! * receptive, fanOut: shape[shape.length - 1]! * receptive };
}

/** Uniform in ±sqrt(6 / (fanIn + fanOut)). Keras's default for Dense and Conv2D kernels. */
export function glorotUniform(shape: Shape, seed: number): Tensor {
  const { fanIn, fanOut } = computeFans(shape);
  const limit = Math.sqrt(6 / Math.max(1, fanIn + fanOut));
  return randomUniform(shape, { seed, low: -limit, high: limit });
}

/** Truncated normal with std sqrt(2 / (fanIn + fanOut)) after truncation. */
export function glorotNormal(shape: Shape, seed: number): Tensor {
  const { fanIn, fanOut } = computeFans(shape);
  return truncatedNormal(shape, { seed, std: Math.sqrt(2 / Math.max(1, fanIn + fanOut)) / TRUNCATED_STD });
}

/** Truncated normal with std sqrt(2 / fanIn) after truncation (He et al. 2015, as Keras's HeNormal). */
export function heNormal(shape: Shape, seed: number): Tensor {
  const { fanIn } = computeFans(shape);
  return truncatedNormal(shape, { seed, std: Math.sqrt(2 / Math.max(1, fanIn)) / TRUNCATED_STD });
}

/** Uniform in ±sqrt(6 / fanIn). */
export function heUniform(shape: Shape, seed: number): Tensor {
  const { fanIn } = computeFans(shape);
  const limit = Math.sqrt(6 / Math.max(1, fanIn));
  return randomUniform(shape, { seed, low: -limit, high: limit });
}

// ---------------------------------------------------------------------------------------------------------
// Plain-TypeScript reference of the same generator (BigInt products, f64 transcendentals).

const M0 = 0xd2511f53n;
const M1 = 0xcd9e8d57n;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** Philox-4x32-10 of a counter (four u32) under a key (two u32). */
export function philox4x32(counter: readonly number[], key: readonly number[]): Uint32Array {
  let [c0, c1, c2, c3] = counter.map((v) => v >>> 0) as [number, number, number, number];
  let [k0, k1] = key.map((v) => v >>> 0) as [number, number];
  for (let r = 0; r < 10; r++) {
    if (r > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const p0 = M0 * BigInt(c0);
    const p1 = M1 * BigInt(c2);
    const [hi0, lo0] = [Number(p0 >> 32n), Number(p0 & 0xffffffffn)];
    const [hi1, lo1] = [Number(p1 >> 32n), Number(p1 & 0xffffffffn)];
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
  }
  return Uint32Array.of(c0, c1, c2, c3);
}

export function randomBitsRef(n: number, seed: number): Uint32Array {
  const key = seedKey('randomBitsRef', seed);
  const out = new Uint32Array(n);
  for (let b = 0; 4 * b < n; b++) {
    const w = philox4x32([b, 0, 0, 0], key);
    for (let j = 0; j < 4 && 4 * b + j < n; j++) out[4 * b + j] = w[j]!;
  }
  return out;
}

const unit = (w: number) => (w >>> 8) * 2 ** -24;

/** Exactly what the GPU computes: f32 low + f32(high − low)·u, each step rounded to f32. */
export function randomUniformRef(n: number, { seed, low = 0, high = 1 }: UniformOptions): Float32Array {
  const scale = Math.fround(high - low);
  return Float32Array.from(randomBitsRef(n, seed), (w) => Math.fround(Math.fround(low) + Math.fround(scale * unit(w))));
}

/** Four standard normals from one block of words, as in random.wgsl but in f64. */
function normalsRef(w: Uint32Array): number[] {
  const out: number[] = [];
  for (const j of [0, 2]) {
    const u1 = ((w[j]! >>> 8) + 1) * 2 ** -24;
    const theta = Math.fround(Math.fround(Math.PI) * (2 * unit(w[j + 1]!) - 1));
    const r = Math.sqrt(-2 * Math.log(u1));
    out.push(r * Math.cos(theta), r * Math.sin(theta));
  }
  return out;
}

export function randomNormalRef(n: number, { seed, mean = 0, std = 1 }: NormalOptions): Float64Array {
  const key = seedKey('randomNormalRef', seed);
  const out = new Float64Array(n);
  for (let b = 0; 4 * b < n; b++) {
    const z = normalsRef(philox4x32([b, 0, 0, 0], key));
    for (let j = 0; j < 4 && 4 * b + j < n; j++) out[4 * b + j] = mean + std * z[j]!;
  }
  return out;
}

export function truncatedNormalRef(n: number, { seed, mean = 0, std = 1 }: NormalOptions): Float64Array {
  const key = seedKey('truncatedNormalRef', seed);
  const out = new Float64Array(n);
  for (let b = 0; 4 * b < n; b++) {
    for (let j = 0; j < 4 && 4 * b + j < n; j++) {
      let z = Infinity;
      for (let r = 0; r < 32 && Math.abs(z) > 2; r++) z = normalsRef(philox4x32([b, r, 0, 0], key))[j]!;
      out[4 * b + j] = mean + std * Math.min(2, Math.max(-2, z));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Seeded randomness on the CPU, for shuffling and data augmentation (data loaders, fit, examples).

/** mulberry32: a tiny 32-bit generator, uniform in [0, 1). Deterministic from `seed`. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates shuffle driven by `random`, in place; returns `items`. */
export function shuffleInPlace<A extends { length: number; [i: number]: unknown }>(items: A, random: () => number): A {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = items[i];
    items[i] = items[j]!;
    items[j] = t;
  }
  return items;
}

/** A deterministic permutation of 0..n−1 (Fisher–Yates with mulberry32). */
export function permutation(n: number, seed: number): Uint32Array {
  return shuffleInPlace(Uint32Array.from({ length: n }, (_, i) => i), mulberry32(seed));
}
