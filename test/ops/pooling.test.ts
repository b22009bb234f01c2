import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { expectClose, randomData, rng, seedArb } from '../util/check.js';
import { checkGradients, gpuGradients } from '../util/grad.js';
import { tensor } from '../../src/tensor/create.js';
import { type Tensor, liveTensorCount } from '../../src/tensor/tensor.js';
import { tidy } from '../../src/tensor/scope.js';
import { noGrad } from '../../src/autograd/tape.js';
import * as ops from '../../src/ops/index.js';
import {
  type Pool2dOptions, type PoolGeometry, avgPool2dBackwardRef, avgPool2dRef, maxPool2dBackwardRaw, maxPool2dBackwardRef, maxPool2dRaw, maxPool2dRef,
  poolGeometry, windowsTile,
} from '../../src/ops/pooling.js';
import { runtime } from '../../src/gpu/runtime.js';
import { zeroPadding2dRef } from '../../src/ops/padding.js';
import { ArgumentError, ShapeError } from '../../src/errors.js';

useGpu();

interface Case {
  shape: [number, number, number, number];
  options: Pool2dOptions;
}

/** NHWC shapes with odd and size-1 dims, pool sizes and strides 1–3, both paddings, strides sometimes defaulted. */
const caseArb: fc.Arbitrary<Case> = fc
  .record({
    n: fc.integer({ min: 1, max: 2 }),
    h: fc.integer({ min: 1, max: 9 }),
    w: fc.integer({ min: 1, max: 9 }),
    c: fc.constantFrom(1, 2, 3, 5, 8, 13), // runs of 8 channels per invocation: partial, whole, and both
    ph: fc.integer({ min: 1, max: 3 }),
    pw: fc.integer({ min: 1, max: 3 }),
    sh: fc.integer({ min: 1, max: 3 }),
    sw: fc.integer({ min: 1, max: 3 }),
    padding: fc.constantFrom('valid' as const, 'same' as const),
    defaultStrides: fc.boolean(),
  })
  .filter((c) => c.padding === 'same' || (c.h >= c.ph && c.w >= c.pw))
  .map((c) => ({
    shape: [c.n, c.h, c.w, c.c],
    options: { poolSize: [c.ph, c.pw], padding: c.padding, ...(c.defaultStrides ? {} : { strides: [c.sh, c.sw] }) },
  }));

const sizeOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** n distinct values spread over [−1, 1] in random order (no ties, so max pooling has one arg-max). */
function distinctData(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return Float32Array.from(order, (k) => ((k + 0.5) / n) * 2 - 1);
}

/** Output sizes by Keras's own formula (conv_utils.conv_output_length), independent of poolGeometry's. */
function kerasOutputSize(size: number, pool: number, stride: number, padding: 'valid' | 'same'): number {
  const length = padding === 'valid' ? size - pool + 1 : size;
  return Math.floor((length + stride - 1) / stride);
}

