import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { dimArb, expectClose, gpuRuns, randomData, seedArb, shapeArb } from '../util/check.js';
import { checkGradients } from '../util/grad.js';
import { tensor } from '../../src/tensor/create.js';
import { tidy } from '../../src/tensor/scope.js';
import { runtime } from '../../src/gpu/runtime.js';
import * as ops from '../../src/ops/index.js';
import { softmaxRef } from '../../src/ops/softmax.js';
import { ShapeError } from '../../src/errors.js';

useGpu();

const kinds = [
  { name: 'softmax', run: ops.softmax, log: false },
  { name: 'logSoftmax', run: ops.logSoftmax, log: true },
] as const;

/** A shape of rank ≥ 1 and an axis in [−rank, rank). */
const shapeAxisArb = (maxRank: number, maxSize: number) =>
  shapeArb(maxRank, maxSize)
    .filter((s) => s.length > 0)
    .chain((s) => fc.tuple(fc.constant(s), fc.integer({ min: -s.length, max: s.length - 1 })));

/** Shapes that hit both kernels: long rows (one workgroup per row), short rows, single elements. */
const fixedCases: Array<{ shape: number[]; axis: number }> = [
  { shape: [3, 1500], axis: -1 },   // one workgroup per row, last axis
  { shape: [1, 4099], axis: 1 },
  { shape: [2, 1100, 3], axis: 1 }, // one workgroup per row, strided axis
  { shape: [9, 1000], axis: -1 },   // one invocation per row, long rows
  { shape: [3, 300, 5], axis: 1 },  // one invocation per row, strided axis
  { shape: [513, 9], axis: -1 },    // one invocation per row, many rows
  { shape: [4, 1], axis: -1 },      // rows of one element
  { shape: [1, 1], axis: 0 },
  { shape: [5, 3, 2], axis: 0 },    // first axis
];

async function compare(run: (x: ReturnType<typeof tensor>, axis: number) => ReturnType<typeof tensor>, log: boolean, shape: number[], axis: number, data: Float32Array, tol = { rtol: 2e-5, atol: 1e-6 }) {
  const y = tidy(() => run(tensor(data, shape), axis));
  expect(y.shape).toEqual(shape);
  const got = await y.data();
  y.dispose();
  expectClose(got, softmaxRef(data, shape, axis, log), tol, `${log ? 'logSoftmax' : 'softmax'} ${JSON.stringify(shape)} axis ${axis}`);
}

describe('forward matches the f64 reference', () => {
  for (const k of kinds) {
    test(`${k.name}: random shapes and axes`, async () => {
      await fc.assert(
        fc.asyncProperty(shapeAxisArb(4, 3000), seedArb, async ([shape, axis], seed) => {
          await compare(k.run, k.log, shape, axis, randomData(shape.reduce((a, b) => a * b, 1), seed, -4, 4));
        }),
        gpuRuns,
      );
    });

    test(`${k.name}: long rows, strided axes and rows of one element`, async () => {
      for (const [i, c] of fixedCases.entries()) {
        await compare(k.run, k.log, c.shape, c.axis, randomData(c.shape.reduce((a, b) => a * b, 1), 7 + i, -4, 4));
      }
    });

    test(`${k.name}: stable for logits of magnitude 80 and 1e4`, async () => {
      // exp(80) is within f32 range but exp(160) is not; a kernel that skipped the max would give inf/NaN.
      for (const [i, c] of fixedCases.entries()) {
        const n = c.shape.reduce((a, b) => a * b, 1);
        await compare(k.run, k.log, c.shape, c.axis, randomData(n, 100 + i, -80, 80), { rtol: 1e-4, atol: 1e-6 });
        const huge = randomData(n, 200 + i, -1, 1).map((v) => v * 1e4);
        await compare(k.run, k.log, c.shape, c.axis, huge, { rtol: 1e-4, atol: 1e-6 });
      }
    });
  }

  test('softmax rows sum to 1 along the chosen axis', async () => {
    await fc.assert(
      fc.asyncProperty(shapeAxisArb(3, 2000), seedArb, async ([shape, axis], seed) => {
        const y = tidy(() => ops.sum(ops.softmax(tensor(randomData(shape.reduce((a, b) => a * b, 1), seed, -20, 20), shape), axis), axis));
        const sums = await y.data();
        y.dispose();
        expectClose(sums, new Float64Array(sums.length).fill(1), { rtol: 0, atol: 1e-5 }, 'row sums');
      }),
      { numRuns: 10 },
    );
  });
});

