/**
 * f16 storage (src/gpu/pipeline-cache.ts, "storage type"): the kernels of a frozen network's forward pass
 * (conv2d v3, matmul v3 via dense, elementwise, pooling, inference batch norm, reductions, padding and
 * data movement) with f16 tensors, against the f64 reference run on the same f16-rounded inputs. The kernels
 * widen to f32, accumulate in f32 and round once on store, so each output is the f16 rounding of the f32
 * result: within one f16 ulp (2^-10 relative) of the rounded reference. Data movement must be exact.
 * Also: f16 and f32 operands do not mix, gradients never flow through f16, and a compile error in a
 * storage-typed module points at the shader file's own line.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { expectClose, gpuRuns, randomData, seedArb } from '../util/check.js';
import { tensor } from '../../src/tensor/create.js';
import { type Tensor, liveTensorCount } from '../../src/tensor/tensor.js';
import { tidy } from '../../src/tensor/scope.js';
import * as ops from '../../src/ops/index.js';
import { roundToF16Ref } from '../../src/ops/cast.js';
import { conv2dGeometry, conv2dRef, type ConvPadding } from '../../src/ops/conv.js';
import { denseRef } from '../../src/ops/matmul.js';
import { binaryRef } from '../../src/ops/elementwise.js';
import { avgPool2dRef, maxPool2dRef, poolGeometry } from '../../src/ops/pooling.js';
import { batchNormRef } from '../../src/ops/batchnorm.js';
import { reduceRef } from '../../src/ops/reduce.js';
import { formatCompileError, moduleSource } from '../../src/gpu/pipeline-cache.js';
import { ArgumentError, GraftError } from '../../src/errors.js';

useGpu();

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
/** One f16 ulp relative, plus a little for values near zero. */
const F16_TOL = { rtol: 2 ** -10, atol: 2 ** -14 };

/** Random values already representable in f16, and the f16 tensor holding them. */
function half(shape: number[], seed: number, lo = -1, hi = 1): { values: Float64Array; t: Tensor } {
  const values = roundToF16Ref(randomData(size(shape), seed, lo, hi));
  return { values, t: ops.cast(tensor(Float32Array.from(values), shape), 'f16') };
}

async function widened(t: Tensor): Promise<Float32Array> {
  expect(t.dtype).toBe('f16');
  const f = ops.cast(t, 'f32');
  const v = await f.floats();
  f.dispose();
  return v;
}