describe('forward matches the reference', () => {
  test('max and average pooling, with the arg-max, on random geometry', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, seedArb, async ({ shape, options }, seed) => {
        const data = randomData(sizeOf(shape), seed);
        const g = poolGeometry('test', shape, options);
        const [ph, pw] = options.poolSize as [number, number];
        const [sh, sw] = (options.strides ?? options.poolSize) as [number, number];
        expect([g.outHeight, g.outWidth]).toEqual([
          kerasOutputSize(shape[1], ph, sh, options.padding!),
          kerasOutputSize(shape[2], pw, sw, options.padding!),
        ]);
        const { max, avg, argmax } = tidy(() => {
          const x = tensor(data, shape);
          const raw = maxPool2dRaw(x, g, true);
          return { max: ops.maxPool2d(x, options), avg: ops.avgPool2d(x, options), argmax: raw.argmax! };
        });
        expect(max.shape).toEqual([shape[0], g.outHeight, g.outWidth, shape[3]]);
        expect(avg.shape).toEqual(max.shape);
        const ref = maxPool2dRef(data, g);
        expect(Array.from(await max.data())).toEqual(Array.from(ref.data));
        expect(Array.from(await argmax.data())).toEqual(Array.from(ref.argmax));
        expectClose(await avg.data(), avgPool2dRef(data, g), { rtol: 1e-6, atol: 1e-6 }, 'avgPool2d');
        for (const t of [max, avg, argmax]) t.dispose();
      }),
      { numRuns: 25 },
    );
  });

  test("'same' follows TensorFlow: smaller half of the padding on top/left, averages over valid positions only", async () => {
    // 4×5 input, 3×3 window, stride 2: out 2×3; rows padded 0 above and 1 below, columns 1 left and 1 right.
    const shape = [1, 4, 5, 1];
    const data = Float32Array.from({ length: 20 }, (_, i) => i + 1);
    const g = poolGeometry('test', shape, { poolSize: 3, strides: 2, padding: 'same' });
    expect(g).toMatchObject({ outHeight: 2, outWidth: 3, padTop: 0, padLeft: 1 });
    const at = (r: number, c: number) => data[r * 5 + c]!;
    const windowMean = (rows: number[], cols: number[]) => rows.flatMap((r) => cols.map((c) => at(r, c))).reduce((a, b) => a + b) / (rows.length * cols.length);
    const y = tidy(() => ops.avgPool2d(tensor(data, shape), { poolSize: 3, strides: 2, padding: 'same' }));
    const got = await y.data();
    y.dispose();
    expectClose(got, [
      windowMean([0, 1, 2], [0, 1]), windowMean([0, 1, 2], [1, 2, 3]), windowMean([0, 1, 2], [3, 4]),
      windowMean([2, 3], [0, 1]), windowMean([2, 3], [1, 2, 3]), windowMean([2, 3], [3, 4]),
    ], { rtol: 1e-6 });
  });

  test('max pooling ignores padding even when every value is negative', async () => {
    const data = randomData(2 * 3 * 3 * 2, 7, -3, -1);
    const y = tidy(() => ops.maxPool2d(tensor(data, [2, 3, 3, 2]), { poolSize: 3, strides: 1, padding: 'same' }));
    const got = await y.data();
    y.dispose();
    expect(Math.max(...got)).toBeLessThan(0);
    expect(Array.from(got)).toEqual(Array.from(maxPool2dRef(data, poolGeometry('test', [2, 3, 3, 2], { poolSize: 3, strides: 1, padding: 'same' })).data));
  });
});

describe('gradients', () => {
  test('max pooling: GPU backward matches finite differences (tie-free data)', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb.filter((c) => sizeOf(c.shape) <= 300), seedArb, async ({ shape, options }, seed) => {
        const g = poolGeometry('test', shape, options);
        await checkGradients(([x]) => ops.maxPool2d(x!, options), ([x]) => maxPool2dRef(x!, g).data, [{ data: distinctData(sizeOf(shape), seed), shape }]);
      }),
      { numRuns: 12 },
    );
  });

  test('average pooling: GPU backward matches finite differences', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb.filter((c) => sizeOf(c.shape) <= 300), seedArb, async ({ shape, options }, seed) => {
        const g = poolGeometry('test', shape, options);
        await checkGradients(([x]) => ops.avgPool2d(x!, options), ([x]) => avgPool2dRef(x!, g), [{ data: randomData(sizeOf(shape), seed), shape }]);
      }),
      { numRuns: 12 },
    );
  });

  test('on ties the gradient goes to the first maximum in row-major window order', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, seedArb, async ({ shape, options }, seed) => {
        // Three levels only, so most windows hold several maxima.
        const data = randomData(sizeOf(shape), seed).map((v) => Math.round(v));
        const g = poolGeometry('test', shape, options);
        const { grads, outShape } = await gpuGradients(([x]) => ops.maxPool2d(x!, options), [{ data, shape }]);
        const weights = randomData(sizeOf(outShape), 99); // gpuGradients' dL/dy
        // Overlapping windows sum several terms into one input, in f32 on the GPU, hence the tiny tolerance.
        expectClose(grads[0]!, maxPool2dBackwardRef(weights, maxPool2dRef(data, g).source, g), { rtol: 1e-6, atol: 1e-7 }, 'dx');
      }),
      { numRuns: 15 },
    );
  });
});

