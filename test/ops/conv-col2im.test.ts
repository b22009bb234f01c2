/**
 * Conv2d version 'col2im' (src/ops/conv-col2im.ts): dX as one GEMM into columns and a gather of them. The
 * gather kernel against its f64 reference, the whole dX against the analytic reference, and when the cost
 * model picks it.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { expectClose, randomData, seedArb } from '../util/check.js';
import { gpuGradients } from '../util/grad.js';
import { tensor } from '../../src/tensor/create.js';
import { noGrad } from '../../src/autograd/tape.js';
import { runtime } from '../../src/gpu/runtime.js';
import { subgroupKernelSupported } from '../../src/ops/matmul.js';
import { type ConvPadding, conv2d, conv2dBackwardRef, conv2dGeometry, convKernelFor, forceConvVersion } from '../../src/ops/conv.js';
import { col2imCost, col2imFits, col2imRaw, col2imRef, gatherMultiplyAdds } from '../../src/ops/conv-col2im.js';
import { ArgumentError } from '../../src/errors.js';

useGpu();
afterEach(() => forceConvVersion(null));

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

const padArb = fc.oneof(
  fc.constant<ConvPadding>('valid'),
  fc.constant<ConvPadding>('same'),
  fc.tuple(fc.nat(3), fc.nat(3), fc.nat(3), fc.nat(3)).map(([t, b, l, r]): ConvPadding => [[t, b], [l, r]]),
);

/** Convolutions with C and F multiples of 4 (col2im's requirement), odd and 1-pixel images, kernels 1–6, strides 1–3. */
const geometryArb = fc
  .record({
    N: fc.constantFrom(1, 2, 3), H: fc.integer({ min: 1, max: 9 }), W: fc.integer({ min: 1, max: 9 }),
    C: fc.constantFrom(4, 8, 12), F: fc.constantFrom(4, 8, 16),
    KH: fc.integer({ min: 1, max: 6 }), KW: fc.integer({ min: 1, max: 6 }),
    sh: fc.integer({ min: 1, max: 3 }), sw: fc.integer({ min: 1, max: 3 }), padding: padArb,
  })
  .map((p) => {
    try {
      return conv2dGeometry('t', [p.N, p.H, p.W, p.C], [p.KH, p.KW, p.C, p.F], { strides: [p.sh, p.sw], padding: p.padding });
    } catch {
      return null; // a kernel larger than the padded image
    }
  })
  .filter((g): g is NonNullable<typeof g> => g !== null && g.OH > 0 && g.OW > 0);

describe('the col2im kernel', () => {
  test('matches the f64 reference on random geometries (strides 1–3, every padding, 1×1 and odd sizes)', async () => {
    await fc.assert(
      fc.asyncProperty(geometryArb, seedArb, async (g, seed) => {
        const shape = [g.N * g.OH * g.OW, g.KH * g.KW * g.C];
        const cols = randomData(size(shape), seed);
        const dx = noGrad(() => {
          const c = tensor(cols, shape);
          const out = col2imRaw(c, g);
          c.dispose();
          return out;
        });
        expect(dx.shape).toEqual([g.N, g.H, g.W, g.C]);
        expectClose(await dx.floats(), col2imRef(cols, g), { rtol: 1e-6, atol: 1e-6 }, `col2im ${JSON.stringify(g)}`);
        dx.dispose();
      }),
      { numRuns: 25 },
    );
  });

  test('refuses a channel count it cannot read as vec4, naming it', () => {
    const g = conv2dGeometry('t', [1, 4, 4, 3], [3, 3, 3, 4]);
    expect(() => col2imRaw(tensor(new Float32Array(4 * 27), [4, 27]), g)).toThrow(ArgumentError);
    expect(() => col2imRaw(tensor(new Float32Array(4 * 27), [4, 27]), g)).toThrow(/C = 3/);
  });
});

