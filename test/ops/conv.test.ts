import fc from 'fast-check';
import { afterEach, describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { expectClose, finiteDiff, randomData, seedArb } from '../util/check.js';
import { checkGradients, gpuGradients } from '../util/grad.js';
import { tensor } from '../../src/tensor/create.js';
import { tidy } from '../../src/tensor/scope.js';
import { liveTensorCount } from '../../src/tensor/tensor.js';
import * as ops from '../../src/ops/index.js';
import { backward, sum } from '../../src/ops/index.js';
import { roundToF16Ref } from '../../src/ops/cast.js';
import { subgroupKernelSupported } from '../../src/ops/matmul.js';
import {
  type ConvActivation, type ConvPadding, type ConvVersion, CONV_VERSIONS, conv2d, conv2dBackwardRef, conv2dGeometry,
  conv2dRef, convKernelFor, forceConvVersion, samePadding,
} from '../../src/ops/conv.js';
import { ArgumentError, ShapeError } from '../../src/errors.js';

useGpu();

afterEach(() => forceConvVersion(null));

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
/** f32 sums of K products of values in [-1, 1]: the error grows with K. */
const tolFor = (K: number) => ({ rtol: 1e-4, atol: 2e-6 * Math.max(K, 1) + 1e-6 });

interface Problem {
  xShape: number[];
  wShape: number[];
  strides: [number, number];
  padding: ConvPadding;
  hasBias: boolean;
  activation: ConvActivation;
}

const padArb = fc.oneof(
  fc.constant<ConvPadding>('valid'),
  fc.constant<ConvPadding>('same'),
  fc.tuple(fc.nat(3), fc.nat(3), fc.nat(3), fc.nat(3)).map(([t, b, l, r]): ConvPadding => [[t, b], [l, r]]),
);

/**
 * Random convolutions with the edge cases: N, H, W of 1 and odd, Cin and Cout of 1, odd and multiples of
 * 4 and 8, kernels 1..7, strides 1..3 (differing in h and w), every padding kind. With `mult4`, Cin and
 * Cout are multiples of 4 so that v3 runs all three passes itself.
 */
function problemArb(mult4 = false, maxElems = 1500) {
  const ch = mult4 ? fc.constantFrom(4, 8, 12, 16) : fc.oneof(fc.constantFrom(1, 3, 4, 8, 9, 16), fc.integer({ min: 1, max: 12 }));
  return fc.record({
    N: fc.constantFrom(1, 1, 2, 3), H: fc.integer({ min: 1, max: 10 }), W: fc.integer({ min: 1, max: 10 }), C: ch, F: ch,
    KH: fc.integer({ min: 1, max: 7 }), KW: fc.integer({ min: 1, max: 7 }),
    sh: fc.integer({ min: 1, max: 3 }), sw: fc.integer({ min: 1, max: 3 }),
    padding: padArb, hasBias: fc.boolean(), activation: fc.constantFrom<ConvActivation>('none', 'relu'),
  })
    .map((p): Problem => ({
      xShape: [p.N, p.H, p.W, p.C], wShape: [p.KH, p.KW, p.C, p.F], strides: [p.sh, p.sw],
      padding: p.padding, hasBias: p.hasBias, activation: p.activation,
    }))
    .filter((p) => fits(p) && size(p.xShape) <= maxElems && size(p.wShape) <= maxElems);
}

function fits(p: Problem): boolean {
  try {
    const g = conv2dGeometry('t', p.xShape, p.wShape, { strides: p.strides, padding: p.padding });
    return g.N * g.OH * g.OW * g.F <= 2000;
  } catch {
    return false;
  }
}

const describeProblem = (p: Problem) =>
  `x ${JSON.stringify(p.xShape)} w ${JSON.stringify(p.wShape)} strides ${JSON.stringify(p.strides)} padding ${JSON.stringify(p.padding)} bias ${p.hasBias} ${p.activation}`;

async function checkForward(version: ConvVersion | null, p: Problem, seed: number): Promise<void> {
  const x = randomData(size(p.xShape), seed);
  const w = randomData(size(p.wShape), seed + 1);
  const bias = p.hasBias ? randomData(p.wShape[3]!, seed + 2) : null;
  const opts = { strides: p.strides, padding: p.padding, activation: p.activation };
  forceConvVersion(version);
  const y = tidy(() => conv2d(tensor(x, p.xShape), tensor(w, p.wShape), { ...opts, bias: bias ? tensor(bias, [bias.length]) : null }));
  const ref = conv2dRef(x, p.xShape, w, p.wShape, { ...opts, bias });
  expect(y.shape).toEqual(ref.shape);
  expectClose(await y.data(), ref.data, tolFor(p.wShape[0]! * p.wShape[1]! * p.wShape[2]!), `conv2d ${version ?? 'auto'} ${describeProblem(p)}`);
  y.dispose();
}

/**
 * Backward through the autograd engine against the analytic f64 reference: L = Σ y·r for fixed random r
 * (the weights `gpuGradients` uses), so dL/dy = r. No activation, so r is also dL/dz.
 */
async function checkBackward(version: ConvVersion | null, p: Problem, seed: number): Promise<void> {
  const x = randomData(size(p.xShape), seed);
  const w = randomData(size(p.wShape), seed + 1);
  const b = randomData(p.wShape[3]!, seed + 2);
  const opts = { strides: p.strides, padding: p.padding };
  forceConvVersion(version);
  const inputs = [{ data: x, shape: p.xShape }, { data: w, shape: p.wShape }, { data: b, shape: [b.length] }];
  const gpu = await gpuGradients(([xt, wt, bt]) => conv2d(xt!, wt!, { ...opts, bias: bt! }), inputs);
  const gy = randomData(size(gpu.outShape), 99); // the same weights as gpuGradients
  const ref = conv2dBackwardRef(x, p.xShape, w, p.wShape, gy, opts);
  const F = p.wShape[3]!;
  const dBias = new Float64Array(F);
  gy.forEach((v, i) => (dBias[i % F] += v));
  const g = conv2dGeometry('t', p.xShape, p.wShape, opts);
  const what = `${version ?? 'auto'} ${describeProblem(p)}`;
  expectClose(gpu.grads[0]!, ref.dx, tolFor(g.KH * g.KW * g.F), `dX ${what}`);
  expectClose(gpu.grads[1]!, ref.dw, tolFor(g.N * g.OH * g.OW), `dW ${what}`);
  expectClose(gpu.grads[2]!, dBias, tolFor(g.N * g.OH * g.OW), `dBias ${what}`);
}

describe('geometry', () => {
  test("'same' padding matches TF/Keras: out = ceil(in / stride), the odd pixel after", () => {
    // [in, k, stride] → [pad before, pad after], as TensorFlow pads them.
    const cases: Array<[number, number, number, [number, number]]> = [
      [224, 7, 2, [2, 3]], [56, 3, 2, [0, 1]], [5, 3, 1, [1, 1]], [6, 3, 2, [0, 1]], [7, 3, 2, [1, 1]],
      [7, 1, 2, [0, 0]], [1, 3, 1, [1, 1]], [2, 4, 1, [1, 2]], [4, 1, 1, [0, 0]], [3, 5, 3, [1, 1]], [8, 5, 3, [1, 2]],
    ];
    for (const [n, k, s, pads] of cases) expect(samePadding(n, k, s), `in ${n} k ${k} s ${s}`).toEqual(pads);
    const g = conv2dGeometry('t', [1, 224, 224, 3], [7, 7, 3, 64], { strides: 2, padding: 'same' });
    expect([g.OH, g.OW, g.pt, g.pb, g.pl, g.pr]).toEqual([112, 112, 2, 3, 2, 3]);
    const h = conv2dGeometry('t', [1, 7, 8, 1], [3, 3, 1, 1], { strides: [3, 2], padding: 'same' });
    expect([h.OH, h.OW]).toEqual([3, 4]);
  });

  test("'valid' and explicit padding: out = floor((in + pads − k) / stride) + 1", () => {
    const stem = conv2dGeometry('t', [8, 224, 224, 3], [7, 7, 3, 64], { strides: 2, padding: [[3, 3], [3, 3]] });
    expect([stem.OH, stem.OW]).toEqual([112, 112]);
    const padded = conv2dGeometry('t', [8, 230, 230, 3], [7, 7, 3, 64], { strides: 2 });
    expect([padded.OH, padded.OW]).toEqual([112, 112]);
    const odd = conv2dGeometry('t', [1, 9, 6, 1], [2, 3, 1, 1], { strides: [2, 3], padding: [[1, 0], [0, 2]] });
    expect([odd.OH, odd.OW]).toEqual([5, 2]);
  });
});

describe('forward: every kernel version matches the f64 reference', () => {
  for (const v of CONV_VERSIONS) {
    test(`${v}: random shapes, strides, paddings, bias and relu`, async () => {
      await fc.assert(fc.asyncProperty(problemArb(), seedArb, (p, seed) => checkForward(v, p, seed)), { numRuns: 20 });
    });
  }

  test('v3 on the shapes it runs itself (channels multiples of 4)', async () => {
    await fc.assert(fc.asyncProperty(problemArb(true), seedArb, (p, seed) => checkForward('v3', p, seed)), { numRuns: 15 });
  });

  test('matmul: 1×1 convolutions with stride 1 and no padding, any channel counts', async () => {
    const arb = problemArb().map((p) => ({ ...p, wShape: [1, 1, p.xShape[3]!, p.wShape[3]!], strides: [1, 1] as [number, number], padding: 'valid' as ConvPadding }));
    await fc.assert(fc.asyncProperty(arb, seedArb, (p, seed) => checkForward('matmul', p, seed)), { numRuns: 15 });
  });
});

describe('a residual added before the activation (a ResNet block end in one kernel)', () => {
  for (const v of CONV_VERSIONS) {
    test(`${v}: act(conv(x, w) + bias + residual) matches the reference, and the residual's gradient is right`, async () => {
      await fc.assert(
        fc.asyncProperty(problemArb(v === 'v3'), seedArb, async (p0, seed) => {
          const p = v === 'matmul' ? { ...p0, wShape: [1, 1, p0.xShape[3]!, p0.wShape[3]!], strides: [1, 1] as [number, number], padding: 'valid' as ConvPadding } : p0;
          const g = conv2dGeometry('t', p.xShape, p.wShape, { strides: p.strides, padding: p.padding });
          const outShape = [g.N, g.OH, g.OW, g.F];
          const x = randomData(size(p.xShape), seed), w = randomData(size(p.wShape), seed + 1);
          const b = randomData(g.F, seed + 2), r = randomData(size(outShape), seed + 3);
          const opts = { strides: p.strides, padding: p.padding, activation: p.activation };
          forceConvVersion(v);
          const ref = conv2dRef(x, p.xShape, w, p.wShape, { ...opts, bias: b, residual: r });
          const [xt, wt, bt, rt] = [tensor(x, p.xShape), tensor(w, p.wShape), tensor(b, [g.F]), tensor(r, outShape)];
          for (const t of [xt, wt, bt, rt]) t.requiresGrad = true;
          const y = tidy(() => conv2d(xt, wt, { ...opts, bias: bt, residual: rt }));
          expectClose(await y.data(), ref.data, tolFor(p.wShape[0]! * p.wShape[1]! * p.wShape[2]!), `conv2d ${v} + residual ${describeProblem(p)}`);
          // L = Σ y·u: dL/d(residual) = u where the activation passes (y > 0 for relu), else 0.
          const u = randomData(y.size, 99);
          tidy(() => backward(sum(ops.mul(y, tensor(u, outShape)))));
          const expected = u.map((ui, i) => (p.activation === 'relu' && !(ref.data[i]! > 0) ? 0 : ui));
          expectClose(await rt.grad!.floats(), expected, { atol: 1e-6 }, `residual gradient ${v}`);
          for (const t of [xt, wt, bt, rt, y]) t.dispose();
        }),
        { numRuns: 8 },
      );
    });
  }

  test('f16 storage with a residual (the path of a frozen f16 ResNet block)', async () => {
    const xShape = [2, 5, 6, 8], wShape = [3, 3, 8, 12], outShape = [2, 5, 6, 12];
    const half = (n: number, seed: number) => Float32Array.from(roundToF16Ref(randomData(n, seed)));
    const x = half(size(xShape), 1), w = half(size(wShape), 2), r = half(size(outShape), 3);
    const y = tidy(() => ops.cast(conv2d(ops.cast(tensor(x, xShape), 'f16'), ops.cast(tensor(w, wShape), 'f16'), { padding: 'same', residual: ops.cast(tensor(r, outShape), 'f16'), activation: 'relu' }), 'f32'));
    const ref = conv2dRef(x, xShape, w, wShape, { padding: 'same', residual: r, activation: 'relu' });
    expectClose(await y.data(), roundToF16Ref(ref.data), { rtol: 2 ** -10, atol: 2 ** -14 }, 'conv2d f16 + residual');
    y.dispose();
  });

  test('a residual of the wrong shape is refused, naming both shapes', () => {
    tidy(() => {
      const x = tensor(new Float32Array(2 * 4 * 4 * 3), [2, 4, 4, 3]);
      const w = tensor(new Float32Array(3 * 3 * 3 * 4), [3, 3, 3, 4]);
      expect(() => conv2d(x, w, { padding: 'same', residual: tensor(new Float32Array(2 * 4 * 4 * 3), [2, 4, 4, 3]) })).toThrow(/residual must have the output's shape \[2, 4, 4, 4\]/);
    });
  });
});

describe('backward: dX, dW and dBias of every version match the analytic reference', () => {
  test('the analytic reference matches finite differences of conv2dRef', () => {
    fc.assert(
      fc.property(problemArb(false, 300), seedArb, (p, seed) => {
        const x = Float64Array.from(randomData(size(p.xShape), seed));
        const w = Float64Array.from(randomData(size(p.wShape), seed + 1));
        const opts = { strides: p.strides, padding: p.padding };
        const outSize = conv2dRef(x, p.xShape, w, p.wShape, opts).data.length;
        const gy = randomData(outSize, seed + 2);
        const loss = (xs: Float64Array, ws: Float64Array) => conv2dRef(xs, p.xShape, ws, p.wShape, opts).data.reduce((s, v, i) => s + v * gy[i]!, 0);
        const ref = conv2dBackwardRef(x, p.xShape, w, p.wShape, gy, opts);
        expectClose(ref.dx, finiteDiff((xs) => loss(xs, w), x), { rtol: 1e-6, atol: 1e-7 }, `dX ${describeProblem(p)}`);
        expectClose(ref.dw, finiteDiff((ws) => loss(x, ws), w), { rtol: 1e-6, atol: 1e-7 }, `dW ${describeProblem(p)}`);
      }),
      { numRuns: 25 },
    );
  });

  for (const v of CONV_VERSIONS) {
    test(`${v}: random shapes, strides and paddings`, async () => {
      await fc.assert(fc.asyncProperty(problemArb(), seedArb, (p, seed) => checkBackward(v, p, seed)), { numRuns: 15 });
    });
  }

  test('v3 on the shapes it runs itself (channels multiples of 4)', async () => {
    await fc.assert(fc.asyncProperty(problemArb(true), seedArb, (p, seed) => checkBackward('v3', p, seed)), { numRuns: 12 });
  });

  test('dW split over many output pixels (partial sums added afterwards), v2 and v3', async () => {
    // 4·20·20 = 1600 output pixels: the filter is small, so dW splits the pixels into ranges.
    for (const v of ['v2', 'v3'] as const) {
      await checkBackward(v, { xShape: [4, 20, 20, 8], wShape: [3, 3, 8, 8], strides: [1, 1], padding: 'same', hasBias: true, activation: 'none' }, 7);
      await checkBackward(v, { xShape: [3, 23, 21, 3], wShape: [3, 3, 3, 5], strides: [1, 2], padding: 'valid', hasBias: true, activation: 'none' }, 8);
    }
  });
});

describe('gradient checks against finite differences (through bias and fused relu)', () => {
  const gradArb = fc.record({
    N: fc.constantFrom(1, 2), H: fc.integer({ min: 2, max: 6 }), W: fc.integer({ min: 2, max: 6 }),
    C: fc.constantFrom(1, 3, 4), F: fc.constantFrom(1, 3, 4, 8), K: fc.constantFrom(1, 2, 3),
    stride: fc.constantFrom(1, 2), padding: fc.constantFrom<ConvPadding>('same', 'valid', [[1, 0], [0, 1]]),
    activation: fc.constantFrom<ConvActivation>('none', 'relu'),
  }).filter((p) => p.padding !== 'valid' || (p.K <= p.H && p.K <= p.W));

  for (const v of [null, 'v1', 'v2', 'v3', 'matmul'] as const) {
    test(`${v ?? 'auto'}: stride 1 and 2, 'same', 'valid' and explicit padding`, async () => {
      await fc.assert(
        fc.asyncProperty(gradArb, seedArb, async (p, seed) => {
          const xShape = [p.N, p.H, p.W, p.C];
          const wShape = [p.K, p.K, p.C, p.F];
          const opts = { strides: p.stride, padding: p.padding };
          const x = randomData(size(xShape), seed);
          const w = randomData(size(wShape), seed + 1);
          const b = randomData(p.F, seed + 2);
          // relu's kink: finite differences straddling 0 would disagree with any derivative.
          const pre = conv2dRef(x, xShape, w, wShape, { ...opts, bias: b }).data;
          fc.pre(p.activation === 'none' || pre.every((z) => Math.abs(z) > 1e-3));
          forceConvVersion(v);
          await checkGradients(
            ([xt, wt, bt]) => conv2d(xt!, wt!, { ...opts, bias: bt!, activation: p.activation }),
            ([xs, ws, bs]) => conv2dRef(xs!, xShape, ws!, wShape, { ...opts, bias: bs!, activation: p.activation }).data,
            [{ data: x, shape: xShape }, { data: w, shape: wShape }, { data: b, shape: [p.F] }],
          );
        }),
        { numRuns: 10 },
      );
    });
  }
});

describe('the layers of VGG16 and ResNet50, at small spatial sizes', () => {
  const layers: Array<[string, Problem]> = [
    ['ResNet50 stem 7×7/2, 3→64, explicit padding 3', { xShape: [2, 16, 16, 3], wShape: [7, 7, 3, 64], strides: [2, 2], padding: [[3, 3], [3, 3]], hasBias: true, activation: 'none' }],
    ['ResNet50 stem after ZeroPadding2D(3), valid', { xShape: [1, 22, 22, 3], wShape: [7, 7, 3, 64], strides: [2, 2], padding: 'valid', hasBias: true, activation: 'none' }],
    ['3×3 same 64→64', { xShape: [2, 8, 8, 64], wShape: [3, 3, 64, 64], strides: [1, 1], padding: 'same', hasBias: true, activation: 'relu' }],
    ['1×1 256→64 (matmul)', { xShape: [2, 8, 8, 256], wShape: [1, 1, 256, 64], strides: [1, 1], padding: 'valid', hasBias: true, activation: 'none' }],
    ['1×1/2 projection 256→512', { xShape: [2, 8, 8, 256], wShape: [1, 1, 256, 512], strides: [2, 2], padding: 'valid', hasBias: true, activation: 'none' }],
    ['3×3/2 same 128→128 (v1.5)', { xShape: [2, 8, 8, 128], wShape: [3, 3, 128, 128], strides: [2, 2], padding: 'same', hasBias: true, activation: 'none' }],
    ['VGG16 block1 3×3 same 3→64, relu', { xShape: [2, 16, 16, 3], wShape: [3, 3, 3, 64], strides: [1, 1], padding: 'same', hasBias: true, activation: 'relu' }],
    ['VGG16 3×3 same 64→128, relu', { xShape: [1, 8, 8, 64], wShape: [3, 3, 64, 128], strides: [1, 1], padding: 'same', hasBias: true, activation: 'relu' }],
    ['Cout not a multiple of 4: 3×3 same 16→6', { xShape: [2, 9, 9, 16], wShape: [3, 3, 16, 6], strides: [1, 1], padding: 'same', hasBias: true, activation: 'relu' }],
  ];
  for (const [name, p] of layers) {
    test(name, async () => {
      for (const v of [null, ...CONV_VERSIONS]) {
        await checkForward(v, p, 11);
        await checkBackward(v, { ...p, activation: 'none' }, 12);
      }
    });
  }
});

describe('kernel selection', () => {
  const geo = (x: number[], w: number[], opts = {}) => conv2dGeometry('t', x, w, opts);
  const bestOf = () => (subgroupKernelSupported() ? 'v3' : 'v2');

  test('automatic: matmul for 1×1 stride 1, v3 where the columns are a multiple of 4, else v2', () => {
    const best = bestOf();
    const pointwise = geo([2, 8, 8, 16], [1, 1, 16, 32]);
    expect(convKernelFor(pointwise, 'forward')).toBe('matmul');
    expect(convKernelFor(pointwise, 'inputGrad')).toBe('matmul');
    expect(convKernelFor(pointwise, 'filterGrad')).toBe(best);
    expect(convKernelFor(geo([2, 8, 8, 16], [1, 1, 16, 32], { strides: 2 }), 'forward')).toBe(best);
    expect(convKernelFor(geo([2, 8, 8, 16], [1, 1, 16, 32], { padding: [[1, 0], [0, 0]] }), 'forward')).toBe(best);
    const rgb = geo([2, 8, 8, 3], [3, 3, 3, 64], { padding: 'same' });
    expect(convKernelFor(rgb, 'forward')).toBe(best);
    expect(convKernelFor(rgb, 'inputGrad')).toBe('v2');
    expect(convKernelFor(geo([2, 8, 8, 16], [3, 3, 16, 6]), 'forward')).toBe('v2');
  });

  test('forcing a version, with fallbacks where it cannot run', () => {
    const best = bestOf();
    const rgb = geo([2, 8, 8, 3], [3, 3, 3, 64], { padding: 'same' });
    forceConvVersion('v1');
    expect(convKernelFor(rgb, 'inputGrad')).toBe('v1');
    forceConvVersion('v2');
    expect(convKernelFor(geo([1, 4, 4, 4], [1, 1, 4, 4]), 'forward')).toBe('v2');
    forceConvVersion('v3');
    expect(convKernelFor(rgb, 'forward')).toBe(best);
    expect(convKernelFor(rgb, 'inputGrad')).toBe('v2');
    forceConvVersion('matmul');
    expect(convKernelFor(rgb, 'forward')).toBe(best);
    expect(() => forceConvVersion('v9' as ConvVersion)).toThrow(/unknown version 'v9'/);
  });

  test('v3 with more row groups than one dispatch may have', async (ctx) => {
    if (!subgroupKernelSupported()) ctx.skip();
    // 2100·2048 rows of 8 pixels per invocation and 8 per workgroup column: over the 65,535 limit on y.
    const p: Problem = { xShape: [1, 2100, 2049, 1], wShape: [1, 2, 1, 4], strides: [1, 1], padding: 'valid', hasBias: true, activation: 'none' };
    await checkForward('v3', p, 5);
  });
});

describe('empty dimensions', () => {
  test('N = 0 gives an empty output; Cin = 0 gives the bias', async () => {
    for (const v of [null, ...CONV_VERSIONS]) {
      forceConvVersion(v);
      const [empty, biasOnly, pointwise] = tidy(() => [
        conv2d(tensor([], [0, 5, 5, 3]), tensor(new Float32Array(3 * 3 * 3 * 4), [3, 3, 3, 4]), { padding: 'same' }),
        conv2d(tensor([], [1, 3, 2, 0]), tensor([], [3, 1, 0, 4]), { padding: 'same', bias: tensor([1, 2, 3, 4], [4]) }),
        conv2d(tensor([], [2, 2, 1, 0]), tensor([], [1, 1, 0, 3]), { bias: tensor([5, 6, 7], [3]) }),
      ]);
      expect(empty.shape).toEqual([0, 5, 5, 4]);
      expect(Array.from(await biasOnly.data())).toEqual(new Array(6).fill([1, 2, 3, 4]).flat());
      expect(Array.from(await pointwise.data())).toEqual(new Array(4).fill([5, 6, 7]).flat());
      for (const t of [empty, biasOnly, pointwise]) t.dispose();
    }
  });
});

describe('memory', () => {
  test('forward and backward of every version leave no tensors behind', async () => {
    const before = liveTensorCount();
    for (const v of [null, ...CONV_VERSIONS]) {
      forceConvVersion(v);
      const x = tensor(randomData(2 * 5 * 5 * 4, 1), [2, 5, 5, 4]).keep();
      const w = tensor(randomData(3 * 3 * 4 * 8, 2), [3, 3, 4, 8]).keep();
      const w1 = tensor(randomData(4 * 8, 3), [1, 1, 4, 8]).keep();
      for (const t of [x, w, w1]) t.requiresGrad = true;
      tidy(() => {
        const y = conv2d(x, w, { strides: 2, padding: 'same', activation: 'relu' });
        backward(sum(conv2d(y, tensor(randomData(3 * 3 * 8 * 4, 4), [3, 3, 8, 4]))));
        backward(sum(conv2d(x, w1)));
      });
      for (const t of [x, w, w1]) t.dispose();
    }
    expect(liveTensorCount()).toBe(before);
  });
});

describe('errors', () => {
  const x = () => tensor(new Float32Array(48), [1, 4, 4, 3]);
  const w = () => tensor(new Float32Array(216), [3, 3, 3, 8]);

  test('dilation and groups other than 1 are refused, never ignored', () => {
    tidy(() => {
      expect(() => conv2d(x(), w(), { dilation: 2 })).toThrow(ArgumentError);
      expect(() => conv2d(x(), w(), { dilation: [1, 2] })).toThrow(/conv2d: dilation \[1,2\] is not implemented/);
      expect(() => conv2d(x(), w(), { groups: 3 })).toThrow(/conv2d: groups 3 is not implemented/);
      expect(conv2d(x(), w(), { dilation: [1, 1], groups: 1, padding: 'same' }).shape).toEqual([1, 4, 4, 8]);
    });
  });

  test('shape mismatches name both shapes', () => {
    tidy(() => {
      const x5 = tensor(new Float32Array(80), [1, 4, 4, 5]);
      expect(() => conv2d(x5, w())).toThrow(ShapeError);
      expect(() => conv2d(x5, w())).toThrow(/conv2d: x has 5 input channels but w \(HWIO\) expects 3; x is \[1, 4, 4, 5\], w is \[3, 3, 3, 8\]/);
      const big = tensor(new Float32Array(7 * 7 * 3 * 8), [7, 7, 3, 8]);
      expect(() => conv2d(x(), big)).toThrow(/conv2d: the 7×7 kernel is larger than the padded input \(4×4.*x is \[1, 4, 4, 3\], w is \[7, 7, 3, 8\]/);
      expect(conv2d(x(), big, { padding: 'same' }).shape).toEqual([1, 4, 4, 8]);
      expect(() => conv2d(tensor(new Float32Array(48), [4, 4, 3]), w())).toThrow(/conv2d: x must have rank 4, NHWC/);
      expect(() => conv2d(x(), tensor(new Float32Array(24), [3, 8]))).toThrow(/conv2d: w must have rank 4, HWIO/);
      expect(() => conv2d(x(), w(), { bias: tensor(new Float32Array(3), [3]) })).toThrow(/conv2d: bias must have shape \[8\].*bias is \[3\]/);
      expect(() => conv2d(tensor([1], [1, 1, 1, 1], 'i32'), tensor([1], [1, 1, 1, 1]))).toThrow(/conv2d: .*dtype i32; expected f32/);
    });
  });

  test('bad options are named', () => {
    tidy(() => {
      expect(() => conv2d(x(), w(), { strides: 0 })).toThrow(/conv2d: strides must be a positive integer/);
      expect(() => conv2d(x(), w(), { strides: [1, 1.5] as never })).toThrow(/strides/);
      expect(() => conv2d(x(), w(), { padding: 'full' as never })).toThrow(/conv2d: padding must be 'valid', 'same' or \[\[top, bottom\], \[left, right\]\]/);
      expect(() => conv2d(x(), w(), { padding: [[1, -1], [0, 0]] })).toThrow(ArgumentError);
      expect(() => conv2d(x(), w(), { stride: 2 } as never)).toThrow(/conv2d: unknown option 'stride'/);
      expect(() => conv2d(x(), w(), { activation: 'gelu' as never })).toThrow(/conv2d: unknown activation 'gelu'/);
    });
  });
});