describe('max pooling backward where the windows tile the input (the scatter entry)', () => {
  const cases: Array<{ shape: [number, number, number, number]; options: Pool2dOptions; tiles: boolean }> = [
    { shape: [2, 6, 8, 5], options: { poolSize: 2 }, tiles: true },
    { shape: [1, 9, 6, 13], options: { poolSize: [3, 2] }, tiles: true },
    { shape: [3, 4, 4, 8], options: { poolSize: [1, 2], padding: 'same' }, tiles: true },
    { shape: [1, 1, 1, 3], options: { poolSize: 1 }, tiles: true },
    { shape: [2, 7, 8, 5], options: { poolSize: 2 }, tiles: false },                  // a row left over
    { shape: [2, 7, 7, 5], options: { poolSize: 2, padding: 'same' }, tiles: false }, // padded
    { shape: [2, 8, 8, 5], options: { poolSize: 2, strides: 3 }, tiles: false },      // gaps between windows
  ];
  test('tiling geometries take max_backward_tiled, the others the gather; both match the reference, ties included', async () => {
    for (const [i, c] of cases.entries()) {
      const g = poolGeometry('test', c.shape, c.options);
      expect(windowsTile(g)).toBe(c.tiles);
      const data = randomData(sizeOf(c.shape), 40 + i).map((v) => Math.round(2 * v)); // many ties
      const weights = randomData(g.batch * g.outHeight * g.outWidth * g.channels, 60 + i);
      const p = runtime().profiler;
      p.start();
      const dx = noGrad(() => {
        const { y, argmax } = maxPool2dRaw(tensor(data, c.shape), g, true);
        y.dispose();
        const grad = tensor(weights, [g.batch, g.outHeight, g.outWidth, g.channels]);
        const out = maxPool2dBackwardRaw(grad, argmax!, g);
        argmax!.dispose();
        grad.dispose();
        return out;
      });
      const kernels = (await p.stop()).map((r) => r.kernel.split('[')[0]);
      expect(kernels).toContain(c.tiles ? 'pooling:max_backward_tiled' : 'pooling:max_backward');
      expectClose(await dx.floats(), maxPool2dBackwardRef(weights, maxPool2dRef(data, g).source, g), { rtol: 0, atol: 0 }, `dx, case ${i}`);
      dx.dispose();
    }
  });
});

describe('model shapes', () => {
  /** dL/dx from the GPU for L = Σ f(x)·w, and the w it used. */
  async function gradOf(f: (x: Tensor) => Tensor, data: Float32Array, shape: number[]) {
    const { grads, outShape } = await gpuGradients(([x]) => f(x!), [{ data, shape }]);
    return { dx: grads[0]!, w: randomData(sizeOf(outShape), 99) };
  }

  test('VGG: 2×2/2 max pooling on [2, 16, 16, 64]', async () => {
    const shape = [2, 16, 16, 64];
    const data = randomData(sizeOf(shape), 11);
    const g = poolGeometry('test', shape, { poolSize: 2 });
    const y = tidy(() => ops.maxPool2d(tensor(data, shape), { poolSize: 2, strides: 2 }));
    expect(y.shape).toEqual([2, 8, 8, 64]);
    const ref = maxPool2dRef(data, g);
    expect(Array.from(await y.data())).toEqual(Array.from(ref.data));
    y.dispose();
    const { dx, w } = await gradOf((x) => ops.maxPool2d(x, { poolSize: 2 }), data, shape);
    expectClose(dx, maxPool2dBackwardRef(w, ref.source, g), { rtol: 0, atol: 0 }, 'dx');
  });

  test('ResNet50 stem: ZeroPadding2D(1) then 3×3/2 max pooling on [2, 32, 32, 64], with ReLU-like ties at 0', async () => {
    const shape = [2, 32, 32, 64];
    const data = randomData(sizeOf(shape), 12).map((v) => Math.max(v, 0)); // half zeros: ties with the padding
    const padded = zeroPadding2dRef(data, shape, { top: 1, bottom: 1, left: 1, right: 1 });
    const g = poolGeometry('test', [2, 34, 34, 64], { poolSize: 3, strides: 2 });
    const f = (x: Tensor) => ops.maxPool2d(ops.zeroPadding2d(x, 1), { poolSize: 3, strides: 2 });
    const y = tidy(() => f(tensor(data, shape)));
    expect(y.shape).toEqual([2, 16, 16, 64]);
    const ref = maxPool2dRef(padded, g);
    expect(Array.from(await y.data())).toEqual(Array.from(ref.data));
    y.dispose();
    const { dx, w } = await gradOf(f, data, shape);
    const dPadded = maxPool2dBackwardRef(w, ref.source, g);
    // dx is the interior of the padded gradient; windows overlap, so some inputs collect several terms.
    const expected = new Float64Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const c = i % 64, p = Math.floor(i / 64), col = p % 32, row = Math.floor(p / 32) % 32, b = Math.floor(p / 1024);
      expected[i] = dPadded[((b * 34 + row + 1) * 34 + col + 1) * 64 + c]!;
    }
    expectClose(dx, expected, { rtol: 1e-6, atol: 1e-7 }, 'dx');
  });
});

