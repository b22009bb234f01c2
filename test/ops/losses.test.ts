import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { dimArb, expectClose, gpuRuns, randomData, rng, seedArb, shapeArb } from '../util/check.js';
import { checkGradients } from '../util/grad.js';
import { tensor } from '../../src/tensor/create.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { tidy } from '../../src/tensor/scope.js';
import { runtime } from '../../src/gpu/runtime.js';
import * as ops from '../../src/ops/index.js';
import { type Reduction, binaryCrossEntropyWithLogitsRef, softmaxCrossEntropyRef } from '../../src/ops/losses.js';
import { ArgumentError, ShapeError } from '../../src/errors.js';

useGpu();

const reductions: Reduction[] = ['mean', 'sum', 'none'];

/** Batch and class counts: odd sizes, 1, and 1000 classes (the one-workgroup-per-row size of ImageNet). */
const batchClassArb = fc.tuple(dimArb, fc.oneof(dimArb, fc.constant(1000))).filter(([b, c]) => b * c <= 20000);
const smoothingArb = fc.constantFrom(0, 0, 0.1, 0.37, 1);
/** Logit ranges: ordinary, and ±80 where exp(x) without the max subtracted would overflow in the sums. */
const rangeArb = fc.constantFrom(4, 80);

function classIndices(rows: number, classes: number, seed: number): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: rows }, () => Math.floor(r() * classes));
}

/** Rows of targets: probabilities (sum 1), one-hot, or non-negative weights that do not sum to 1. */
function targets(rows: number, classes: number, seed: number, kind: 'probabilities' | 'onehot' | 'unnormalised'): Float32Array {
  const t = randomData(rows * classes, seed, 0, 1);
  const labels = classIndices(rows, classes, seed + 1);
  for (let b = 0; b < rows; b++) {
    const row = t.subarray(b * classes, (b + 1) * classes);
    if (kind === 'onehot') row.forEach((_, c) => (row[c] = c === labels[b] ? 1 : 0));
    if (kind === 'probabilities') {
      const s = row.reduce((a, v) => a + v, 0);
      row.forEach((v, c) => (row[c] = v / s));
    }
  }
  return t;
}

const targetKindArb = fc.constantFrom('probabilities', 'onehot', 'unnormalised') as fc.Arbitrary<'probabilities' | 'onehot' | 'unnormalised'>;

async function run(f: () => Tensor): Promise<{ data: Float32Array; shape: number[] }> {
  const out = tidy(f);
  const data = Float32Array.from(await out.data());
  const shape = [...out.shape];
  out.dispose();
  return { data, shape };
}

