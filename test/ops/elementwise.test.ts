import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { broadcastPairArb, expectClose, gpuRuns, randomData, seedArb, shapeArb } from '../util/check.js';
import { checkGradients } from '../util/grad.js';
import { tensor } from '../../src/tensor/create.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { tidy } from '../../src/tensor/scope.js';
import * as ops from '../../src/ops/index.js';
import { type BinaryOp, type UnaryOp, binaryRef, unaryReference } from '../../src/ops/elementwise.js';
import { ShapeError } from '../../src/errors.js';
import { withKernels } from '../util/kernels.js';

useGpu();

/** Inputs in a range where each op is defined and its derivative is smooth. */
const unaryCases: Array<{ op: UnaryOp; run: (x: Tensor) => Tensor; lo: number; hi: number; alpha?: number; beta?: number }> = [
  { op: 'neg', run: ops.neg, lo: -2, hi: 2 },
  { op: 'exp', run: ops.exp, lo: -3, hi: 3 },
  { op: 'log', run: ops.log, lo: 0.1, hi: 4 },
  { op: 'sqrt', run: ops.sqrt, lo: 0.1, hi: 4 },
  { op: 'relu', run: ops.relu, lo: -2, hi: 2 },
  { op: 'sigmoid', run: ops.sigmoid, lo: -6, hi: 6 },
  { op: 'tanh', run: ops.tanh, lo: -3, hi: 3 },
  { op: 'abs', run: ops.abs, lo: -2, hi: 2 },
  { op: 'square', run: ops.square, lo: -2, hi: 2 },
  { op: 'reciprocal', run: ops.reciprocal, lo: 0.5, hi: 3 },
  { op: 'powScalar', run: (x) => ops.powScalar(x, 2.5), lo: 0.1, hi: 3, alpha: 2.5 },
  { op: 'affine', run: (x) => ops.affine(x, -1.5, 0.25), lo: -2, hi: 2, alpha: -1.5, beta: 0.25 },
  { op: 'clamp', run: (x) => ops.clamp(x, -0.5, 0.7), lo: -2, hi: 2, alpha: -0.5, beta: 0.7 },
];

const binaryCases: Array<{ op: BinaryOp; run: (a: Tensor, b: Tensor) => Tensor; lo: number; hi: number }> = [
  { op: 'add', run: ops.add, lo: -2, hi: 2 },
  { op: 'sub', run: ops.sub, lo: -2, hi: 2 },
  { op: 'mul', run: ops.mul, lo: -2, hi: 2 },
  { op: 'div', run: ops.div, lo: 0.5, hi: 2 },
  { op: 'pow', run: ops.pow, lo: 0.5, hi: 2 },
  { op: 'maximum', run: ops.maximum, lo: -2, hi: 2 },
  { op: 'minimum', run: ops.minimum, lo: -2, hi: 2 },
];

// Kinks (relu at 0, abs at 0, clamp at its bounds) break finite differences; keep samples away from them.
function awayFromKinks(op: UnaryOp, data: Float32Array): Float32Array {
  const kinks = op === 'clamp' ? [-0.5, 0.7] : op === 'relu' || op === 'abs' ? [0] : [];
  return data.map((v) => (kinks.some((k) => Math.abs(v - k) < 1e-2) ? v + 0.05 : v));
}

describe('unary ops match the reference', () => {
  for (const c of unaryCases) {
    test(c.op, async () => {
      await fc.assert(
        fc.asyncProperty(shapeArb(4, 3000), seedArb, async (shape, seed) => {
          const n = shape.reduce((a, b) => a * b, 1);
          const data = randomData(n, seed, c.lo, c.hi);
          const y = tidy(() => c.run(tensor(data, shape)));
          expect(y.shape).toEqual(shape);
          const got = await y.data();
          y.dispose();
          const f = unaryReference[c.op];
          expectClose(got, Array.from(data, (v) => f(v, c.alpha ?? 0, c.beta ?? 0)), { rtol: 2e-6, atol: 1e-6 }, c.op);
        }),
        gpuRuns,
      );
    });
  }
});

describe('binary ops broadcast like NumPy and match the reference', () => {
  for (const c of binaryCases) {
    test(c.op, async () => {
      await fc.assert(
        fc.asyncProperty(broadcastPairArb(4, 3000), seedArb, async ([sa, sb], seed) => {
          const a = randomData(sa.reduce((x, y) => x * y, 1), seed, c.lo, c.hi);
          const b = randomData(sb.reduce((x, y) => x * y, 1), seed + 1, c.lo, c.hi);
          const out = tidy(() => c.run(tensor(a, sa), tensor(b, sb)));
          const ref = binaryRef(c.op, a, sa, b, sb);
          expect(out.shape).toEqual(ref.shape);
          expectClose(await out.data(), ref.data, { rtol: 2e-6, atol: 1e-6 }, c.op);
          out.dispose();
        }),
        gpuRuns,
      );
    });
  }
});