describe('dX by col2im', () => {
  test('matches the analytic reference, and runs the GEMM and col2im kernels', async (ctx) => {
    if (!subgroupKernelSupported()) ctx.skip();
    await fc.assert(
      fc.asyncProperty(geometryArb, seedArb, async (g, seed) => {
        const xShape = [g.N, g.H, g.W, g.C];
        const wShape = [g.KH, g.KW, g.C, g.F];
        const opts = { strides: [g.sh, g.sw] as [number, number], padding: [[g.pt, g.pb], [g.pl, g.pr]] as ConvPadding };
        const x = randomData(size(xShape), seed);
        const w = randomData(size(wShape), seed + 1);
        forceConvVersion('col2im');
        expect(convKernelFor(g, 'inputGrad')).toBe('col2im');
        const profiler = runtime().profiler;
        profiler.start();
        const gpu = await gpuGradients(([xt, wt]) => conv2d(xt!, wt!, opts), [{ data: x, shape: xShape }, { data: w, shape: wShape }]);
        const kernels = (await profiler.stop()).map((r) => r.kernel.split('[')[0]);
        expect(kernels).toContain('conv2d_col2im');
        const gy = randomData(size(gpu.outShape), 99); // gpuGradients' dL/dy
        const ref = conv2dBackwardRef(x, xShape, w, wShape, gy, opts);
        expectClose(gpu.grads[0]!, ref.dx, { rtol: 1e-4, atol: 2e-6 * g.KH * g.KW * g.F + 1e-6 }, `dX ${JSON.stringify(g)}`);
      }),
      { numRuns: 15 },
    );
  });
});

describe('when col2im runs', () => {
  // The DANN paper's LeNet, second convolution: 12×12×32 → 8×8×48 through 5×5, 'valid'.
  const lenet = conv2dGeometry('t', [64, 12, 12, 32], [5, 5, 32, 48]);

  test("the gather's multiply-adds count the zeros of dY's padding: 2.25× the convolution's for the LeNet's 5×5", () => {
    const exact = lenet.N * lenet.OH * lenet.OW * lenet.F * 25 * lenet.C;
    expect(gatherMultiplyAdds(lenet)).toBe(exact * (12 * 5 / (8 * 5)) ** 2);
    // 1×1 stride 2 (a ResNet projection): only the even pixels receive, through one tap: no waste.
    const projection = conv2dGeometry('t', [8, 56, 56, 256], [1, 1, 256, 512], { strides: 2 });
    expect(gatherMultiplyAdds(projection)).toBe(8 * 28 * 28 * 256 * 512);
  });

  test('automatically where the cost model expects it to win: the LeNet yes, a ResNet50 3×3/2 no', (ctx) => {
    if (!subgroupKernelSupported()) ctx.skip();
    const cost = col2imCost(lenet);
    expect(cost.col2im).toBeLessThan(cost.gather);
    expect(convKernelFor(lenet, 'inputGrad')).toBe('col2im');
    expect(convKernelFor(lenet, 'forward')).toBe('v3');
    expect(convKernelFor(lenet, 'filterGrad')).toBe('v3');
    const strided = conv2dGeometry('t', [8, 56, 56, 128], [3, 3, 128, 128], { strides: 2, padding: 'same' });
    expect(col2imCost(strided).col2im).toBeGreaterThan(col2imCost(strided).gather);
    expect(convKernelFor(strided, 'inputGrad')).toBe('v3');
  });

  test('forced, it falls back to v3 where its columns would not fit 64 MiB, and to v2 for channels not in fours', (ctx) => {
    if (!subgroupKernelSupported()) ctx.skip();
    forceConvVersion('col2im');
    const big = conv2dGeometry('t', [8, 56, 56, 64], [5, 5, 64, 64], { padding: 'same' }); // 8·56·56·25·64·4 B = 257 MiB
    expect(col2imFits(big)).toBe(false);
    expect(convKernelFor(big, 'inputGrad')).toBe('v3');
    expect(convKernelFor(conv2dGeometry('t', [2, 8, 8, 6], [3, 3, 6, 8]), 'inputGrad')).toBe('v2');
  });
});