describe('softmaxCrossEntropy matches the f64 reference', () => {
  for (const reduction of reductions) {
    test(`class indices, reduction '${reduction}'`, async () => {
      await fc.assert(
        fc.asyncProperty(batchClassArb, smoothingArb, rangeArb, seedArb, async ([b, c], labelSmoothing, range, seed) => {
          const x = randomData(b * c, seed, -range, range);
          const labels = classIndices(b, c, seed + 1);
          const got = await run(() => ops.softmaxCrossEntropy(tensor(x, [b, c]), tensor(labels, [b], 'i32'), { reduction, labelSmoothing }));
          expect(got.shape).toEqual(reduction === 'none' ? [b] : []);
          const ref = softmaxCrossEntropyRef(x, labels, [b, c], { sparse: true, reduction, labelSmoothing });
          expectClose(got.data, ref, { rtol: 2e-5, atol: 2e-5 }, `loss [${b}, ${c}] ε ${labelSmoothing}`);
        }),
        gpuRuns,
      );
    });

    test(`probability and one-hot targets, reduction '${reduction}'`, async () => {
      await fc.assert(
        fc.asyncProperty(batchClassArb, smoothingArb, rangeArb, targetKindArb, seedArb, async ([b, c], labelSmoothing, range, kind, seed) => {
          const x = randomData(b * c, seed, -range, range);
          const t = targets(b, c, seed + 1, kind);
          const got = await run(() => ops.softmaxCrossEntropy(tensor(x, [b, c]), tensor(t, [b, c]), { reduction, labelSmoothing }));
          expect(got.shape).toEqual(reduction === 'none' ? [b] : []);
          const ref = softmaxCrossEntropyRef(x, t, [b, c], { sparse: false, reduction, labelSmoothing });
          expectClose(got.data, ref, { rtol: 2e-5, atol: 2e-5 }, `loss [${b}, ${c}] ${kind} ε ${labelSmoothing}`);
        }),
        gpuRuns,
      );
    });
  }

  test('class indices with smoothing ε equal f32 targets (1 − ε)·onehot + ε/C', async () => {
    await fc.assert(
      fc.asyncProperty(batchClassArb, fc.constantFrom(0.05, 0.2, 0.5), seedArb, async ([b, c], eps, seed) => {
        const x = randomData(b * c, seed, -5, 5);
        const labels = classIndices(b, c, seed + 1);
        const smoothed = Float32Array.from({ length: b * c }, (_, i) => (1 - eps) * (i % c === labels[Math.floor(i / c)] ? 1 : 0) + eps / c);
        const sparse = await run(() => ops.softmaxCrossEntropy(tensor(x, [b, c]), tensor(labels, [b], 'i32'), { reduction: 'none', labelSmoothing: eps }));
        const dense = await run(() => ops.softmaxCrossEntropy(tensor(x, [b, c]), tensor(smoothed, [b, c]), { reduction: 'none' }));
        expectClose(sparse.data, dense.data, { rtol: 1e-5, atol: 1e-5 }, 'smoothed sparse vs dense');
      }),
      { numRuns: 10 },
    );
  });

  test('an out-of-range class index makes its row NaN and leaves the other rows alone', async () => {
    const [b, c] = [5, 4];
    const x = randomData(b * c, 11, -3, 3);
    const labels = Int32Array.from([0, 4, 3, -1, 2]);
    const none = await run(() => ops.softmaxCrossEntropy(tensor(x, [b, c]), tensor(labels, [b], 'i32'), { reduction: 'none' }));
    expect(Array.from(none.data, Number.isNaN)).toEqual([false, true, false, true, false]);
    expectClose(none.data, softmaxCrossEntropyRef(x, labels, [b, c], { sparse: true, reduction: 'none' }), { rtol: 1e-5, atol: 1e-6 });
    const mean = await run(() => ops.softmaxCrossEntropy(tensor(x, [b, c]), tensor(labels, [b], 'i32')));
    expect(mean.data[0]).toBeNaN();

    // The gradient is NaN exactly in the bad rows.
    const logits = tensor(x, [b, c]).keep();
    logits.requiresGrad = true;
    tidy(() => ops.backward(ops.sum(ops.softmaxCrossEntropy(logits, tensor(labels, [b], 'i32'), { reduction: 'none' }))));
    const grad = await logits.grad!.data();
    logits.dispose();
    for (let i = 0; i < b * c; i++) expect(Number.isNaN(grad[i]), `grad element ${i}`).toBe(i >= 4 && i < 8 || i >= 12 && i < 16);
  });
});

