import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { expectClose, gpuRuns, randomData, seedArb, shapeArb } from '../util/check.js';
import { checkGradients, gpuGradients } from '../util/grad.js';
import { tensor } from '../../src/tensor/create.js';
import { liveTensorCount } from '../../src/tensor/tensor.js';
import { tidy } from '../../src/tensor/scope.js';
import { runtime } from '../../src/gpu/runtime.js';
import * as ops from '../../src/ops/index.js';
import { type DropoutOptions, dropoutMaskRef, dropoutRef, dropoutScale } from '../../src/ops/dropout.js';
import { randomBitsRef } from '../../src/ops/random.js';
import { ArgumentError } from '../../src/errors.js';

useGpu();

const sizeOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const rateArb = fc.oneof(fc.constantFrom(0.1, 0.5, 0.9, 0.999), fc.double({ min: 0.01, max: 0.99, noNaN: true }));
/** Seeds up to 2^53 − 1, so the key's high word is exercised too. */
const seed53 = fc.oneof(seedArb, fc.maxSafeInteger().map((s) => Math.abs(s)));

async function run(data: Float32Array, shape: number[], options: DropoutOptions): Promise<Float32Array> {
  const y = tidy(() => ops.dropout(tensor(data, shape), options));
  const out = (await y.data()) as Float32Array;
  y.dispose();
  return out;
}

describe('training mode', () => {
  test('matches the reference bit for bit: mask from Philox(seed, i), kept values x·f32(1/(1−rate))', async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb(4, 3000), rateArb, seed53, async (shape, rate, seed) => {
        const data = randomData(sizeOf(shape), seed % 1000, 0.5, 2); // nonzero, so a kept value is never 0
        const got = await run(data, shape, { rate, seed, training: true });
        expect(Array.from(got)).toEqual(Array.from(dropoutRef(data, rate, seed), Math.fround));
      }),
      gpuRuns,
    );
  });

  test('kept values equal x/(1−rate) to f32 precision; dropped values are exactly 0', async () => {
    const data = randomData(4099, 3, -4, 4).map((v) => (v === 0 ? 1 : v));
    for (const rate of [0.2, 0.5, 0.75]) {
      const got = await run(data, [4099], { rate, seed: 17, training: true });
      const mask = dropoutMaskRef(data.length, rate, 17);
      const kept = Array.from(got).filter((_, i) => mask[i]);
      expectClose(kept, Array.from(data).filter((_, i) => mask[i]).map((v) => v / (1 - rate)), { rtol: 1.2e-7, atol: 0 }, `kept values at rate ${rate}`);
      expect(Array.from(got).filter((_, i) => !mask[i]).every((v) => v === 0)).toBe(true);
      expect(kept.every((v) => v !== 0)).toBe(true);
    }
  });

  test('the kept fraction is 1 − rate and the mean is preserved (statistically, 5σ)', async () => {
    const n = 1 << 16;
    const ones = new Float32Array(n).fill(1);
    for (const [rate, seed] of [[0.1, 1], [0.3, 2], [0.5, 3], [0.9, 4]] as const) {
      const got = await run(ones, [n], { rate, seed, training: true });
      const kept = got.reduce((a, v) => a + (v !== 0 ? 1 : 0), 0) / n;
      const mean = got.reduce((a, v) => a + v, 0) / n;
      expect(Math.abs(kept - (1 - rate)), `kept fraction at rate ${rate}`).toBeLessThan(5 * Math.sqrt((rate * (1 - rate)) / n));
      expect(Math.abs(mean - 1), `mean at rate ${rate}`).toBeLessThan(5 * Math.sqrt(rate / (1 - rate) / n));
    }
  });

  test('same seed, same mask; another seed, another mask; independent of randomBits under the same seed', async () => {
    const data = randomData(1001, 5, 1, 2);
    const a = await run(data, [7, 11, 13], { rate: 0.5, seed: 42, training: true });
    const b = await run(data, [7, 11, 13], { rate: 0.5, seed: 42, training: true });
    const c = await run(data, [7, 11, 13], { rate: 0.5, seed: 43, training: true });
    expect(Array.from(a)).toEqual(Array.from(b));
    const differs = a.reduce((k, v, i) => k + ((v === 0) !== (c[i] === 0) ? 1 : 0), 0);
    expect(differs).toBeGreaterThan(1001 / 4); // ~ half of the elements for independent masks
    // Stream 1 is not randomBits' stream 0: the mask is not "bits ≥ threshold" of randomBits(seed).
    const bitsMask = Array.from(randomBitsRef(1001, 42), (w) => (w >= 2 ** 31 ? 1 : 0));
    expect(Array.from(dropoutMaskRef(1001, 0.5, 42))).not.toEqual(bitsMask);
  });
});

