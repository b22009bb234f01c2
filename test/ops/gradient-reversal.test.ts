import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { randomData, seedArb, shapeArb } from '../util/check.js';
import { checkGradients } from '../util/grad.js';
import { tensor } from '../../src/tensor/create.js';
import { tidy } from '../../src/tensor/scope.js';
import { runtime } from '../../src/gpu/runtime.js';
import * as ops from '../../src/ops/index.js';
import { GradientReversal, dannLambda } from '../../src/nn/index.js';
import { ArgumentError } from '../../src/errors.js';

useGpu();

const sizeOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const lambdaArb = fc.oneof(fc.constantFrom(0, 1, 2.5, -0.5), fc.double({ min: -3, max: 3, noNaN: true }));

describe('forward', () => {
  test('is the identity: a view of x, no kernel', async () => {
    const data = randomData(30, 1);
    const before = runtime().counters.dispatches;
    const { x, y } = tidy(() => {
      const x = tensor(data, [2, 3, 5]);
      x.requiresGrad = true;
      return { x, y: ops.gradientReversal(x, 0.7) };
    });
    expect(runtime().counters.dispatches).toBe(before);
    expect(y.storage).toBe(x.storage);
    expect(y.shape).toEqual([2, 3, 5]);
    expect(Array.from(await y.data())).toEqual(Array.from(data));
    x.dispose();
    y.dispose();
  });
});

describe('backward multiplies the gradient by −λ', () => {
  test('for λ = 0, 1, 2.5 and random λ: d/dx of Σ w·grl(x)² is −λ·(d/dx of Σ w·x²)', async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb(3, 200), lambdaArb, seedArb, async (shape, lambda, seed) => {
        const data = randomData(sizeOf(shape), seed);
        // The reference −λ·x² has gradient −λ·2x: the reversed gradient of the identity followed by x².
        await checkGradients(([x]) => ops.square(ops.gradientReversal(x!, lambda)), ([x]) => x!.map((v) => -lambda * v * v), [{ data, shape }]);
      }),
      { numRuns: 12 },
    );
  });

  test('DANN shape: label loss through the features, domain loss through the reversal', async () => {
    const data = randomData(24, 4);
    const a = randomData(24, 5);
    const lambda = 2.5;
    // features f = tanh(x); L = Σ w·[f·a  ‖  (f²) after reversal]; dL/dx = label part − λ·domain part.
    await checkGradients(
      ([x]) => {
        const f = ops.tanh(x!);
        return ops.concat([ops.mul(f, tensor(a, [4, 6])), ops.square(ops.gradientReversal(f, lambda))], 0);
      },
      ([x]) => {
        const f = x!.map(Math.tanh);
        return [...f.map((v, i) => v * a[i]!), ...f.map((v) => -lambda * v * v)];
      },
      [{ data, shape: [4, 6] }],
    );
  });

  test('changing λ every step compiles no new pipeline, and each step uses its own λ', async () => {
    const x = tensor(randomData(257, 6), [257]).keep();
    x.requiresGrad = true;
    const w = randomData(257, 7);
    const layer = new GradientReversal(0.1);
    const step = () =>
      tidy(() => {
        const loss = ops.sum(ops.mul(layer.apply(x), tensor(w, [257])));
        ops.backward(loss);
      });
    step();
    await runtime().sync();
    x.grad!.dispose();
    x.grad = null;
    const pipelines = runtime().pipelines.size;
    for (const lambda of [0.2, 1, 2.5, 0, -1.25, dannLambda(0.37)]) {
      layer.lambda = lambda;
      step();
      const g = await x.grad!.data();
      expect(Array.from(g)).toEqual(Array.from(w, (v) => Math.fround(v * Math.fround(-lambda)) + 0));
      x.grad!.dispose();
      x.grad = null;
      expect(runtime().pipelines.size).toBe(pipelines);
    }
    x.dispose();
  });
});

describe('GradientReversal and the DANN schedule', () => {
  test('the layer holds λ and validates it', () => {
    const layer = new GradientReversal();
    expect(layer.lambda).toBe(1);
    layer.lambda = 0.25;
    expect(layer.lambda).toBe(0.25);
    expect(() => (layer.lambda = NaN)).toThrow(/GradientReversal: lambda must be a finite number; got NaN/);
    expect(() => new GradientReversal(Infinity)).toThrow(ArgumentError);
    expect(layer.lambda).toBe(0.25);
  });

  test('dannLambda rises from 0 to nearly 1 (Ganin & Lempitsky: 2/(1 + e^(−10p)) − 1)', () => {
    const ps = Array.from({ length: 11 }, (_, i) => i / 10);
    const ls = ps.map((p) => dannLambda(p));
    expect(ls[0]).toBe(0);
    expect(ls[10]).toBeCloseTo(2 / (1 + Math.exp(-10)) - 1, 12);
    for (let i = 1; i < ls.length; i++) expect(ls[i]!).toBeGreaterThan(ls[i - 1]!);
    expect(dannLambda(0.5, 5)).toBeCloseTo(2 / (1 + Math.exp(-2.5)) - 1, 12);
    expect(() => dannLambda(1.5)).toThrow(/dannLambda: progress must be in \[0, 1\]; got 1.5/);
  });
});

describe('errors', () => {
  test('λ must be a finite number', () => {
    tidy(() => {
      const x = tensor([1, 2, 3], [3]);
      for (const bad of [NaN, Infinity, '1' as unknown as number]) {
        expect(() => ops.gradientReversal(x, bad)).toThrow(ArgumentError);
        expect(() => ops.gradientReversal(x, bad)).toThrow(/gradientReversal: lambda must be a finite number/);
      }
    });
  });
});