describe('f16 storage against the f64 reference', () => {
  test('conv2d (v3 and the 1×1 matmul path): odd sizes, 1×1, strides 1–2, same/valid, bias and ReLU, any Cin', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          N: fc.constantFrom(1, 2, 3), H: fc.integer({ min: 1, max: 9 }), W: fc.integer({ min: 1, max: 9 }),
          C: fc.constantFrom(1, 3, 4, 8, 9, 16), F: fc.constantFrom(4, 8, 12), K: fc.constantFrom(1, 2, 3, 5),
          s: fc.constantFrom(1, 2), padding: fc.constantFrom<ConvPadding>('same', 'valid'), relu: fc.boolean(),
        }),
        seedArb,
        async (p, seed) => {
          const xShape = [p.N, p.H, p.W, p.C], wShape = [p.K, p.K, p.C, p.F];
          try {
            conv2dGeometry('t', xShape, wShape, { strides: p.s, padding: p.padding });
          } catch {
            return; // the window does not fit ('valid' on a small image)
          }
          const x = half(xShape, seed), w = half(wShape, seed + 1), b = half([p.F], seed + 2);
          const activation = p.relu ? 'relu' : 'none';
          const y = tidy(() => ops.conv2d(x.t, w.t, { strides: p.s, padding: p.padding, bias: b.t, activation }));
          const ref = conv2dRef(x.values, xShape, w.values, wShape, { strides: p.s, padding: p.padding, bias: b.values, activation });
          expect(y.shape).toEqual(ref.shape);
          expectClose(await widened(y), roundToF16Ref(ref.data), F16_TOL, `conv2d f16 ${JSON.stringify(p)}`);
          for (const t of [x.t, w.t, b.t, y]) t.dispose();
        },
      ),
      gpuRuns,
    );
  });

  test('dense: rows 1–40, K odd and even, N % 4 == 0, with bias and ReLU', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 70 }), fc.constantFrom(4, 8, 20, 64), fc.boolean(), seedArb, async (M, K, N, relu, seed) => {
        const x = half([M, K], seed), w = half([K, N], seed + 1), b = half([N], seed + 2);
        const y = ops.dense(x.t, w.t, b.t, relu ? 'relu' : 'none');
        const ref = denseRef(x.values, [M, K], w.values, [K, N], b.values, relu ? 'relu' : 'none');
        expectClose(await widened(y), roundToF16Ref(ref.data), F16_TOL, `dense f16 [${M}, ${K}]·[${K}, ${N}]`);
        for (const t of [x.t, w.t, b.t, y]) t.dispose();
      }),
      gpuRuns,
    );
  });

  test('elementwise: add with and without broadcasting, ReLU, exp', async () => {
    const a = half([3, 5, 7], 1), b = half([3, 5, 7], 2), row = half([7], 3);
    for (const [y, ref] of [
      [ops.add(a.t, b.t), binaryRef('add', a.values, [3, 5, 7], b.values, [3, 5, 7]).data],
      [ops.add(a.t, row.t), binaryRef('add', a.values, [3, 5, 7], row.values, [7]).data],
      [ops.relu(a.t), a.values.map((v) => Math.max(v, 0))],
      [ops.exp(a.t), a.values.map(Math.exp)],
    ] as const) {
      expectClose(await widened(y), roundToF16Ref(ref), F16_TOL, 'elementwise f16');
      y.dispose();
    }
    for (const t of [a.t, b.t, row.t]) t.dispose();
  });

  test('pooling (max and average, same/valid, stride 1–2), global average, sum/max reductions', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({ H: fc.integer({ min: 1, max: 9 }), W: fc.integer({ min: 1, max: 9 }), C: fc.constantFrom(1, 3, 8), k: fc.constantFrom(1, 2, 3), s: fc.constantFrom(1, 2), same: fc.boolean() }),
        seedArb,
        async (p, seed) => {
          if (!p.same && (p.k > p.H || p.k > p.W)) return;
          const shape = [2, p.H, p.W, p.C];
          const x = half(shape, seed, -4, 4);
          const options = { poolSize: p.k, strides: p.s, padding: p.same ? ('same' as const) : ('valid' as const) };
          const g = poolGeometry('t', shape, options);
          const maxY = ops.maxPool2d(x.t, options), avgY = ops.avgPool2d(x.t, options);
          expect(Array.from(await widened(maxY))).toEqual(Array.from(maxPool2dRef(x.values, g).data)); // a maximum is exact
          expectClose(await widened(avgY), roundToF16Ref(avgPool2dRef(x.values, g)), F16_TOL, `avgPool2d f16 ${JSON.stringify(p)}`);
          const gap = ops.globalAveragePool2d(x.t);
          expectClose(await widened(gap), roundToF16Ref(reduceRef('mean', x.values, shape, [1, 2])), F16_TOL, 'globalAveragePool2d f16');
          const total = ops.sum(x.t, [0, 3]), top = ops.max(x.t, [1]);
          expectClose(await widened(total), roundToF16Ref(reduceRef('sum', x.values, shape, [0, 3])), { rtol: 2 ** -10, atol: 2 ** -10 }, 'sum f16');
          expect(Array.from(await widened(top))).toEqual(Array.from(reduceRef('max', x.values, shape, [1])));
          for (const t of [x.t, maxY, avgY, gap, total, top]) t.dispose();
        },
      ),
      gpuRuns,
    );
  });

  test('inference batch norm with f16 statistics, γ, β and the fused ReLU', async () => {
    const shape = [2, 3, 5, 6];
    const x = half(shape, 1, -3, 3), mean = half([6], 2), variance = half([6], 3, 0.5, 2), gamma = half([6], 4), beta = half([6], 5);
    for (const relu of [false, true]) {
      const y = ops.batchNorm(x.t, { mean: mean.t, variance: variance.t, gamma: gamma.t, beta: beta.t, epsilon: 1e-3, relu });
      const ref = batchNormRef(x.values, shape, { mean: mean.values, variance: variance.values, gamma: gamma.values, beta: beta.values, epsilon: 1e-3, training: false, relu });
      expectClose(await widened(y), roundToF16Ref(ref.y), F16_TOL, `batchNorm f16 relu ${relu}`);
      y.dispose();
    }
    expect(() => ops.batchNorm(x.t, { mean: mean.t, variance: variance.t, training: true })).toThrow(/f32 only/);
    for (const t of [x.t, mean.t, variance.t, gamma.t, beta.t]) t.dispose();
  });

  test('padding, slice, concat and transpose move f16 elements exactly, odd offsets included', async () => {
    const x = half([2, 3, 5, 3], 7);
    const exact = async (t: Tensor, ref: ArrayLike<number>) => {
      expect(Array.from(await widened(t))).toEqual(Array.from(ref));
      t.dispose();
    };
    const get = (n: number, h: number, w: number, c: number) => x.values[((n * 3 + h) * 5 + w) * 3 + c]!;
    const padded = ops.zeroPadding2d(x.t, [[1, 0], [2, 1]]);
    await exact(padded, Array.from({ length: 2 * 4 * 8 * 3 }, (_, i) => {
      const c = i % 3, w = Math.floor(i / 3) % 8, h = Math.floor(i / 24) % 4, n = Math.floor(i / 96);
      return h >= 1 && w >= 2 && w < 7 ? get(n, h - 1, w - 2, c) : 0;
    }));
    await exact(ops.slice(x.t, [1, 0, 1, 1], [1, 3, 3, 1]), Array.from({ length: 9 }, (_, i) => get(1, Math.floor(i / 3), 1 + (i % 3), 1)));
    const flat = ops.reshape(x.t, [90]);
    await exact(ops.slice(flat, [1], [7]), x.values.slice(1, 8)); // starts and ends inside a 32-bit word
    await exact(ops.concat([ops.slice(flat, [0], [3]), ops.slice(flat, [3], [87])], 0), x.values);
    await exact(ops.transpose(x.t, [0, 3, 1, 2]), Array.from({ length: 90 }, (_, i) => {
      const w = i % 5, h = Math.floor(i / 5) % 3, c = Math.floor(i / 15) % 3, n = Math.floor(i / 45);
      return get(n, h, w, c);
    }));
    flat.dispose();
    x.t.dispose();
  });
});

