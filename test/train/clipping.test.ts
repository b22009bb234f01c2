/**
 * Gradient clipping (src/train/clipping.ts) and the optimizers' clipValue / clipNorm / globalClipNorm.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { expectClose, randomData, seedArb } from '../util/check.js';
import { tensor } from '../../src/tensor/create.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { tidy } from '../../src/tensor/scope.js';
import { memory } from '../../src/tensor/memory.js';
import { ArgumentError } from '../../src/errors.js';
import { sgdUpdateRef } from '../../src/ops/optimizer-updates.js';
import {
  type ClipOptions, clipByGlobalNorm, clipByGlobalNormRef, clipByNorm, clipByNormRef, clipByValue, clipByValueRef,
  clipGradientsRef, l2NormRef,
} from '../../src/train/clipping.js';
import { Adam, AdamW, SGD } from '../../src/train/optimizers.js';

useGpu();

const runs = { numRuns: 15 } as const;
const sizeArb = fc.oneof(fc.constantFrom(1, 2, 3, 7, 64, 65), fc.integer({ min: 1, max: 2000 }));
/** f32-representable thresholds, so the reference sees exactly what the kernels see. */
const cArb = fc.double({ min: 0.01, max: 20, noNaN: true }).map(Math.fround);
/** Gradients of varied magnitude, so that some are clipped and some are not. */
const gradArb = fc.tuple(sizeArb, seedArb, fc.constantFrom(0.01, 0.3, 1, 10)).map(([n, seed, scale]) => randomData(n, seed, -scale, scale));

function param(data: ArrayLike<number>): Tensor {
  const t = tensor(data, [data.length]).keep();
  t.requiresGrad = true;
  return t;
}

describe('clipping functions match f64 references', () => {
  test('clipByValue', async () => {
    await fc.assert(
      fc.asyncProperty(gradArb, cArb, async (g, c) => {
        const out = tidy(() => clipByValue(tensor(g), c));
        expectClose(await out.data(), clipByValueRef(g, c), { rtol: 0, atol: 0 }, 'clipByValue');
        out.dispose();
      }),
      runs,
    );
  });

  test('clipByNorm: the result has norm min(‖g‖, c) and the direction of g', async () => {
    await fc.assert(
      fc.asyncProperty(gradArb, cArb, async (g, c) => {
        const out = tidy(() => clipByNorm(tensor(g), c));
        const got = await out.data();
        out.dispose();
        expectClose(got, clipByNormRef(g, c), { rtol: 2e-5, atol: 1e-7 }, 'clipByNorm');
        expect(l2NormRef(got)).toBeCloseTo(Math.min(l2NormRef(g), c), 4);
      }),
      runs,
    );
  });

  test('clipByGlobalNorm scales every gradient by one factor c / max(N, c)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(gradArb, { minLength: 1, maxLength: 4 }), cArb, async (gs, c) => {
        const { clipped, globalNorm } = tidy(() => clipByGlobalNorm(gs.map((g) => tensor(g)), c));
        const got = await Promise.all(clipped.map((t) => t.data()));
        const n = await globalNorm.item();
        for (const t of [...clipped, globalNorm]) t.dispose();
        const ref = clipByGlobalNormRef(gs, c);
        const refNorm = Math.sqrt(gs.reduce((s, g) => s + l2NormRef(g) ** 2, 0));
        expect(n).toBeCloseTo(refNorm, 3);
        got.forEach((d, i) => expectClose(d, ref[i]!, { rtol: 2e-5, atol: 1e-7 }, `gradient ${i}`));
        // The same factor for all: each element's ratio to its input is c / max(N, c).
        const factor = c / Math.max(refNorm, c);
        got.forEach((d, i) => {
          const j = gs[i]!.findIndex((v) => Math.abs(v) > 1e-3);
          if (j >= 0) expect(d[j]! / gs[i]![j]!).toBeCloseTo(factor, 4);
        });
      }),
      runs,
    );
  });

  test('clipByGlobalNorm: a non-finite gradient makes every clipped gradient NaN (as TF)', async () => {
    const out = tidy(() => clipByGlobalNorm([tensor([1, 2, 3]), tensor([1, Infinity])], 1).clipped);
    const data = await Promise.all(out.map((t) => t.data()));
    out.forEach((t) => t.dispose());
    for (const d of data) for (const v of d) expect(v).toBeNaN();
  });
});

