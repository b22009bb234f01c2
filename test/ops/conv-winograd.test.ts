/**
 * Conv2d by Winograd F(2×2, 3×3) (src/ops/conv-winograd.ts): the f64 references of its three transforms
 * compose to the convolution; each WGSL transform matches its reference; the whole path matches conv2dRef
 * on random 3×3 stride-1 problems (odd sizes, 1×1 inputs, 'same', 'valid' and explicit padding, bias,
 * residual, relu); gradients through it are right; and it is chosen exactly where it applies.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { expectClose, randomData, seedArb } from '../util/check.js';
import { checkGradients } from '../util/grad.js';
import { tensor } from '../../src/tensor/create.js';
import { tidy } from '../../src/tensor/scope.js';
import { liveTensorCount } from '../../src/tensor/tensor.js';
import * as ops from '../../src/ops/index.js';
import { roundToF16Ref } from '../../src/ops/cast.js';
import {
  type ConvActivation, type ConvPadding, conv2d, conv2dBackwardRef, conv2dGeometry, conv2dInputGradRaw, conv2dRef, convKernelFor, forceConvVersion,
} from '../../src/ops/conv.js';
import { matmulRef } from '../../src/ops/matmul.js';
import {
  type WinogradTile, conv2dWinogradFilterGradRaw, conv2dWinogradRaw, inputGradGeometry, winogradApplies, winogradFilterRaw, winogradFilterRef, winogradInputRaw, winogradInputRef,
  winogradCost, winogradFilterAdjointRef, winogradOutputAdjointRef, winogradOutputRaw, winogradOutputRef, winogradTile,
} from '../../src/ops/conv-winograd.js';
import { withStorageBindingLimit } from '../../src/ops/kernel.js';

useGpu();
afterEach(() => forceConvVersion(null));

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const TILES: WinogradTile[] = [2, 4];

const padArb = fc.oneof(
  fc.constant<ConvPadding>('same'),
  fc.constant<ConvPadding>('valid'),
  fc.tuple(fc.nat(2), fc.nat(2), fc.nat(2), fc.nat(2)).map(([t, b, l, r]): ConvPadding => [[t, b], [l, r]]),
);

/** 3×3 stride-1 problems: N 1–3, H and W 1–9 (odd, 1), channels multiples of 4 (with `any`, any count). */
function problemArb(any = false) {
  const ch = any ? fc.integer({ min: 1, max: 9 }) : fc.constantFrom(4, 8, 12, 16, 20);
  return fc.record({
    N: fc.constantFrom(1, 2, 3), H: fc.integer({ min: 1, max: 9 }), W: fc.integer({ min: 1, max: 9 }), C: ch, F: ch,
    padding: padArb, hasBias: fc.boolean(), hasResidual: fc.boolean(), activation: fc.constantFrom<ConvActivation>('none', 'relu'),
  }).filter((p) => {
    try {
      conv2dGeometry('t', [p.N, p.H, p.W, p.C], [3, 3, p.C, p.F], { padding: p.padding });
      return true;
    } catch {
      return false; // a 'valid' 3×3 on a 1- or 2-pixel side
    }
  });
}

describe('the f64 references', () => {
  for (const m of TILES) {
    test(`F(${m}×${m}, 3×3): filter, input and output transforms around the matrix products give the convolution`, () => {
      fc.assert(
        fc.property(problemArb(true), seedArb, (p, seed) => {
          const xShape = [p.N, p.H, p.W, p.C], wShape = [3, 3, p.C, p.F];
          const g = conv2dGeometry('t', xShape, wShape, { padding: p.padding });
          const x = randomData(size(xShape), seed), w = randomData(size(wShape), seed + 1);
          const tiles = g.N * Math.ceil(g.OH / m) * Math.ceil(g.OW / m);
          const n = (m + 2) ** 2;
          const mt = matmulRef(winogradInputRef(x, g, m), [n, tiles, g.C], winogradFilterRef(w, g.C, g.F, m), [n, g.C, g.F]);
          const y = winogradOutputRef(mt.data, g, m);
          expectClose(y, conv2dRef(x, xShape, w, wShape, { padding: p.padding }).data, { rtol: 1e-10, atol: 1e-10 }, `winograd F(${m}) reference`);
        }),
        { numRuns: 30 },
      );
    });
  }
});