describe('inference mode and rate 0', () => {
  test('identity: a view of x, no kernel, gradient passes through', async () => {
    const data = randomData(60, 8);
    for (const options of [{ rate: 0.5, seed: 1, training: false }, { rate: 0, seed: 1, training: true }]) {
      const before = runtime().counters.dispatches;
      const { x, y } = tidy(() => {
        const x = tensor(data, [3, 4, 5]);
        return { x, y: ops.dropout(x, options) };
      });
      expect(runtime().counters.dispatches).toBe(before);
      expect(y.storage).toBe(x.storage);
      expect(y.shape).toEqual([3, 4, 5]);
      x.dispose();
      y.dispose();
      await checkGradients(([t]) => ops.dropout(t!, options), ([t]) => t!, [{ data, shape: [3, 4, 5] }]);
    }
  });
});

describe('gradient', () => {
  test('matches finite differences of the reference (the same mask in both directions)', async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb(3, 300), rateArb, seedArb, async (shape, rate, seed) => {
        const data = randomData(sizeOf(shape), seed);
        await checkGradients(([x]) => ops.dropout(x!, { rate, seed, training: true }), ([x]) => dropoutRef(x!, rate, seed), [{ data, shape }]);
      }),
      { numRuns: 10 },
    );
  });

  test('backward regenerates the mask from the seed: nothing is saved, and dx = g·mask·scale exactly', async () => {
    const x = tidy(() => {
      const x = tensor(randomData(999, 1), [999]);
      x.requiresGrad = true;
      const y = ops.dropout(x, { rate: 0.3, seed: 9, training: true });
      expect(y.node!.saved).toHaveLength(0);
      return x;
    });
    x.dispose();
    const before = liveTensorCount();
    const { grads } = await gpuGradients(([t]) => ops.dropout(t!, { rate: 0.3, seed: 9, training: true }), [{ data: randomData(999, 1), shape: [999] }]);
    const w = randomData(999, 99); // gpuGradients' dL/dy
    const mask = dropoutMaskRef(999, 0.3, 9);
    expect(Array.from(grads[0]!)).toEqual(Array.from(w, (v, i) => (mask[i] ? Math.fround(v * dropoutScale(0.3)) : 0)));
    expect(liveTensorCount()).toBe(before);
  });
});

describe('errors', () => {
  test('rate outside [0, 1), bad seeds, bad flags and unknown options', () => {
    tidy(() => {
      const x = tensor(new Float32Array(8), [8]);
      for (const rate of [1, 1.5, -0.1, NaN, Infinity]) {
        expect(() => ops.dropout(x, { rate, seed: 1, training: true })).toThrow(ArgumentError);
        expect(() => ops.dropout(x, { rate, seed: 1, training: false })).toThrow(new RegExp(`dropout: rate must be a number in \\[0, 1\\); got ${rate}`));
      }
      expect(() => ops.dropout(x, { rate: 0.5, seed: -1, training: true })).toThrow(/dropout: seed must be an integer in \[0, 2\^53\), got -1/);
      expect(() => ops.dropout(x, { rate: 0.5, seed: 1.5, training: true })).toThrow(ArgumentError);
      expect(() => ops.dropout(x, { rate: 0.5, seed: 1, training: 'yes' } as unknown as DropoutOptions)).toThrow(/dropout: training must be true or false; got yes/);
      expect(() => ops.dropout(x, { rate: 0.5, seed: 1, training: true, noiseShape: [1] } as unknown as DropoutOptions)).toThrow(
        /dropout: unknown option 'noiseShape'/,
      );
      expect(() => ops.dropout(tensor([1, 2], [2], 'i32'), { rate: 0.5, seed: 1, training: true })).toThrow(/dropout: .*dtype i32; expected f32/);
    });
  });
});