describe('optimizers apply clipped gradients', () => {
  const modeArb: fc.Arbitrary<ClipOptions> = fc.oneof(
    cArb.map((c) => ({ clipValue: c })),
    cArb.map((c) => ({ clipNorm: c })),
    cArb.map((c) => ({ globalClipNorm: c })),
    fc.tuple(cArb, cArb).map(([v, c]) => ({ clipValue: v, clipNorm: c })),
    fc.tuple(cArb, cArb).map(([v, c]) => ({ clipValue: v, globalClipNorm: c })),
  );

  test('SGD with clipping = reference SGD on reference-clipped gradients, over several steps', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(sizeArb, { minLength: 1, maxLength: 3 }), modeArb, seedArb, fc.integer({ min: 1, max: 3 }), async (sizes, clip, seed, steps) => {
        const h = { lr: 0.1, momentum: 0.9, nesterov: false, weightDecay: 0 };
        const p0 = sizes.map((n, i) => randomData(n, seed + i));
        const refP = p0.map((d) => Float64Array.from(d));
        const refV = sizes.map((n) => new Float64Array(n));
        const params = p0.map(param);
        const opt = new SGD(params, { lr: h.lr, momentum: h.momentum, ...clip });
        for (let s = 0; s < steps; s++) {
          const grads = sizes.map((n, i) => randomData(n, seed * 7 + 100 * s + i, -3, 3));
          tidy(() => {
            params.forEach((p, i) => (p.grad = tensor(grads[i]!).keep()));
            opt.step();
            opt.zeroGrad();
          });
          const clipped = clipGradientsRef(grads, clip);
          refP.forEach((p, i) => sgdUpdateRef(p, clipped[i]!, refV[i]!, h));
        }
        for (const [i, p] of params.entries()) expectClose(await p.data(), refP[i]!, { rtol: 1e-4, atol: 1e-5 }, `param ${i}`);
        opt.dispose();
        params.forEach((p) => p.dispose());
      }),
      runs,
    );
  });

  test('step leaves p.grad unclipped and frees its temporaries', async () => {
    const p = param([0, 0, 0]);
    const opt = new Adam([p], { lr: 0.1, globalClipNorm: 0.5 });
    p.grad = tensor([3, 4, 0]).keep();
    opt.step(); // outside any tidy: the clipping temporaries must still be freed
    const before = memory();
    p.grad.dispose();
    p.grad = tensor([3, 4, 0]).keep();
    opt.step();
    expect(memory()).toEqual(before);
    expect(Array.from(await p.grad.data())).toEqual([3, 4, 0]);
    opt.dispose();
    p.dispose();
  });

  test('the options are validated, and at most one norm clip is allowed', () => {
    const p = param([1, 2]);
    for (const key of ['clipValue', 'clipNorm', 'globalClipNorm'] as const) {
      for (const bad of [0, -1, Number.NaN, Infinity, '1', null]) {
        expect(() => new SGD([p], { lr: 0.1, [key]: bad as number }), `${key} = ${String(bad)}`).toThrow(ArgumentError);
        expect(() => new SGD([p], { lr: 0.1, [key]: bad as number })).toThrow(new RegExp(`${key} must be a finite number > 0; got`));
      }
    }
    expect(() => new Adam([p], { lr: 0.1, clipNorm: 1, globalClipNorm: 1 })).toThrow(/at most one of clipNorm \(1\) and globalClipNorm \(1\)/);
    expect(() => new AdamW([{ params: [p], clipNorm: 1 } as never], { lr: 0.1 })).toThrow(/clipNorm applies to the whole optimizer/);
    expect(new SGD([p], { lr: 0.1, clipValue: 2, clipNorm: 1 }).clipping).toEqual({ clipValue: 2, clipNorm: 1 });
    p.dispose();
  });

  test('clipping travels in stateDict and is restored and validated by loadStateDict', async () => {
    const p = param([1, 2]);
    const a = new Adam([p], { lr: 0.1, clipNorm: 0.25, clipValue: 3 });
    const dict = await a.stateDict();
    expect(dict.clipping).toEqual({ clipNorm: 0.25, clipValue: 3 });
    const b = new Adam([p], { lr: 0.1 });
    b.loadStateDict(JSON.parse(JSON.stringify(dict)));
    expect(b.clipping).toEqual({ clipNorm: 0.25, clipValue: 3 });
    expect(() => b.loadStateDict({ ...dict, clipping: { clipNorm: -1 } })).toThrow(/loadStateDict: clipping: clipNorm must be/);
    const { clipping: _, ...old } = dict;
    b.loadStateDict(old); // a dict from before clipping existed keeps the optimizer's own
    expect(b.clipping).toEqual({ clipNorm: 0.25, clipValue: 3 });
    a.dispose();
    b.dispose();
    p.dispose();
  });
});
