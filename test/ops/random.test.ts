import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { expectClose, gpuRuns } from '../util/check.js';
import { tensor } from '../../src/tensor/create.js';
import { Tensor, liveTensorCount } from '../../src/tensor/tensor.js';
import { Uniforms } from '../../src/gpu/uniforms.js';
import { grid1d, launch } from '../../src/ops/kernel.js';
import { tidy } from '../../src/tensor/scope.js';
import { runtime } from '../../src/gpu/runtime.js';
import * as ops from '../../src/ops/index.js';
import {
  TRUNCATED_STD, computeFans, philox4x32, randomBitsRef, randomNormalRef, randomUniformRef, truncatedNormalRef,
} from '../../src/ops/random.js';
import { ArgumentError } from '../../src/errors.js';

useGpu();

/** Seeds up to 2^53 − 1, so the high word of the key is exercised too. */
const seed53 = fc.oneof(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.maxSafeInteger().map((s) => Math.abs(s)));
const sizeArb = fc.integer({ min: 1, max: 2051 });

async function take(make: () => Tensor): Promise<Float32Array | Uint32Array> {
  const t = tidy(make);
  const d = (await t.data()) as Float32Array | Uint32Array;
  t.dispose();
  return d;
}

function moments(x: ArrayLike<number>): { mean: number; variance: number; maxAbs: number; min: number; max: number } {
  let s = 0, s2 = 0, maxAbs = 0, min = Infinity, max = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    s += v;
    maxAbs = Math.max(maxAbs, Math.abs(v));
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const mean = s / x.length;
  for (let i = 0; i < x.length; i++) s2 += (x[i]! - mean) ** 2;
  return { mean, variance: s2 / (x.length - 1), maxAbs, min, max };
}

const N = 100_000;
/** Five standard errors: a correct generator fails one such check about once in 1.7 million. */
const Z = 5;

describe('Philox-4x32-10 reference', () => {
  test('matches the Random123 known-answer vectors', () => {
    const hex = (a: Uint32Array) => Array.from(a, (v) => v.toString(16).padStart(8, '0'));
    expect(hex(philox4x32([0, 0, 0, 0], [0, 0]))).toEqual(['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']);
    expect(hex(philox4x32([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff]))).toEqual(['408f276d', '41c83b0e', 'a20bc7c6', '6d5451fd']);
    expect(hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]))).toEqual(['d16cfe09', '94fdcceb', '5001e420', '24126ea1']);
  });
});

describe('GPU generator equals the TypeScript reference', () => {
  test('raw bits, bit for bit', async () => {
    await fc.assert(
      fc.asyncProperty(sizeArb, seed53, async (n, seed) => {
        expect(Array.from(await take(() => ops.randomBits([n], seed)))).toEqual(Array.from(randomBitsRef(n, seed)));
      }),
      gpuRuns,
    );
  });

  test('uniform, bit for bit, for any range', async () => {
    await fc.assert(
      fc.asyncProperty(sizeArb, seed53, fc.double({ min: -100, max: 100, noNaN: true }), fc.double({ min: 1e-3, max: 100, noNaN: true }), async (n, seed, low, width) => {
        const options = { seed, low, high: low + width };
        expect(Array.from(await take(() => ops.randomUniform([n], options)))).toEqual(Array.from(randomUniformRef(n, options)));
      }),
      gpuRuns,
    );
  });

  // The GPU evaluates log, sqrt, cos and sin in f32 with the driver's own approximations; the reference in
  // f64 on the same f32 inputs. Over 5 × 100,000 standard normals on lavapipe the largest difference was
  // 4.7e-7 absolute and 9e-7 relative (for |z| > 1e-3), i.e. a few f32 ulps; |z| is at most 5.8.
  test("normal, within the device's f32 transcendental error", async () => {
    await fc.assert(
      fc.asyncProperty(sizeArb, seed53, async (n, seed) => {
        expectClose(await take(() => ops.randomNormal([n], { seed, mean: 0.5, std: 2 })), randomNormalRef(n, { seed, mean: 0.5, std: 2 }), { rtol: 2e-6, atol: 2e-6 });
      }),
      gpuRuns,
    );
  });

  test('truncated normal, within the same error', async () => {
    for (const seed of [1, 12345, 2 ** 40 + 3]) {
      expectClose(await take(() => ops.truncatedNormal([4099], { seed })), truncatedNormalRef(4099, { seed }), { rtol: 2e-6, atol: 1e-6 });
    }
  });
});