describe('binaryCrossEntropyWithLogits matches the f64 reference', () => {
  for (const reduction of reductions) {
    test(`reduction '${reduction}'`, async () => {
      await fc.assert(
        fc.asyncProperty(shapeArb(4, 3000), rangeArb, seedArb, async (shape, range, seed) => {
          const n = shape.reduce((a, b) => a * b, 1);
          const x = randomData(n, seed, -range, range);
          // Targets in [0, 1], with some exact 0s and 1s.
          const t = randomData(n, seed + 1, -0.25, 1.25).map((v) => Math.min(Math.max(v, 0), 1));
          const got = await run(() => ops.binaryCrossEntropyWithLogits(tensor(x, shape), tensor(t, shape), { reduction }));
          expect(got.shape).toEqual(reduction === 'none' ? shape : []);
          expectClose(got.data, binaryCrossEntropyWithLogitsRef(x, t, reduction), { rtol: 2e-5, atol: 2e-5 }, `bce ${JSON.stringify(shape)}`);
        }),
        gpuRuns,
      );
    });
  }

  test('tiny losses keep their relative precision (log(1 + u) for u below f32 epsilon)', async () => {
    // x ≤ −20 with t = 0 (and x ≥ 20 with t = 1) gives loss ≈ exp(−|x|); log(1 + u) computed naively is 0.
    const x = Float32Array.from({ length: 64 }, (_, i) => (i % 2 ? 1 : -1) * (20 + i / 2));
    const t = Float32Array.from(x, (v) => (v > 0 ? 1 : 0));
    const got = await run(() => ops.binaryCrossEntropyWithLogits(tensor(x, [64]), tensor(t, [64]), { reduction: 'none' }));
    expectClose(got.data, binaryCrossEntropyWithLogitsRef(x, t, 'none'), { rtol: 1e-5, atol: 0 }, 'tiny losses');
  });
});

describe('gradients: GPU backward matches finite differences of the reference', () => {
  const smallArb = fc.tuple(dimArb, dimArb).filter(([b, c]) => b * c <= 300);
  for (const reduction of reductions) {
    test(`softmaxCrossEntropy, class indices, '${reduction}'`, async () => {
      await fc.assert(
        fc.asyncProperty(smallArb, smoothingArb, seedArb, async ([b, c], labelSmoothing, seed) => {
          const x = randomData(b * c, seed, -4, 4);
          const labels = classIndices(b, c, seed + 1);
          await checkGradients(
            ([l]) => ops.softmaxCrossEntropy(l!, tensor(labels, [b], 'i32'), { reduction, labelSmoothing }),
            ([l]) => softmaxCrossEntropyRef(l!, labels, [b, c], { sparse: true, reduction, labelSmoothing }),
            [{ data: x, shape: [b, c] }],
          );
        }),
        { numRuns: 8 },
      );
    });

    test(`softmaxCrossEntropy, f32 targets, '${reduction}'`, async () => {
      await fc.assert(
        fc.asyncProperty(smallArb, smoothingArb, targetKindArb, seedArb, async ([b, c], labelSmoothing, kind, seed) => {
          const x = randomData(b * c, seed, -4, 4);
          const t = targets(b, c, seed + 1, kind);
          await checkGradients(
            ([l]) => ops.softmaxCrossEntropy(l!, tensor(t, [b, c]), { reduction, labelSmoothing }),
            ([l]) => softmaxCrossEntropyRef(l!, t, [b, c], { sparse: false, reduction, labelSmoothing }),
            [{ data: x, shape: [b, c] }],
          );
        }),
        { numRuns: 8 },
      );
    });

    test(`binaryCrossEntropyWithLogits, '${reduction}'`, async () => {
      await fc.assert(
        fc.asyncProperty(shapeArb(3, 200), seedArb, async (shape, seed) => {
          const n = shape.reduce((a, b) => a * b, 1);
          const x = randomData(n, seed, -5, 5);
          const t = randomData(n, seed + 1, 0, 1);
          await checkGradients(
            ([l]) => ops.binaryCrossEntropyWithLogits(l!, tensor(t, shape), { reduction }),
            ([l]) => binaryCrossEntropyWithLogitsRef(l!, t, reduction),
            [{ data: x, shape }],
          );
        }),
        { numRuns: 8 },
      );
    });
  }

  test('1000 classes and logits of magnitude 80, both label forms', async () => {
    const [b, c] = [2, 1000];
    const x = randomData(b * c, 21, -80, 80);
    const labels = classIndices(b, c, 22);
    const t = targets(b, c, 23, 'probabilities');
    await checkGradients(
      ([l]) => ops.softmaxCrossEntropy(l!, tensor(labels, [b], 'i32'), { labelSmoothing: 0.1 }),
      ([l]) => softmaxCrossEntropyRef(l!, labels, [b, c], { sparse: true, labelSmoothing: 0.1 }),
      [{ data: x, shape: [b, c] }],
    );
    await checkGradients(
      ([l]) => ops.softmaxCrossEntropy(l!, tensor(t, [b, c]), { reduction: 'sum' }),
      ([l]) => softmaxCrossEntropyRef(l!, t, [b, c], { sparse: false, reduction: 'sum' }),
      [{ data: x, shape: [b, c] }],
    );
    const bx = randomData(64, 24, -80, 80);
    const bt = randomData(64, 25, 0, 1);
    await checkGradients(
      ([l]) => ops.binaryCrossEntropyWithLogits(l!, tensor(bt, [8, 8])),
      ([l]) => binaryCrossEntropyWithLogitsRef(l!, bt),
      [{ data: bx, shape: [8, 8] }],
    );
  });
});

