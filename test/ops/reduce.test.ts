/**
 * Reductions (shaders/reduce.wgsl): sum, mean and max over any axes against the f64 reference, across the
 * three ways they run (one invocation per output, a workgroup per output, and the two-pass column
 * reduction of a bias gradient).
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { expectClose, gpuRuns, randomData, seedArb, shapeArb } from '../util/check.js';
import { tensor } from '../../src/tensor/create.js';
import { tidy } from '../../src/tensor/scope.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { withKernels } from '../util/kernels.js';
import * as ops from '../../src/ops/index.js';
import { type ReduceKind, reduceRef } from '../../src/ops/reduce.js';

useGpu();

const KINDS: ReduceKind[] = ['sum', 'mean', 'max'];
const run = (kind: ReduceKind, x: Tensor, axes: number[]) => (kind === 'sum' ? ops.sum(x, axes) : kind === 'mean' ? ops.mean(x, axes) : ops.max(x, axes));

describe('reductions match the f64 reference', () => {
  for (const kind of KINDS) {
    test(`${kind} over random axes of random shapes`, async () => {
      await fc.assert(
        fc.asyncProperty(
          shapeArb(4, 3000).chain((shape) => fc.tuple(fc.constant(shape), fc.subarray(shape.map((_, i) => i)))),
          seedArb,
          async ([shape, axes], seed) => {
            const n = shape.reduce((a, b) => a * b, 1);
            const data = randomData(n, seed, -2, 2);
            const y = tidy(() => run(kind, tensor(data, shape), axes));
            const ref = reduceRef(kind, data, shape, axes);
            expectClose(await y.floats(), ref, { rtol: 1e-5, atol: 1e-5 }, `${kind} ${JSON.stringify(shape)} axes ${JSON.stringify(axes)}`);
            y.dispose();
          },
        ),
        gpuRuns,
      );
    });
  }
});

describe('column reductions (a bias gradient: Σ over N·H·W per channel) run in two passes', () => {
  // R rows of C channels: R ≥ 256 and C % 4 == 0 take the column kernel; the others do not.
  const cases: Array<{ shape: number[]; columns: boolean }> = [
    { shape: [256, 4], columns: true },
    { shape: [2, 17, 23, 8], columns: true },      // 782 rows: a partial last block
    { shape: [8, 56, 56, 12], columns: true },     // 25,088 rows, as a ResNet50 layer at 224
    { shape: [255, 8], columns: false },           // a row too few: one workgroup per channel
    { shape: [4, 10, 10, 6], columns: false },     // C not a multiple of 4
  ];
  for (const kind of KINDS) {
    test(`${kind}: the column kernel where it applies, and the reference either way`, async () => {
      for (const [i, c] of cases.entries()) {
        const axes = c.shape.slice(0, -1).map((_, d) => d);
        const data = randomData(c.shape.reduce((a, b) => a * b, 1), 70 + i, -2, 2);
        const r = await withKernels(() => run(kind, tensor(data, c.shape), axes));
        if (c.columns) expect(r.kernels).toEqual(['reduce:columns', 'reduce']);
        else expect(r.kernels).not.toContain('reduce:columns');
        expectClose(r.y, reduceRef(kind, data, c.shape, axes), { rtol: 1e-5, atol: 1e-5 }, `${kind} ${JSON.stringify(c.shape)}`);
      }
    });
  }
});