describe('results depend only on (seed, index)', () => {
  test('same seed, same numbers; the shape and the length do not matter', async () => {
    const a = await take(() => ops.randomNormal([6, 7, 11], { seed: 42 }));
    const b = await take(() => ops.randomNormal([462], { seed: 42 }));
    const prefix = await take(() => ops.randomNormal([37], { seed: 42 }));
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(prefix)).toEqual(Array.from(a.subarray(0, 37)));
  });

  test('the workgroup size does not matter', async () => {
    const n = 1001;
    const expected = Array.from(randomBitsRef(n, 77));
    for (const wg of [1, 8, 256]) {
      const out = Tensor.empty([n], 'u32', 'test');
      launch('randomBits', {
        shader: 'random',
        constants: { DIST: 0, WG: wg },
        uniforms: new Uniforms().u32(n).u32(77).u32(0).u32(0).f32(0).f32(0),
        inputs: [],
        outputs: [out],
        workgroups: grid1d(Math.ceil(n / 4), wg),
      });
      expect(Array.from(await out.data()), `WG=${wg}`).toEqual(expected);
      out.dispose();
    }
  });

  test('different seeds give different numbers', async () => {
    const a = await take(() => ops.randomUniform([10_000], { seed: 7 }));
    const b = await take(() => ops.randomUniform([10_000], { seed: 8 }));
    const c = await take(() => ops.randomUniform([10_000], { seed: 7 + 2 ** 32 })); // differs only in the key's high word
    const same = (x: ArrayLike<number>, y: ArrayLike<number>) => Array.from(x).filter((v, i) => v === y[i]).length;
    // With 24 random bits per value, a handful of chance coincidences in 10,000 at most.
    expect(same(a, b)).toBeLessThan(5);
    expect(same(a, c)).toBeLessThan(5);
  });
});

describe(`statistics of ${N} samples`, () => {
  test('uniform: range, mean and variance', async () => {
    const x = await take(() => ops.randomUniform([N], { seed: 3, low: -2, high: 6 }));
    const m = moments(x);
    expect(m.min).toBeGreaterThanOrEqual(-2);
    expect(m.max).toBeLessThan(6);
    // U(a, b): mean (a+b)/2, variance (b−a)²/12; the sample variance of a uniform has std sqrt((μ4 − σ⁴)/n).
    const sigma2 = 64 / 12;
    expect(Math.abs(m.mean - 2)).toBeLessThan((Z * Math.sqrt(sigma2)) / Math.sqrt(N));
    expect(Math.abs(m.variance - sigma2)).toBeLessThan(Z * Math.sqrt(((8 ** 4) / 80 - sigma2 ** 2) / N));
  });

  test('normal: mean, variance, and the fraction within one std', async () => {
    const x = await take(() => ops.randomNormal([N], { seed: 4, mean: -1, std: 3 }));
    const m = moments(x);
    expect(Math.abs(m.mean + 1)).toBeLessThan((Z * 3) / Math.sqrt(N));
    expect(Math.abs(m.variance - 9)).toBeLessThan(Z * 9 * Math.sqrt(2 / N));
    const inside = Array.from(x).filter((v) => Math.abs(v + 1) < 3).length / N;
    const p = 0.6826894921370859;
    expect(Math.abs(inside - p)).toBeLessThan(Z * Math.sqrt((p * (1 - p)) / N));
  });

  test('truncated normal: within two std, with the variance of the truncated distribution', async () => {
    const x = await take(() => ops.truncatedNormal([N], { seed: 5, mean: 1, std: 0.5 }));
    const m = moments(x);
    expect(m.maxAbs).toBeLessThanOrEqual(1 + 2 * 0.5 + 1e-6);
    expect(m.min).toBeGreaterThanOrEqual(1 - 2 * 0.5 - 1e-6);
    const sigma = 0.5 * TRUNCATED_STD;
    expect(Math.abs(m.mean - 1)).toBeLessThan((Z * sigma) / Math.sqrt(N));
    // Kurtosis of N(0,1) truncated to ±2 is about 2.36, so Var(s²) ≈ (2.36 − 1)·σ⁴/n.
    expect(Math.abs(m.variance - sigma ** 2)).toBeLessThan(Z * sigma ** 2 * Math.sqrt(1.4 / N));
  });
});