describe('kernels are fused: one dispatch forward, one backward', () => {
  const cases: Array<{ name: string; shape: number[]; loss: (x: Tensor, r: Reduction) => Tensor }> = [
    { name: 'softmaxCrossEntropy, class indices', shape: [6, 10], loss: (x, reduction) => ops.softmaxCrossEntropy(x, tensor([1, 2, 3, 4, 5, 6], [6], 'i32'), { reduction }) },
    { name: 'softmaxCrossEntropy, targets', shape: [6, 10], loss: (x, reduction) => ops.softmaxCrossEntropy(x, tensor(targets(6, 10, 3, 'probabilities'), [6, 10]), { reduction }) },
    { name: 'binaryCrossEntropyWithLogits', shape: [6, 10], loss: (x, reduction) => ops.binaryCrossEntropyWithLogits(x, tensor(randomData(60, 4, 0, 1), [6, 10]), { reduction }) },
  ];
  for (const c of cases) {
    for (const reduction of reductions) {
      test(`${c.name}, '${reduction}'`, async () => {
        const x = tensor(randomData(60, 5), c.shape).keep();
        x.requiresGrad = true;
        const counters = runtime().counters;
        tidy(() => {
          const before = counters.dispatches;
          const l = c.loss(x, reduction);
          // Creating the label tensor uploads data; it dispatches nothing.
          expect(counters.dispatches - before).toBe(1);
          const seed = tensor(randomData(l.size, 6), l.shape);
          const mid = counters.dispatches;
          ops.backward(l, seed);
          expect(counters.dispatches - mid).toBe(1);
        });
        x.dispose();
        await runtime().sync();
      });
    }
  }
});

