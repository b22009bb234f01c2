/**
 * Numerical checks used across the kernel tests.
 *
 * - `expectClose`: elementwise |a − b| ≤ atol + rtol·|b|, reporting the worst element and its index.
 * - `finiteDiff`: central differences in f64 of a scalar function, the ground truth for gradients.
 * - `randomData`: deterministic pseudo-random values (so a fast-check counterexample reproduces).
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { mulberry32 } from '../../src/ops/random.js';

export interface Tolerance {
  rtol?: number;
  atol?: number;
}

export function maxError(actual: ArrayLike<number>, expected: ArrayLike<number>): { abs: number; index: number } {
  let worst = 0;
  let index = -1;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (d > worst || (Number.isNaN(d) && index < 0)) {
      worst = Number.isNaN(d) ? Infinity : d;
      index = i;
    }
  }
  return { abs: worst, index };
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tolerance = {}, what = 'values'): void {
  const rtol = tol.rtol ?? 1e-5;
  const atol = tol.atol ?? 1e-6;
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const ok = Math.abs(a - e) <= atol + rtol * Math.abs(e) || (Number.isNaN(a) && Number.isNaN(e)) || a === e;
    if (!ok) {
      const { abs, index } = maxError(actual, expected);
      throw new Error(
        `${what}: element ${i} is ${a}, expected ${e} (rtol ${rtol}, atol ${atol}); worst |error| ${abs} at index ${index} of ${expected.length}`,
      );
    }
  }
}

/** d f / d x by central differences in f64. `f` must not modify x. */
export function finiteDiff(f: (x: Float64Array) => number, x: Float64Array, eps = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  const xp = Float64Array.from(x);
  for (let i = 0; i < x.length; i++) {
    const v = xp[i]!;
    xp[i] = v + eps;
    const fp = f(xp);
    xp[i] = v - eps;
    const fm = f(xp);
    xp[i] = v;
    g[i] = (fp - fm) / (2 * eps);
  }
  return g;
}

/** Mulberry32 (src/ops/random.ts): small, fast, deterministic. */
export const rng = mulberry32;

/** `n` values uniform in [lo, hi), from `seed`. */
export function randomData(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
}

/** Dimension sizes that exercise edge cases: 1, odd, around 4/8/16/64 boundaries. */
export const dimArb = fc.oneof(fc.constantFrom(1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65), fc.integer({ min: 1, max: 40 }));

/** A shape of rank 0..maxRank with dims from `dimArb`, at most `maxSize` elements. */
export function shapeArb(maxRank = 4, maxSize = 4096): fc.Arbitrary<number[]> {
  return fc.array(dimArb, { minLength: 0, maxLength: maxRank }).filter((s) => s.reduce((a, b) => a * b, 1) <= maxSize);
}

/** Two shapes that broadcast together: b is a with some dims set to 1 and some leading dims dropped. */
export function broadcastPairArb(maxRank = 4, maxSize = 4096): fc.Arbitrary<[number[], number[]]> {
  return shapeArb(maxRank, maxSize).chain((a) =>
    fc.tuple(fc.array(fc.boolean(), { minLength: a.length, maxLength: a.length }), fc.integer({ min: 0, max: a.length }), fc.boolean()).map(
      ([ones, drop, swap]) => {
        const b = a.map((d, i) => (ones[i] ? 1 : d)).slice(drop);
        return (swap ? [b, a] : [a, b]) as [number[], number[]];
      },
    ),
  );
}

export const seedArb = fc.integer({ min: 1, max: 2 ** 31 - 1 });

/** Settings for GPU property tests: few runs (each one dispatches kernels), reproducible seed. */
export const gpuRuns = { numRuns: 25 } as const;
