/**
 * Deep CORAL (src/train/coral.ts): the loss ‖C_S − C_T‖²_F / (4d²) against an f64 reference on random
 * shapes (odd sizes, d = 1, n = 2), its autograd gradient against f64 finite differences (test/util/grad.ts),
 * the paper's closed-form gradient against the same finite differences, and the composed step losses.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { expectClose, finiteDiff, randomData, seedArb } from '../util/check.js';
import { checkGradients } from '../util/grad.js';
import { tensor } from '../../src/tensor/create.js';
import { tidy } from '../../src/tensor/scope.js';
import { Sequential } from '../../src/nn/model.js';
import { Dense } from '../../src/nn/layers/core.js';
import { buildDannNetwork, disposeDannNetwork } from '../../src/train/dann.js';
import { coralLoss, coralLosses, covariance } from '../../src/train/coral.js';
import { ShapeError } from '../../src/errors.js';

useGpu();

/** Unbiased covariance [d, d] of n rows, in f64. */
function covarianceRef(x: ArrayLike<number>, n: number, d: number): Float64Array {
  const m = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) m[j] += x[i * d + j]! / n;
  const c = new Float64Array(d * d);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) c[a * d + b] += ((x[i * d + a]! - m[a]!) * (x[i * d + b]! - m[b]!)) / (n - 1);
  }
  return c;
}

function coralRef(xs: ArrayLike<number>, ns: number, xt: ArrayLike<number>, nt: number, d: number): number {
  const cs = covarianceRef(xs, ns, d), ct = covarianceRef(xt, nt, d);
  let s = 0;
  for (let k = 0; k < d * d; k++) s += (cs[k]! - ct[k]!) ** 2;
  return s / (4 * d * d);
}

/** The paper's closed form: ∂ℓ/∂X_S = (X_S − mean)(C_S − C_T) / (d²(n_S − 1)). */
function coralSourceGradRef(xs: ArrayLike<number>, ns: number, xt: ArrayLike<number>, nt: number, d: number): Float64Array {
  const cs = covarianceRef(xs, ns, d), ct = covarianceRef(xt, nt, d);
  const m = new Float64Array(d);
  for (let i = 0; i < ns; i++) for (let j = 0; j < d; j++) m[j] += xs[i * d + j]! / ns;
  const g = new Float64Array(ns * d);
  for (let i = 0; i < ns; i++) {
    for (let b = 0; b < d; b++) {
      let v = 0;
      for (let a = 0; a < d; a++) v += (xs[i * d + a]! - m[a]!) * (cs[a * d + b]! - ct[a * d + b]!);
      g[i * d + b] = v / (d * d * (ns - 1));
    }
  }
  return g;
}

const caseArb = fc.record({
  ns: fc.oneof(fc.constantFrom(2, 3, 7, 32), fc.integer({ min: 2, max: 40 })),
  nt: fc.oneof(fc.constantFrom(2, 5, 33), fc.integer({ min: 2, max: 40 })),
  d: fc.oneof(fc.constantFrom(1, 2, 3, 17), fc.integer({ min: 1, max: 24 })),
  seed: seedArb,
});