describe('gradients', () => {
  for (const k of kinds) {
    test(`${k.name}: GPU backward matches finite differences on random shapes and axes`, async () => {
      await fc.assert(
        fc.asyncProperty(shapeAxisArb(3, 200), seedArb, async ([shape, axis], seed) => {
          const data = randomData(shape.reduce((a, b) => a * b, 1), seed, -3, 3);
          await checkGradients(([x]) => k.run(x!, axis), ([x]) => softmaxRef(x!, shape, axis, k.log), [{ data, shape }]);
        }),
        { numRuns: 10 },
      );
    });

    test(`${k.name}: GPU backward matches on long rows (both kernels) and large logits`, async () => {
      for (const [i, c] of [{ shape: [1, 1100], axis: -1 }, { shape: [2, 1030, 2], axis: 1 }, { shape: [9, 300], axis: -1 }].entries()) {
        const data = randomData(c.shape.reduce((a, b) => a * b, 1), 300 + i, -4, 4);
        await checkGradients(([x]) => k.run(x!, c.axis), ([x]) => softmaxRef(x!, c.shape, c.axis, k.log), [{ data, shape: c.shape }]);
      }
      // Magnitude 80: each row is nearly one-hot, the regime where an unstable kernel breaks.
      const shape = [5, 7];
      const data = randomData(35, 400, -80, 80);
      await checkGradients(([x]) => k.run(x!, -1), ([x]) => softmaxRef(x!, shape, -1, k.log), [{ data, shape }]);
    });
  }

  test('a chain through softmax then log gives the logSoftmax gradient', async () => {
    await fc.assert(
      fc.asyncProperty(dimArb, dimArb, seedArb, async (b, c, seed) => {
        const shape = [b, Math.min(c, 20)];
        const data = randomData(shape[0]! * shape[1]!, seed, -3, 3);
        await checkGradients(([x]) => ops.log(ops.softmax(x!)), ([x]) => softmaxRef(x!, shape, -1, true), [{ data, shape }]);
      }),
      { numRuns: 5 },
    );
  });
});

describe('kernels are fused', () => {
  for (const k of kinds) {
    for (const shape of [[6, 10], [3, 1100]]) {
      test(`${k.name} ${JSON.stringify(shape)}: one dispatch forward, one backward`, async () => {
        const x = tensor(randomData(shape[0]! * shape[1]!, 5), shape).keep();
        x.requiresGrad = true;
        const counters = runtime().counters;
        tidy(() => {
          const before = counters.dispatches;
          const y = k.run(x);
          expect(counters.dispatches - before).toBe(1);
          const g = tensor(randomData(x.size, 6), shape);
          const mid = counters.dispatches;
          ops.backward(y, g);
          expect(counters.dispatches - mid).toBe(1);
        });
        x.dispose();
        await runtime().sync();
      });
    }
  }
});

describe('errors', () => {
  test('non-f32 input names the op and the dtype', () => {
    tidy(() => {
      const labels = tensor([1, 2, 3], [3], 'i32');
      expect(() => ops.softmax(labels)).toThrow(ShapeError);
      expect(() => ops.logSoftmax(labels)).toThrow(/logSoftmax: .*dtype i32; expected f32/);
    });
  });

  test('an axis out of range names the axis and the rank', () => {
    tidy(() => {
      const x = tensor(new Float32Array(6), [2, 3]);
      expect(() => ops.softmax(x, 2)).toThrow(/softmax: axis 2 is out of range for rank 2/);
      expect(() => ops.logSoftmax(x, -3)).toThrow(/logSoftmax: axis -3 is out of range for rank 2/);
      expect(() => ops.softmax(x, 0.5)).toThrow(/softmax: axis must be an integer; got 0.5/);
    });
  });

  test('a scalar has no axis to normalise over', () => {
    tidy(() => {
      expect(() => ops.softmax(tensor([1], []))).toThrow(/softmax: input is a scalar/);
    });
  });
});