describe('initialisers (Keras definitions)', () => {
  test('fans: dense [in, out], conv HWIO, vectors and scalars', () => {
    expect(computeFans([784, 128])).toEqual({ fanIn: 784, fanOut: 128 });
    expect(computeFans([3, 3, 64, 128])).toEqual({ fanIn: 3 * 3 * 64, fanOut: 3 * 3 * 128 });
    expect(computeFans([5, 2, 7])).toEqual({ fanIn: 5 * 2, fanOut: 5 * 7 });
    expect(computeFans([10])).toEqual({ fanIn: 10, fanOut: 10 });
    expect(computeFans([])).toEqual({ fanIn: 1, fanOut: 1 });
  });

  const shape = [3, 3, 40, 28]; // N = 10,080 per draw; repeated below with several seeds
  const { fanIn, fanOut } = { fanIn: 3 * 3 * 40, fanOut: 3 * 3 * 28 };

  async function draws(make: (seed: number) => Tensor): Promise<Float32Array> {
    const parts = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((s) => take(() => make(s))));
    return Float32Array.from(parts.flatMap((p) => Array.from(p)));
  }

  test('glorotUniform: limit sqrt(6 / (fanIn + fanOut)), variance limit²/3', async () => {
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    const x = await draws((s) => ops.glorotUniform(shape, s));
    const m = moments(x);
    expect(m.maxAbs).toBeLessThan(limit);
    expect(m.maxAbs).toBeGreaterThan(limit * 0.999);
    const v = limit ** 2 / 3;
    expect(Math.abs(m.variance - v)).toBeLessThan(Z * Math.sqrt(((2 * limit) ** 4 / 80 - v ** 2) / x.length));
  });

  test('heUniform: limit sqrt(6 / fanIn)', async () => {
    const limit = Math.sqrt(6 / fanIn);
    const m = moments(await draws((s) => ops.heUniform(shape, s)));
    expect(m.maxAbs).toBeLessThan(limit);
    expect(m.maxAbs).toBeGreaterThan(limit * 0.999);
  });

  test('heNormal: std sqrt(2 / fanIn) after truncation at two (pre-truncation) std', async () => {
    const std = Math.sqrt(2 / fanIn);
    const x = await draws((s) => ops.heNormal(shape, s));
    const m = moments(x);
    expect(Math.abs(m.mean)).toBeLessThan((Z * std) / Math.sqrt(x.length));
    expect(Math.abs(Math.sqrt(m.variance) - std)).toBeLessThan(Z * std * Math.sqrt(1.4 / x.length) / 2);
    expect(m.maxAbs).toBeLessThanOrEqual((2 * std) / TRUNCATED_STD + 1e-6);
  });

  test('glorotNormal: std sqrt(2 / (fanIn + fanOut))', async () => {
    const std = Math.sqrt(2 / (fanIn + fanOut));
    const x = await draws((s) => ops.glorotNormal(shape, s));
    expect(Math.abs(Math.sqrt(moments(x).variance) - std)).toBeLessThan(Z * std * Math.sqrt(1.4 / x.length) / 2);
  });
});

describe('errors', () => {
  test('bad seeds and options are named', () => {
    expect(() => ops.randomUniform([2], { seed: -1 })).toThrow(ArgumentError);
    expect(() => ops.randomUniform([2], { seed: 1.5 })).toThrow(/randomUniform: seed must be an integer in \[0, 2\^53\), got 1.5/);
    expect(() => ops.randomNormal([2], { seed: 2 ** 53 })).toThrow(/randomNormal: seed must be an integer/);
    expect(() => ops.randomUniform([2], { seed: 1, low: 1, high: 1 })).toThrow(/low \(1\) must be less than high \(1\)/);
    expect(() => ops.randomNormal([2], { seed: 1, std: -1 })).toThrow(/std must be non-negative/);
    expect(() => ops.randomNormal([2], { seed: 1, stddev: 2 } as never)).toThrow(/randomNormal: unknown option 'stddev'; expected 'seed', 'mean', 'std'/);
    expect(() => ops.randomNormal([2, -1], { seed: 1 })).toThrow(/invalid shape/);
  });
});

test('GPU memory stays flat', async () => {
  await runtime().sync();
  const before = liveTensorCount();
  tidy(() => {
    ops.add(ops.randomNormal([5, 3], { seed: 1 }), ops.heNormal([5, 3], 2));
    tensor([1], [1]);
  });
  expect(liveTensorCount()).toBe(before);
});