describe('coralLoss', () => {
  test('covariance matches the f64 reference', async () => {
    const x = randomData(9 * 4, 5, -2, 3);
    const c = tidy(() => covariance(tensor(x, [9, 4])));
    expectClose(await c.floats(), covarianceRef(x, 9, 4), { rtol: 1e-4, atol: 1e-5 });
    c.dispose();
  });

  test('matches ‖C_S − C_T‖²_F / (4d²) computed in f64, on random shapes', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async ({ ns, nt, d, seed }) => {
        // Different scales in the two domains, so the covariances differ clearly.
        const xs = randomData(ns * d, seed, -1, 1), xt = randomData(nt * d, seed + 1, -2.5, 1.5);
        const l = tidy(() => coralLoss(tensor(xs, [ns, d]), tensor(xt, [nt, d])));
        const v = await l.item();
        l.dispose();
        expectClose([v], [coralRef(xs, ns, xt, nt, d)], { rtol: 1e-4, atol: 1e-7 }, `ns=${ns} nt=${nt} d=${d}`);
      }),
      { numRuns: 15 },
    );
  });

  test('is zero for two domains with the same covariance (a shifted copy)', async () => {
    const xs = randomData(12 * 3, 4);
    const xt = xs.map((v, i) => v + [5, -3, 0.5][i % 3]!);
    const l = tidy(() => coralLoss(tensor(xs, [12, 3]), tensor(xt, [12, 3])));
    expect(Math.abs(await l.item())).toBeLessThan(1e-7);
    l.dispose();
  });

  test('autograd gradient w.r.t. both inputs matches f64 finite differences', async () => {
    for (const [ns, nt, d, seed] of [[5, 7, 3, 1], [2, 9, 1, 2], [11, 4, 6, 3]] as const) {
      await checkGradients(
        ([s, t]) => coralLoss(s!, t!),
        ([s, t]) => [coralRef(s!, ns, t!, nt, d)],
        [
          { data: randomData(ns * d, seed, -1, 1), shape: [ns, d] },
          { data: randomData(nt * d, seed + 7, -2, 1.5), shape: [nt, d] },
        ],
        { rtol: 3e-3, atol: 1e-5 },
      );
    }
  });

  test("the paper's closed-form source gradient agrees with finite differences of the reference", () => {
    const ns = 6, nt = 8, d = 4;
    const xs = Float64Array.from(randomData(ns * d, 21, -1, 1)), xt = randomData(nt * d, 22, -2, 2);
    const fd = finiteDiff((x) => coralRef(x, ns, xt, nt, d), xs, 1e-6);
    expectClose(coralSourceGradRef(xs, ns, xt, nt, d), fd, { rtol: 1e-5, atol: 1e-9 });
  });

  test('rejects mismatched feature sizes and single rows', () => {
    expect(() => tidy(() => coralLoss(tensor(randomData(6, 1), [3, 2]), tensor(randomData(9, 2), [3, 3])))).toThrow(ShapeError);
    expect(() => tidy(() => coralLoss(tensor(randomData(2, 1), [1, 2]), tensor(randomData(6, 2), [3, 2])))).toThrow(/at least 2 rows/);
  });
});

describe('coralLosses', () => {
  test('total = label + α·CORAL(source features, target features) + domain (the probe)', async () => {
    const extractor = new Sequential([new Dense({ units: 4, activation: 'relu', seed: 3 })], { inputShape: [5] });
    const net = buildDannNetwork({ extractor, classes: 3, classifierHidden: [4], domainHidden: [4], seed: 1 });
    const xs = randomData(6 * 5, 1), xt = randomData(6 * 5, 2, 0, 3);
    const ys = Int32Array.from([0, 1, 2, 2, 1, 0]);
    const hot = new Float32Array(18);
    ys.forEach((c, i) => (hot[i * 3 + c] = 1));
    const values = tidy(() => {
      const l = coralLosses(net, { xs: tensor(xs, [6, 5]), ys: tensor(ys, [6], 'i32'), ysHot: tensor(hot, [6, 3]), xt: tensor(xt, [6, 5]) }, tensor(new Float32Array(12).fill(1, 6), [12, 1]), 2.5);
      return [l.total, l.label, l.domain, l.coral, l.features];
    });
    const [total, label, domain, coral] = await Promise.all(values.slice(0, 4).map((t) => t.item()));
    const f = await values[4]!.floats();
    expect(coral).toBeGreaterThan(0);
    expect(total).toBeCloseTo(label! + 2.5 * coral! + domain!, 5);
    expectClose([coral!], [coralRef(f.subarray(0, 24), 6, f.subarray(24), 6, 4)], { rtol: 1e-4, atol: 1e-8 }, 'CORAL of the extracted features');
    for (const t of values) t.dispose();
    disposeDannNetwork(net);
  });
});