describe('the f64 references of dW', () => {
  for (const m of TILES) {
    test(`F(${m}×${m}, 3×3): the adjoint transforms around Vᵀ · dM give the filter gradient`, () => {
      fc.assert(
        fc.property(problemArb(true), seedArb, (p, seed) => {
          const xShape = [p.N, p.H, p.W, p.C], wShape = [3, 3, p.C, p.F];
          const g = conv2dGeometry('t', xShape, wShape, { padding: p.padding });
          const x = randomData(size(xShape), seed), w = randomData(size(wShape), seed + 1);
          const gy = randomData(g.N * g.OH * g.OW * g.F, seed + 2);
          const tiles = g.N * Math.ceil(g.OH / m) * Math.ceil(g.OW / m);
          const n = (m + 2) ** 2;
          const du = matmulRef(winogradInputRef(x, g, m), [n, tiles, g.C], winogradOutputAdjointRef(gy, g, m), [n, tiles, g.F], { transposeA: true });
          const dw = winogradFilterAdjointRef(du.data, g.C, g.F, m);
          expectClose(dw, conv2dBackwardRef(x, xShape, w, wShape, gy, { padding: p.padding }).dw, { rtol: 1e-10, atol: 1e-10 }, `winograd F(${m}) dW reference`);
        }),
        { numRuns: 25 },
      );
    });
  }
});

describe('each transform kernel matches its reference', () => {
  for (const m of TILES) {
    test(`F(${m}×${m}, 3×3): filter, input and output transforms`, async () => {
      await fc.assert(
        fc.asyncProperty(problemArb(), seedArb, async (p, seed) => {
          const xShape = [p.N, p.H, p.W, p.C], wShape = [3, 3, p.C, p.F];
          const g = conv2dGeometry('t', xShape, wShape, { padding: p.padding });
          const tiles = g.N * Math.ceil(g.OH / m) * Math.ceil(g.OW / m);
          const n = (m + 2) ** 2;
          const x = randomData(size(xShape), seed), w = randomData(size(wShape), seed + 1), mt = randomData(n * tiles * g.F, seed + 2);
          const u = tidy(() => winogradFilterRaw(tensor(w, wShape), g, m));
          const v = tidy(() => winogradInputRaw(tensor(x, xShape), g, m));
          const y = tidy(() => winogradOutputRaw(tensor(mt, [n, tiles, g.F]), g, m, null, 'none', null));
          expectClose(await u.data(), winogradFilterRef(w, g.C, g.F, m), { rtol: 1e-6, atol: 1e-6 }, 'U');
          expectClose(await v.data(), winogradInputRef(x, g, m), { rtol: 1e-6, atol: 1e-5 }, 'V');
          expectClose(await y.data(), winogradOutputRef(mt, g, m), { rtol: 1e-6, atol: 1e-4 }, 'Y');
          for (const t of [u, v, y]) t.dispose();
        }),
        { numRuns: 12 },
      );
    });

    test(`F(${m}×${m}, 3×3): the whole pass matches conv2dRef with bias, residual and relu`, async () => {
      await fc.assert(
        fc.asyncProperty(problemArb(), seedArb, async (p, seed) => {
          const xShape = [p.N, p.H, p.W, p.C], wShape = [3, 3, p.C, p.F];
          const g = conv2dGeometry('t', xShape, wShape, { padding: p.padding });
          const outShape = [g.N, g.OH, g.OW, g.F];
          const x = randomData(size(xShape), seed), w = randomData(size(wShape), seed + 1);
          const b = p.hasBias ? randomData(g.F, seed + 2) : null;
          const r = p.hasResidual ? randomData(size(outShape), seed + 3) : null;
          const y = tidy(() => conv2dWinogradRaw(tensor(x, xShape), tensor(w, wShape), b ? tensor(b, [g.F]) : null, p.activation, g, r ? tensor(r, outShape) : null, m));
          const ref = conv2dRef(x, xShape, w, wShape, { padding: p.padding, activation: p.activation, bias: b, residual: r });
          expectClose(await y.data(), ref.data, { rtol: 1e-4, atol: 2e-6 * 9 * p.C + 1e-6 }, `winograd F(${m}) ${JSON.stringify(p)}`);
          y.dispose();
        }),
        { numRuns: 15 },
      );
    });
  }
});