describe('global pooling', () => {
  const shapeArb = fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 7 }), fc.constantFrom(1, 3, 4, 7));
  const full = (s: number[]): PoolGeometry => poolGeometry('test', s, { poolSize: [s[1]!, s[2]!] });

  test('global average and max pooling give [N, C] and match the reference', async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb, seedArb, async (shape, seed) => {
        const data = randomData(sizeOf(shape), seed);
        const { avg, max } = tidy(() => {
          const x = tensor(data, shape);
          return { avg: ops.globalAveragePool2d(x), max: ops.globalMaxPool2d(x) };
        });
        expect(avg.shape).toEqual([shape[0], shape[3]]);
        expect(max.shape).toEqual([shape[0], shape[3]]);
        expectClose(await avg.data(), avgPool2dRef(data, full(shape)), { rtol: 1e-5, atol: 1e-6 }, 'globalAveragePool2d');
        expect(Array.from(await max.data())).toEqual(Array.from(maxPool2dRef(data, full(shape)).data));
        avg.dispose();
        max.dispose();
      }),
      { numRuns: 15 },
    );
  });

  test('gradients match finite differences; the max goes to the arg-max', async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb, seedArb, async (shape, seed) => {
        const data = distinctData(sizeOf(shape), seed);
        await checkGradients(([x]) => ops.globalAveragePool2d(x!), ([x]) => avgPool2dRef(x!, full(shape)), [{ data, shape }]);
        await checkGradients(([x]) => ops.globalMaxPool2d(x!), ([x]) => maxPool2dRef(x!, full(shape)).data, [{ data, shape }]);
      }),
      { numRuns: 8 },
    );
  });
});

describe('bookkeeping', () => {
  test('the arg-max is saved only when a gradient is needed', () => {
    tidy(() => {
      const x = tensor(randomData(2 * 4 * 4 * 3, 1), [2, 4, 4, 3]);
      expect(ops.maxPool2d(x).node).toBeNull();
      x.requiresGrad = true;
      expect(noGrad(() => ops.maxPool2d(x)).node).toBeNull();
      const y = ops.maxPool2d(x);
      expect(y.node!.saved.map((t) => [t.dtype, ...t.shape])).toEqual([['u32', 2, 2, 2, 3]]);
    });
  });

  test('forward and backward leave no tensors behind', async () => {
    const before = liveTensorCount();
    await gpuGradients(([x]) => ops.globalMaxPool2d(ops.avgPool2d(ops.maxPool2d(x!, { poolSize: 3, strides: 1, padding: 'same' }))), [
      { data: randomData(2 * 6 * 6 * 3, 2), shape: [2, 6, 6, 3] },
    ]);
    expect(liveTensorCount()).toBe(before);
  });
});

describe('errors', () => {
  test('bad inputs and options name the op and what was expected', () => {
    tidy(() => {
      const x = tensor(new Float32Array(2 * 5 * 5 * 3), [2, 5, 5, 3]);
      expect(() => ops.maxPool2d(tensor(new Float32Array(75), [5, 5, 3]))).toThrow(/maxPool2d: input \(NHWC\) has shape \[5, 5, 3\]; expected rank 4/);
      expect(() => ops.avgPool2d(tensor(new Int32Array(75), [1, 5, 5, 3], 'i32'))).toThrow(/avgPool2d: .*dtype i32; expected f32/);
      expect(() => ops.maxPool2d(x, { poolSize: 0 })).toThrow(ArgumentError);
      expect(() => ops.maxPool2d(x, { poolSize: 0 })).toThrow(/maxPool2d: poolSize must be a positive integer .*got 0/);
      expect(() => ops.maxPool2d(x, { strides: [1] as unknown as [number, number] })).toThrow(/maxPool2d: strides must be .*got \[1\]/);
      expect(() => ops.avgPool2d(x, { padding: 'full' as 'same' })).toThrow(/avgPool2d: padding must be 'valid' or 'same'; got "full"/);
      expect(() => ops.maxPool2d(x, { dataFormat: 'channels_first' } as Pool2dOptions)).toThrow(/maxPool2d: unknown option 'dataFormat'/);
      expect(() => ops.maxPool2d(x, { poolSize: 6 })).toThrow(ShapeError);
      expect(() => ops.maxPool2d(x, { poolSize: 6 })).toThrow(/pool size \[6, 6\] must fit .*\[2, 5, 5, 3\]/);
      expect(() => ops.globalMaxPool2d(tensor(new Float32Array(0), [2, 0, 5, 3]))).toThrow(/globalMaxPool2d: .*\[2, 0, 5, 3\].*at least 1/);
    });
  });
});
