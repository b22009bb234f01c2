import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { gpuRuns, randomData, seedArb } from '../util/check.js';
import { checkGradients } from '../util/grad.js';
import { tensor } from '../../src/tensor/create.js';
import { tidy } from '../../src/tensor/scope.js';
import * as ops from '../../src/ops/index.js';
import { type ZeroPadding2dSpec, resolveZeroPadding, zeroPadding2dRef } from '../../src/ops/padding.js';
import { ArgumentError, ShapeError } from '../../src/errors.js';

useGpu();

const imageArb = fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 7 }), fc.constantFrom(1, 2, 3, 5, 16));
const count = fc.integer({ min: 0, max: 3 });
/** Keras's three forms: p, [ph, pw], [[top, bottom], [left, right]]. */
const specArb: fc.Arbitrary<ZeroPadding2dSpec> = fc.oneof(
  count,
  fc.tuple(count, count),
  fc.tuple(fc.tuple(count, count), fc.tuple(count, count)),
);
const sizeOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

describe('zeroPadding2d', () => {
  test("Keras's padding forms resolve to [top, bottom, left, right]", () => {
    expect(resolveZeroPadding(2)).toEqual({ top: 2, bottom: 2, left: 2, right: 2 });
    expect(resolveZeroPadding([1, 3])).toEqual({ top: 1, bottom: 1, left: 3, right: 3 });
    expect(resolveZeroPadding([[0, 1], [2, 3]])).toEqual({ top: 0, bottom: 1, left: 2, right: 3 });
  });

  test('matches the reference for every padding form', async () => {
    await fc.assert(
      fc.asyncProperty(imageArb, specArb, seedArb, async (shape, spec, seed) => {
        const data = randomData(sizeOf(shape), seed);
        const p = resolveZeroPadding(spec);
        const y = tidy(() => ops.zeroPadding2d(tensor(data, shape), spec));
        expect(y.shape).toEqual([shape[0], p.top + shape[1] + p.bottom, p.left + shape[2] + p.right, shape[3]]);
        expect(Array.from(await y.data())).toEqual(Array.from(zeroPadding2dRef(data, shape, p)));
        y.dispose();
      }),
      gpuRuns,
    );
  });

  test('defaults to 1 on every side (Keras) and keeps an i32 dtype', async () => {
    const data = Int32Array.from({ length: 2 * 3 * 2 * 3 }, (_, i) => i - 7);
    const y = tidy(() => ops.zeroPadding2d(tensor(data, [2, 3, 2, 3], 'i32')));
    expect([y.dtype, ...y.shape]).toEqual(['i32', 2, 5, 4, 3]);
    expect(Array.from(await y.data())).toEqual(Array.from(zeroPadding2dRef(data, [2, 3, 2, 3], resolveZeroPadding(1))));
    y.dispose();
  });

  test('gradient is the interior of g (finite differences)', async () => {
    await fc.assert(
      fc.asyncProperty(imageArb.filter((s) => sizeOf(s) <= 300), specArb, seedArb, async (shape, spec, seed) => {
        const p = resolveZeroPadding(spec);
        await checkGradients(([x]) => ops.zeroPadding2d(x!, spec), ([x]) => zeroPadding2dRef(x!, shape, p), [{ data: randomData(sizeOf(shape), seed), shape }]);
      }),
      { numRuns: 10 },
    );
  });

  test('errors name the op, the argument and what was expected', () => {
    tidy(() => {
      const x = tensor(new Float32Array(2 * 3 * 3 * 2), [2, 3, 3, 2]);
      expect(() => ops.zeroPadding2d(x, -1)).toThrow(ArgumentError);
      expect(() => ops.zeroPadding2d(x, -1)).toThrow(/zeroPadding2d: padding must be a non-negative integer.*got -1/);
      expect(() => ops.zeroPadding2d(x, 1.5)).toThrow(/got 1.5/);
      expect(() => ops.zeroPadding2d(x, [1, 2, 3] as unknown as [number, number])).toThrow(/got \[1,2,3\]/);
      expect(() => ops.zeroPadding2d(x, [[1, 2], 3] as unknown as ZeroPadding2dSpec)).toThrow(/got \[\[1,2\],3\]/);
      expect(() => ops.zeroPadding2d(tensor(new Float32Array(18), [3, 3, 2]), 1)).toThrow(ShapeError);
      expect(() => ops.zeroPadding2d(tensor(new Float32Array(18), [3, 3, 2]), 1)).toThrow(/zeroPadding2d: input \(NHWC\) has shape \[3, 3, 2\]; expected rank 4/);
    });
  });
});

describe('flatten on NHWC images (Keras Flatten)', () => {
  test('[N, H, W, C] → [N, H·W·C] in Keras order: (n, h, w, c) lands at n·HWC + (h·W + w)·C + c; no copy', async () => {
    await fc.assert(
      fc.asyncProperty(imageArb, seedArb, async ([n, h, w, c], seed) => {
        const data = randomData(n * h * w * c, seed);
        const { x, y } = tidy(() => {
          const x = tensor(data, [n, h, w, c]);
          return { x, y: ops.flatten(x) };
        });
        expect(y.shape).toEqual([n, h * w * c]);
        expect(y.storage).toBe(x.storage);
        const got = await y.data();
        for (let b = 0; b < n; b++) {
          for (let r = 0; r < h; r++) {
            for (let col = 0; col < w; col++) {
              for (let k = 0; k < c; k++) {
                expect(got[b * h * w * c + (r * w + col) * c + k]).toBe(data[((b * h + r) * w + col) * c + k]);
              }
            }
          }
        }
        x.dispose();
        y.dispose();
      }),
      { numRuns: 10 },
    );
  });

  test('gradient flows through flatten after pooling', async () => {
    const shape = [2, 4, 4, 3];
    const data = randomData(sizeOf(shape), 21);
    await checkGradients(
      ([x]) => ops.square(ops.flatten(ops.avgPool2d(x!))),
      ([x]) => {
        // 2×2/2 average pooling, then square; flatten keeps the NHWC order.
        const out: number[] = [];
        for (let b = 0; b < 2; b++) for (let r = 0; r < 2; r++) for (let col = 0; col < 2; col++) for (let k = 0; k < 3; k++) {
          let s = 0;
          for (const [dr, dc] of [[0, 0], [0, 1], [1, 0], [1, 1]] as const) s += x![((b * 4 + 2 * r + dr) * 4 + 2 * col + dc) * 3 + k]!;
          out.push((s / 4) ** 2);
        }
        return out;
      },
      [{ data, shape }],
    );
  });
});