describe('conv2d through Winograd', () => {
  test('conv2d pinned to winograd (automatic tile size) matches conv2dRef with bias, residual and relu, and leaves no tensors behind', async () => {
    forceConvVersion('winograd');
    await fc.assert(
      fc.asyncProperty(problemArb(), seedArb, async (p, seed) => {
        const xShape = [p.N, p.H, p.W, p.C], wShape = [3, 3, p.C, p.F];
        const g = conv2dGeometry('t', xShape, wShape, { padding: p.padding });
        expect(convKernelFor(g, 'forward')).toBe('winograd');
        const outShape = [g.N, g.OH, g.OW, g.F];
        const x = randomData(size(xShape), seed), w = randomData(size(wShape), seed + 1);
        const b = p.hasBias ? randomData(g.F, seed + 2) : null;
        const r = p.hasResidual ? randomData(size(outShape), seed + 3) : null;
        const before = liveTensorCount();
        const y = tidy(() => conv2d(tensor(x, xShape), tensor(w, wShape), {
          padding: p.padding, activation: p.activation, bias: b ? tensor(b, [g.F]) : null, residual: r ? tensor(r, outShape) : null,
        }));
        const ref = conv2dRef(x, xShape, w, wShape, { padding: p.padding, activation: p.activation, bias: b, residual: r });
        expectClose(await y.data(), ref.data, { rtol: 1e-4, atol: 2e-6 * 9 * p.C + 1e-6 }, `winograd ${JSON.stringify(p)}`);
        y.dispose();
        expect(liveTensorCount()).toBe(before);
      }),
      { numRuns: 25 },
    );
  });

  test('the layer sizes of ResNet50 (56×56 at 64 channels, 7×7 at 512), against the direct v3 kernel', async () => {
    for (const [xShape, wShape] of [[[1, 56, 56, 64], [3, 3, 64, 64]], [[2, 7, 7, 512], [3, 3, 512, 512]]]) {
      const x = randomData(size(xShape!), 1), w = randomData(size(wShape!), 2);
      const run = () => tidy(() => conv2d(tensor(x, xShape!), tensor(w, wShape!), { padding: 'same' }));
      forceConvVersion('winograd');
      const fast = run();
      forceConvVersion('v3');
      const direct = run();
      forceConvVersion(null);
      expectClose(await fast.data(), await direct.data(), { rtol: 1e-4, atol: 2e-6 * 9 * wShape![2]! }, `winograd vs v3 ${JSON.stringify(wShape)}`);
      fast.dispose();
      direct.dispose();
    }
  });

  test('gradients through a Winograd forward pass (relu mask from its output) match finite differences', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom<ConvPadding>('same', 'valid'), fc.integer({ min: 3, max: 5 }), seedArb, async (padding, H, seed) => {
        const xShape = [2, H, H + 1, 4], wShape = [3, 3, 4, 8];
        const x = randomData(size(xShape), seed), w = randomData(size(wShape), seed + 1), b = randomData(8, seed + 2);
        const pre = conv2dRef(x, xShape, w, wShape, { padding, bias: b }).data;
        fc.pre(pre.every((z) => Math.abs(z) > 1e-3));
        forceConvVersion('winograd');
        expect(convKernelFor(conv2dGeometry('t', xShape, wShape, { padding }), 'forward')).toBe('winograd');
        await checkGradients(
          ([xt, wt, bt]) => conv2d(xt!, wt!, { padding, bias: bt!, activation: 'relu' }),
          ([xs, ws, bs]) => conv2dRef(xs!, xShape, ws!, wShape, { padding, bias: bs!, activation: 'relu' }).data,
          [{ data: x, shape: xShape }, { data: w, shape: wShape }, { data: b, shape: [8] }],
        );
      }),
      { numRuns: 4 },
    );
  });

  test('dX through Winograd (a forward pass with the filter turned, read transposed) matches the analytic reference', async () => {
    forceConvVersion('winograd');
    await fc.assert(
      fc.asyncProperty(problemArb(), seedArb, async (p, seed) => {
        const xShape = [p.N, p.H, p.W, p.C], wShape = [3, 3, p.C, p.F];
        const g = conv2dGeometry('t', xShape, wShape, { padding: p.padding });
        if (inputGradGeometry(g)) expect(convKernelFor(g, 'inputGrad')).toBe('winograd');
        const x = randomData(size(xShape), seed), w = randomData(size(wShape), seed + 1);
        const gy = randomData(g.N * g.OH * g.OW * g.F, seed + 2);
        const dx = tidy(() => conv2dInputGradRaw(tensor(gy, [g.N, g.OH, g.OW, g.F]), tensor(w, wShape), g));
        const ref = conv2dBackwardRef(x, xShape, w, wShape, gy, { padding: p.padding });
        expectClose(await dx.data(), ref.dx, { rtol: 1e-4, atol: 2e-6 * 9 * p.F + 1e-6 }, `winograd dX ${JSON.stringify(p)}`);
        dx.dispose();
      }),
      { numRuns: 20 },
    );
  });

  test('dW through Winograd (the adjoint transforms around V transposed times dM) matches the analytic reference', async () => {
    await fc.assert(
      fc.asyncProperty(problemArb(), fc.constantFrom<WinogradTile>(2, 4), seedArb, async (p, m, seed) => {
        const xShape = [p.N, p.H, p.W, p.C], wShape = [3, 3, p.C, p.F];
        const g = conv2dGeometry('t', xShape, wShape, { padding: p.padding });
        const x = randomData(size(xShape), seed), w = randomData(size(wShape), seed + 1);
        const gy = randomData(g.N * g.OH * g.OW * g.F, seed + 2);
        const dw = tidy(() => conv2dWinogradFilterGradRaw(tensor(x, xShape), tensor(gy, [g.N, g.OH, g.OW, g.F]), g, m));
        const ref = conv2dBackwardRef(x, xShape, w, wShape, gy, { padding: p.padding });
        expectClose(await dw.data(), ref.dw, { rtol: 1e-4, atol: 2e-6 * g.N * g.OH * g.OW + 1e-5 }, `winograd F(${m}) dW ${JSON.stringify(p)}`);
        dw.dispose();
      }),
      { numRuns: 20 },
    );
  });

  test('a batch whose transformed tiles exceed one binding runs in chunks of images (forward and dX; dW falls back)', async () => {
    forceConvVersion('winograd');
    const xShape = [3, 9, 10, 8], wShape = [3, 3, 8, 12];
    const g = conv2dGeometry('t', xShape, wShape, { padding: 'same' });
    const x = randomData(size(xShape), 5), w = randomData(size(wShape), 6), b = randomData(12, 7);
    const r = randomData(g.N * g.OH * g.OW * g.F, 8), gy = randomData(g.N * g.OH * g.OW * g.F, 9);
    const outShape = [g.N, g.OH, g.OW, g.F];
    // One image's V or M for F(4×4) is 36 · 9 tiles · 12 channels · 4 bytes = 15.2 KiB: a 16 KiB limit takes one image at a time.
    const [y, dx] = withStorageBindingLimit(16384, () => {
      expect(convKernelFor(g, 'forward')).toBe('winograd');
      expect(convKernelFor(g, 'inputGrad')).toBe('winograd');
      expect(convKernelFor(g, 'filterGrad')).not.toBe('winograd');
      return [
        tidy(() => conv2d(tensor(x, xShape), tensor(w, wShape), { padding: 'same', bias: tensor(b, [12]), residual: tensor(r, outShape), activation: 'relu' })),
        tidy(() => conv2dInputGradRaw(tensor(gy, outShape), tensor(w, wShape), g)),
      ];
    });
    const ref = conv2dRef(x, xShape, w, wShape, { padding: 'same', bias: b, residual: r, activation: 'relu' });
    expectClose(await y.data(), ref.data, { rtol: 1e-4, atol: 1e-4 }, 'chunked winograd forward');
    expectClose(await dx.data(), conv2dBackwardRef(x, xShape, w, wShape, gy, { padding: 'same' }).dx, { rtol: 1e-4, atol: 1e-4 }, 'chunked winograd dX');
    y.dispose();
    dx.dispose();
  });

  test('f16 storage: x, w and y in f16, the transformed tiles in f32, y rounded once (within an f16 ulp of the reference)', async () => {
    forceConvVersion('winograd');
    for (const [xShape, wShape] of [[[2, 9, 7, 8], [3, 3, 8, 12]], [[1, 12, 12, 16], [3, 3, 16, 8]]]) {
      const half = (n: number, seed: number) => Float32Array.from(roundToF16Ref(randomData(n, seed)));
      const x = half(size(xShape!), 3), w = half(size(wShape!), 4);
      const g = conv2dGeometry('t', xShape!, wShape!, { padding: 'same' });
      expect(convKernelFor(g, 'forward')).toBe('winograd');
      const y = tidy(() => ops.cast(conv2d(ops.cast(tensor(x, xShape!), 'f16'), ops.cast(tensor(w, wShape!), 'f16'), { padding: 'same', activation: 'relu' }), 'f32'));
      const ref = conv2dRef(x, xShape!, w, wShape!, { padding: 'same', activation: 'relu' });
      expectClose(await y.data(), roundToF16Ref(ref.data), { rtol: 2 ** -10, atol: 2 ** -14 }, `winograd f16 ${JSON.stringify(wShape)}`);
      y.dispose();
    }
  });
});