describe('f16 rules', () => {
  test('f16 and f32 operands do not mix; the error names both tensors', () => {
    const a = half([4, 4], 1).t, b = tensor(new Float32Array(16), [4, 4]);
    expect(() => ops.add(a, b)).toThrow(ArgumentError);
    expect(() => ops.dense(a, b)).toThrow(/all be f32 or all f16/);
    a.dispose();
    b.dispose();
  });

  test('no gradient flows through f16 tensors: recording an f16 op throws, cast back to f32 first', () => {
    const live = liveTensorCount();
    const w = tensor(randomData(16, 3), [4, 4]).keep();
    w.requiresGrad = true;
    expect(() => tidy(() => ops.relu(ops.cast(w, 'f16')))).toThrow(GraftError);
    expect(() => tidy(() => ops.relu(ops.cast(w, 'f16')))).toThrow(/no gradient through f16/);
    w.dispose();
    expect(liveTensorCount()).toBe(live);
  });

  test('a storage-typed module declares Elem after the file, and compile errors keep the file\'s line numbers', () => {
    const f32 = moduleSource('binary', 'f32');
    const f16 = moduleSource('binary', 'f16');
    expect(f32.linesBefore).toBe(0);
    expect(f32.code.trimEnd().endsWith('alias Elem = f32;')).toBe(true);
    expect(f16.code.startsWith('enable f16;\n')).toBe(true);
    expect(f16.linesBefore).toBe(1);
    expect(() => moduleSource('softmax', 'f16')).toThrow(/no f16 storage variant/);
    const file = f16.code.split('\n').slice(1);
    const message = formatCompileError('binary<f16>', file.join('\n'), [{ type: 'error', lineNum: 12, linePos: 3, message: 'boom' } as GPUCompilationMessage], 1);
    expect(message).toContain('error at line 11:3: boom');
    expect(message).toContain(`> 11 | ${file[10]}`);
  });
});