describe('errors', () => {
  const logits = () => tensor(new Float32Array(15), [3, 5]);

  test('softmaxCrossEntropy: logits of the wrong rank or dtype', () => {
    tidy(() => {
      const labels = tensor([0, 1, 2], [3], 'i32');
      expect(() => ops.softmaxCrossEntropy(tensor(new Float32Array(5), [5]), labels)).toThrow(ShapeError);
      expect(() => ops.softmaxCrossEntropy(tensor(new Float32Array(5), [5]), labels)).toThrow(/softmaxCrossEntropy: logits have shape \[5\]; expected rank 2/);
      expect(() => ops.softmaxCrossEntropy(tensor(new Int32Array(15), [3, 5], 'i32'), labels)).toThrow(/softmaxCrossEntropy: .*dtype i32; expected f32/);
      expect(() => ops.softmaxCrossEntropy(tensor([], [3, 0]), labels)).toThrow(/expected at least one class/);
    });
  });

  test('softmaxCrossEntropy: labels whose shape does not fit the logits', () => {
    tidy(() => {
      const expected = /softmaxCrossEntropy: labels have shape \[4\] but logits have shape \[3, 5\]; expected \[3\] \(i32 class indices\) or \[3, 5\] \(f32 targets\)/;
      expect(() => ops.softmaxCrossEntropy(logits(), tensor([0, 1, 2, 3], [4], 'i32'))).toThrow(expected);
      expect(() => ops.softmaxCrossEntropy(logits(), tensor(new Float32Array(12), [3, 4]))).toThrow(/labels have shape \[3, 4\] but logits have shape \[3, 5\]/);
      expect(() => ops.softmaxCrossEntropy(logits(), tensor(new Float32Array(20), [4, 5]))).toThrow(/labels have shape \[4, 5\]/);
      expect(() => ops.softmaxCrossEntropy(logits(), tensor(new Float32Array(15), [3, 5, 1]))).toThrow(/labels have shape \[3, 5, 1\]/);
      expect(() => ops.softmaxCrossEntropy(logits(), tensor([0], [], 'i32'))).toThrow(ShapeError);
    });
  });

  test('softmaxCrossEntropy: float class indices and integer targets are rejected', () => {
    tidy(() => {
      expect(() => ops.softmaxCrossEntropy(logits(), tensor([0, 1, 2], [3]))).toThrow(/labels of shape \[3\] are class indices and must be i32; got f32/);
      expect(() => ops.softmaxCrossEntropy(logits(), tensor(new Int32Array(15), [3, 5], 'i32'))).toThrow(/labels of shape \[3, 5\] are target distributions and must be f32; got i32/);
    });
  });

  test('softmaxCrossEntropy: bad options', () => {
    tidy(() => {
      const labels = tensor([0, 1, 2], [3], 'i32');
      expect(() => ops.softmaxCrossEntropy(logits(), labels, { reduction: 'avg' as Reduction })).toThrow(ArgumentError);
      expect(() => ops.softmaxCrossEntropy(logits(), labels, { reduction: 'avg' as Reduction })).toThrow(/reduction must be 'mean', 'sum' or 'none'; got "avg"/);
      expect(() => ops.softmaxCrossEntropy(logits(), labels, { labelSmoothing: 1.5 })).toThrow(/labelSmoothing must be a number in \[0, 1\]; got 1.5/);
      expect(() => ops.softmaxCrossEntropy(logits(), labels, { labelSmoothing: -0.1 })).toThrow(ArgumentError);
      expect(() => ops.softmaxCrossEntropy(logits(), labels, { weights: [1] } as never)).toThrow(/unknown option 'weights'/);
    });
  });

  test('labels and targets that require grad are refused', () => {
    tidy(() => {
      const t = tensor(targets(3, 5, 1, 'probabilities'), [3, 5]);
      t.requiresGrad = true;
      expect(() => ops.softmaxCrossEntropy(logits(), t)).toThrow(/softmaxCrossEntropy: labels require grad, but only the logits are differentiated/);
      expect(() => ops.binaryCrossEntropyWithLogits(logits(), t)).toThrow(/binaryCrossEntropyWithLogits: targets require grad/);
    });
  });

  test('binaryCrossEntropyWithLogits: shapes, dtypes and options', () => {
    tidy(() => {
      expect(() => ops.binaryCrossEntropyWithLogits(logits(), tensor(new Float32Array(5), [5]))).toThrow(ShapeError);
      expect(() => ops.binaryCrossEntropyWithLogits(logits(), tensor(new Float32Array(5), [5]))).toThrow(
        /binaryCrossEntropyWithLogits: targets have shape \[5\] but logits have shape \[3, 5\]; they must match/,
      );
      expect(() => ops.binaryCrossEntropyWithLogits(logits(), tensor(new Int32Array(15), [3, 5], 'i32'))).toThrow(/targets have dtype i32; expected f32/);
      expect(() => ops.binaryCrossEntropyWithLogits(tensor(new Int32Array(15), [3, 5], 'i32'), logits())).toThrow(/binaryCrossEntropyWithLogits: .*dtype i32; expected f32/);
      expect(() => ops.binaryCrossEntropyWithLogits(logits(), logits(), { reduction: 'max' as Reduction })).toThrow(ArgumentError);
      expect(() => ops.binaryCrossEntropyWithLogits(logits(), logits(), { posWeight: 2 } as never)).toThrow(/unknown option 'posWeight'/);
    });
  });
});