describe('selection', () => {
  const geo = (x: number[], w: number[], opts = {}) => conv2dGeometry('t', x, w, opts);

  test('3×3, stride 1, channels in multiples of 4: all three passes', () => {
    const g = geo([8, 28, 28, 64], [3, 3, 64, 64], { padding: 'same' });
    expect(winogradApplies(g)).toBe(true);
    expect(convKernelFor(g, 'forward')).toBe('winograd');
    expect(convKernelFor(g, 'inputGrad')).toBe('winograd');
    expect(convKernelFor(g, 'filterGrad')).toBe('winograd');
    // Explicit padding over 2 on a side: dX is no longer a padded convolution.
    expect(convKernelFor(geo([8, 28, 28, 64], [3, 3, 64, 64], { padding: [[3, 0], [1, 1]] }), 'inputGrad')).not.toBe('winograd');
    for (const other of [
      geo([2, 8, 8, 16], [3, 3, 16, 32], { strides: 2, padding: 'same' }),
      geo([2, 8, 8, 3], [3, 3, 3, 32], { padding: 'same' }),
      geo([2, 8, 8, 16], [3, 3, 16, 6], { padding: 'same' }),
      geo([2, 8, 8, 16], [5, 5, 16, 32], { padding: 'same' }),
      geo([2, 8, 8, 16], [1, 1, 16, 32]),
    ]) {
      expect(winogradApplies(other)).toBe(false);
      expect(convKernelFor(other, 'forward')).not.toBe('winograd');
    }
  });

  test('the cheaper tile size, or the direct kernel where transforming the filter costs more than Winograd saves', () => {
    const tileFor = (n: number, hw: number, c: number) => winogradTile(geo([n, hw, hw, c], [3, 3, c, c], { padding: 'same' }));
    expect(tileFor(8, 56, 64)).toBe(4);    // ResNet50 at 224, batch 8: every 3×3 layer
    expect(tileFor(8, 14, 256)).toBe(4);
    expect(tileFor(8, 7, 512)).toBe(4);
    expect(tileFor(8, 6, 64)).toBe(2);     // F(4×4) would compute 8×8 outputs for 6×6
    expect(tileFor(8, 2, 512)).toBe(null); // ResNet50 at 64: the 512² filter's transform outweighs 32 pixels
    expect(tileFor(1, 1, 16)).toBe(null);
    for (const [n, hw, c] of [[8, 56, 64], [8, 6, 64], [8, 2, 512]] as const) {
      const g = geo([n, hw, hw, c], [3, 3, c, c], { padding: 'same' });
      const m = winogradTile(g);
      const others = ([null, 2, 4] as const).filter((o) => o !== m);
      for (const o of others) expect(winogradCost(g, m)).toBeLessThanOrEqual(winogradCost(g, o));
    }
  });

  test('pinning another version runs it instead; transformed tiles over the binding limit fall back', () => {
    const g = geo([2, 8, 8, 16], [3, 3, 16, 32], { padding: 'same' });
    forceConvVersion('v2');
    expect(convKernelFor(g, 'forward')).toBe('v2');
    forceConvVersion('winograd');
    expect(convKernelFor(g, 'forward')).toBe('winograd');
    expect(convKernelFor(geo([2, 8, 8, 16], [1, 1, 16, 32]), 'forward')).toBe('matmul');
    // Pinned, it runs where the direct kernel would be cheaper, but not where V (16 positions · 32 tiles ·
    // 16 channels · 4 bytes = 32 KiB for F(2×2)) exceeds an 8 KiB binding limit.
    withStorageBindingLimit(8192, () => expect(convKernelFor(g, 'forward')).not.toBe('winograd'));
  });
});