describe('the vec4 entries of the flat kernels (element counts that are multiples of 4)', () => {
  // 1024 elements are one workgroup of main_vec4 (64 invocations × 4 vec4s); the sizes around it and
  // around 4 leave partial workgroups, partial runs and (for the odd ones) the scalar entry.
  const sizes = [1, 3, 4, 5, 8, 1020, 1023, 1024, 1028, 2052, 6148, 70_000];
  test('unary and same-shape binary ops match the reference on either side of each boundary', async () => {
    for (const n of sizes) {
      const x = randomData(n, n, -2, 2);
      const z = randomData(n, n + 1, -2, 2);
      const expected = n % 4 === 0 ? ':main_vec4' : '';
      for (const [op, f] of [['relu', (v: number) => unaryReference.relu(v, 0, 0)], ['affine', (v: number) => unaryReference.affine(v, -1.5, 0.25)]] as const) {
        const r = await withKernels(() => (op === 'relu' ? ops.relu(tensor(x, [n])) : ops.affine(tensor(x, [n]), -1.5, 0.25)));
        expect(r.kernels).toEqual([`unary${expected}`]);
        expectClose(r.y, Array.from(x, f), { rtol: 2e-6, atol: 1e-6 }, `${op} n=${n}`);
      }
      const s = await withKernels(() => ops.sub(tensor(x, [n]), tensor(z, [n])));
      expect(s.kernels).toEqual([`binary${expected}`]);
      expectClose(s.y, binaryRef('sub', x, [n], z, [n]).data, { rtol: 2e-6, atol: 1e-6 }, `sub n=${n}`);
      const filled = await withKernels(() => ops.full([n], 2.5));
      expect(filled.kernels).toEqual([`unary${expected}`]);
      expect(filled.y.every((v) => v === 2.5)).toBe(true);
    }
  });
});

describe('gradients', () => {
  for (const c of unaryCases) {
    test(`${c.op}: GPU backward matches finite differences`, async () => {
      await fc.assert(
        fc.asyncProperty(shapeArb(3, 200), seedArb, async (shape, seed) => {
          const n = shape.reduce((a, b) => a * b, 1);
          const data = awayFromKinks(c.op, randomData(n, seed, c.lo, c.hi));
          const f = unaryReference[c.op];
          await checkGradients(([x]) => c.run(x!), ([x]) => x!.map((v) => f(v, c.alpha ?? 0, c.beta ?? 0)), [{ data, shape }]);
        }),
        { numRuns: 8 },
      );
    });
  }

  for (const c of binaryCases) {
    test(`${c.op}: GPU backward matches finite differences, with broadcasting`, async () => {
      await fc.assert(
        fc.asyncProperty(broadcastPairArb(3, 200), seedArb, async ([sa, sb], seed) => {
          let a = randomData(sa.reduce((x, y) => x * y, 1), seed, c.lo, c.hi);
          const b = randomData(sb.reduce((x, y) => x * y, 1), seed + 1, c.lo, c.hi);
          if (c.op === 'maximum' || c.op === 'minimum') a = a.map((v, i) => (Math.abs(v - b[i % b.length]!) < 1e-2 ? v + 0.1 : v));
          await checkGradients(
            ([x, y]) => c.run(x!, y!),
            ([x, y]) => binaryRef(c.op, x!, sa, y!, sb).data,
            [{ data: a, shape: sa }, { data: b, shape: sb }],
          );
        }),
        { numRuns: 8 },
      );
    });
  }

  test('fan-out accumulates: d/dx of x·x + x is 2x + 1', async () => {
    const data = randomData(10, 3);
    await checkGradients(([x]) => ops.add(ops.mul(x!, x!), x!), ([x]) => x!.map((v) => v * v + v), [{ data, shape: [10] }]);
  });
});

describe('errors', () => {
  test('shapes that do not broadcast name the op and both shapes', () => {
    tidy(() => {
      expect(() => ops.add(tensor(new Float32Array(6), [2, 3]), tensor(new Float32Array(4), [4]))).toThrow(ShapeError);
      expect(() => ops.mul(tensor(new Float32Array(6), [2, 3]), tensor(new Float32Array(4), [2, 2]))).toThrow(/mul: shapes \[2, 3\] and \[2, 2\]/);
    });
  });

  test('wrong dtype names the op and the dtypes', () => {
    tidy(() => {
      const labels = tensor([1, 2], [2], 'i32');
      expect(() => ops.exp(labels)).toThrow(/exp: .*dtype i32; expected f32/);
    });
  });
});
