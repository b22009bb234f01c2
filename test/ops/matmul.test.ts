import fc from 'fast-check';
import { afterEach, describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { dimArb, expectClose, randomData, seedArb } from '../util/check.js';
import { checkGradients } from '../util/grad.js';
import { tensor } from '../../src/tensor/create.js';
import { tidy } from '../../src/tensor/scope.js';
import { runtime } from '../../src/gpu/runtime.js';
import {
  type DenseActivation, type MatmulVersion, MATMUL_VERSIONS, dense, denseRef, forceMatmulVersion, matmul,
  matmulKernelFor, matmulProblem, matmulRef, subgroupKernelSupported,
} from '../../src/ops/matmul.js';
import { ArgumentError, ShapeError } from '../../src/errors.js';

useGpu();

afterEach(() => forceMatmulVersion(null));

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
/** f32 sums of K products of values in [-1, 1]: error grows with K. */
const tolFor = (K: number) => ({ rtol: 1e-4, atol: 2e-6 * Math.max(K, 1) + 1e-6 });

const mult4 = fc.integer({ min: 1, max: 12 }).map((j) => 4 * j);

/**
 * Matmul shapes with edge cases: 1×1, K = 1, odd sizes, N not a multiple of 4. With `v3`, N is a multiple
 * of 4, and so is K where B is transposed (the shapes v3 runs itself; K % 8 may still be 4).
 */
function problemArb(v3 = false) {
  return fc.record({
    M: dimArb, N: v3 ? mult4 : dimArb, K: dimArb, K4: mult4, transposeA: fc.boolean(), transposeB: fc.boolean(),
    // 0: both rank 2; 1: both batched; 2: a batched, b broadcast; 3: a broadcast, b batched.
    batchMode: fc.constantFrom(0, 0, 1, 2, 3), batch: fc.integer({ min: 1, max: 3 }),
  })
    .map(({ K4, ...p }) => (v3 && p.transposeB ? { ...p, K: K4 } : p))
    .filter((p) => p.M * p.K * p.batch <= 3000 && p.K * p.N * p.batch <= 3000 && p.M * p.N * p.batch <= 3000);
}

function shapesOf(p: { M: number; N: number; K: number; transposeA: boolean; transposeB: boolean; batchMode: number; batch: number }) {
  const a2 = p.transposeA ? [p.K, p.M] : [p.M, p.K];
  const b2 = p.transposeB ? [p.N, p.K] : [p.K, p.N];
  const aShape = p.batchMode === 1 || p.batchMode === 2 ? [p.batch, ...a2] : a2;
  const bShape = p.batchMode === 1 || p.batchMode === 3 ? [p.batch, ...b2] : b2;
  return { aShape, bShape };
}

async function checkMatmul(version: MatmulVersion | null, p: Parameters<typeof shapesOf>[0], seed: number): Promise<void> {
  const { aShape, bShape } = shapesOf(p);
  const a = randomData(size(aShape), seed);
  const b = randomData(size(bShape), seed + 1);
  const opts = { transposeA: p.transposeA, transposeB: p.transposeB };
  forceMatmulVersion(version);
  const out = tidy(() => matmul(tensor(a, aShape), tensor(b, bShape), opts));
  const ref = matmulRef(a, aShape, b, bShape, opts);
  expect(out.shape).toEqual(ref.shape);
  expectClose(await out.data(), ref.data, tolFor(p.K), `matmul ${version ?? 'auto'} a ${JSON.stringify(aShape)} b ${JSON.stringify(bShape)} ${JSON.stringify(opts)}`);
  out.dispose();
}

describe('matmul: every kernel version matches the f64 reference', () => {
  for (const v of MATMUL_VERSIONS) {
    test(`${v}: random shapes, transposes and batches`, async () => {
      await fc.assert(fc.asyncProperty(problemArb(), seedArb, (p, seed) => checkMatmul(v, p, seed)), { numRuns: 25 });
    });
  }

  test('v3: the shapes it runs itself (N % 4 == 0, and K % 4 == 0 for a transposed B)', async () => {
    await fc.assert(
      fc.asyncProperty(problemArb(true), seedArb, async (p, seed) => {
        const pr = matmulProblem('t', shapesOf(p).aShape, shapesOf(p).bShape, p.transposeA, p.transposeB);
        forceMatmulVersion('v3');
        const kernel = matmulKernelFor(pr);
        expect(kernel.version).toBe(subgroupKernelSupported() ? 'v3' : 'v2');
        if (kernel.version === 'v3') expect(kernel.entry).toBe(p.transposeB ? 'main_bt' : 'main');
        await checkMatmul('v3', p, seed);
      }),
      { numRuns: 25 },
    );
  });

  test('v2: N a multiple of 4 takes the vec4 entry point, and matches', async () => {
    await fc.assert(
      fc.asyncProperty(problemArb(true), seedArb, async (p, seed) => {
        forceMatmulVersion('v2');
        const pr = matmulProblem('t', shapesOf(p).aShape, shapesOf(p).bShape, p.transposeA, p.transposeB);
        expect(matmulKernelFor(pr).entry).toBe(p.transposeB ? 'main' : 'main_vec4');
        await checkMatmul('v2', p, seed);
      }),
      { numRuns: 15 },
    );
  });

  test('sizes across K-chunk, tile and workgroup edges', async () => {
    const cases: Array<[number, number, number]> = [[1, 4, 1], [8, 64, 8], [9, 68, 17], [33, 132, 7], [64, 64, 64], [7, 260, 31], [130, 8, 9], [5, 12, 12], [17, 8, 36]];
    for (const v of MATMUL_VERSIONS) {
      for (const [M, N, K] of cases) {
        for (const [transposeA, transposeB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
          await checkMatmul(v, { M, N, K, transposeA, transposeB, batchMode: 0, batch: 1 }, M * 1000 + N + K);
        }
      }
    }
  });

  test('empty operands: K = 0 gives zeros (plus the bias), M = 0 an empty result', async () => {
    for (const v of MATMUL_VERSIONS) {
      forceMatmulVersion(v);
      const [c, y, e] = tidy(() => [
        matmul(tensor([], [3, 0]), tensor([], [0, 8])),
        dense(tensor([], [2, 0]), tensor([], [0, 4]), tensor([1, 2, 3, 4], [4])),
        matmul(tensor([], [0, 5]), tensor(new Float32Array(10), [5, 2])),
      ]);
      expect(Array.from(await c.data())).toEqual(new Array(24).fill(0));
      expect(Array.from(await y.data())).toEqual([1, 2, 3, 4, 1, 2, 3, 4]);
      expect(e.shape).toEqual([0, 2]);
      for (const t of [c, y, e]) t.dispose();
    }
  });

  test('the automatic choice uses v3 where it can and v2 elsewhere', () => {
    const sub = subgroupKernelSupported();
    expect(matmulKernelFor({ N: 64, K: 9, transposeB: false })).toEqual(sub ? { version: 'v3', entry: 'main' } : { version: 'v2', entry: 'main_vec4' });
    expect(matmulKernelFor({ N: 63, K: 8, transposeB: false })).toEqual({ version: 'v2', entry: 'main' });
    expect(matmulKernelFor({ N: 64, K: 12, transposeB: true })).toEqual(sub ? { version: 'v3', entry: 'main_bt' } : { version: 'v2', entry: 'main' });
    expect(matmulKernelFor({ N: 64, K: 9, transposeB: true })).toEqual({ version: 'v2', entry: 'main' });
    expect(subgroupKernelSupported()).toBe(runtime().gpu.features.subgroups && (runtime().gpu.info.subgroupMinSize ?? 0) >= 8);
  });
});

describe('dense: bias and activation fused into the matmul', () => {
  const denseArb = fc.record({
    B: dimArb, I: dimArb, O: fc.oneof(dimArb, fc.integer({ min: 1, max: 10 }).map((j) => 4 * j)),
    hasBias: fc.boolean(), activation: fc.constantFrom<DenseActivation>('none', 'relu'),
  }).filter((p) => p.B * p.I <= 3000 && p.I * p.O <= 3000 && p.B * p.O <= 3000);

  for (const v of MATMUL_VERSIONS) {
    test(`${v}: with and without bias, with and without relu`, async () => {
      await fc.assert(
        fc.asyncProperty(denseArb, seedArb, async ({ B, I, O, hasBias, activation }, seed) => {
          const x = randomData(B * I, seed);
          const w = randomData(I * O, seed + 1);
          const bias = hasBias ? randomData(O, seed + 2) : null;
          forceMatmulVersion(v);
          const y = tidy(() => dense(tensor(x, [B, I]), tensor(w, [I, O]), bias ? tensor(bias, [O]) : null, activation));
          const ref = denseRef(x, [B, I], w, [I, O], bias, activation);
          expect(y.shape).toEqual([B, O]);
          expectClose(await y.data(), ref.data, tolFor(I), `dense ${v} [${B}, ${I}]·[${I}, ${O}] bias ${hasBias} ${activation}`);
          y.dispose();
        }),
        { numRuns: 15 },
      );
    });
  }
});

describe('gradients', () => {
  const gradArb = fc.record({
    M: fc.integer({ min: 1, max: 7 }), N: fc.constantFrom(1, 3, 4, 8), K: fc.integer({ min: 1, max: 9 }),
    batchMode: fc.constantFrom(0, 1, 2, 3), batch: fc.integer({ min: 1, max: 2 }),
  });

  for (const transposeA of [false, true]) {
    for (const transposeB of [false, true]) {
      test(`matmul transposeA=${transposeA} transposeB=${transposeB}: GPU backward matches finite differences`, async () => {
        await fc.assert(
          fc.asyncProperty(gradArb, seedArb, fc.constantFrom<MatmulVersion | null>(null, 'v1', 'v2'), async (p, seed, v) => {
            const { aShape, bShape } = shapesOf({ ...p, transposeA, transposeB });
            const opts = { transposeA, transposeB };
            forceMatmulVersion(v);
            await checkGradients(
              ([a, b]) => matmul(a!, b!, opts),
              ([a, b]) => matmulRef(a!, aShape, b!, bShape, opts).data,
              [{ data: randomData(size(aShape), seed), shape: aShape }, { data: randomData(size(bShape), seed + 1), shape: bShape }],
            );
          }),
          { numRuns: 10 },
        );
      });
    }
  }

  test('dense with bias and relu, dense without bias: GPU backward matches finite differences', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 9 }), fc.constantFrom(1, 3, 4, 8), fc.boolean(),
        fc.constantFrom<DenseActivation>('none', 'relu'), seedArb,
        async (B, I, O, hasBias, activation, seed) => {
          const x = randomData(B * I, seed);
          const w = randomData(I * O, seed + 1);
          const bias = randomData(O, seed + 2);
          // relu's kink: finite differences straddling 0 would disagree with any derivative.
          const pre = denseRef(x, [B, I], w, [I, O], hasBias ? bias : null, 'none').data;
          fc.pre(pre.every((z) => Math.abs(z) > 1e-3));
          const inputs = [{ data: x, shape: [B, I] }, { data: w, shape: [I, O] }];
          if (hasBias) inputs.push({ data: bias, shape: [O] });
          await checkGradients(
            ([xt, wt, bt]) => dense(xt!, wt!, hasBias ? bt! : null, activation),
            ([xs, ws, bs]) => denseRef(xs!, [B, I], ws!, [I, O], hasBias ? bs! : null, activation).data,
            inputs,
          );
        },
      ),
      { numRuns: 15 },
    );
  });
});

describe('errors', () => {
  test('mismatched inner dimensions name the op and both shapes', () => {
    tidy(() => {
      const a = tensor(new Float32Array(6), [2, 3]);
      const b = tensor(new Float32Array(20), [4, 5]);
      expect(() => matmul(a, b)).toThrow(ShapeError);
      expect(() => matmul(a, b)).toThrow(/matmul: inner dimensions differ \(3 vs 4\): a is \[2, 3\], b is \[4, 5\]/);
      expect(() => matmul(a, b, { transposeB: true })).toThrow(/a is \[2, 3\], b is \[4, 5\] \(transposed\)/);
    });
  });

  test('bad ranks, batch sizes and options are named', () => {
    tidy(() => {
      expect(() => matmul(tensor([1, 2], [2]), tensor([1, 2], [2, 1]))).toThrow(/matmul: a must have rank 2 or 3; a is \[2\]/);
      const a3 = tensor(new Float32Array(12), [2, 2, 3]);
      const b3 = tensor(new Float32Array(18), [3, 3, 2]);
      expect(() => matmul(a3, b3)).toThrow(/matmul: batch sizes differ \(2 vs 3\): a is \[2, 2, 3\], b is \[3, 3, 2\]/);
      expect(() => matmul(a3, tensor(new Float32Array(6), [3, 2]), { transpose: true } as never)).toThrow(ArgumentError);
      expect(() => matmul(tensor([1], [1, 1], 'i32'), tensor([1], [1, 1]))).toThrow(/matmul: .*dtype i32; expected f32/);
    });
  });

  test('dense checks x, w and bias shapes and the activation', () => {
    tidy(() => {
      const x = tensor(new Float32Array(6), [2, 3]);
      const w = tensor(new Float32Array(12), [3, 4]);
      expect(() => dense(x, tensor(new Float32Array(8), [2, 4]))).toThrow(/dense: x has 3 features but w has 2 input rows; x is \[2, 3\], w is \[2, 4\]/);
      expect(() => dense(x, w, tensor(new Float32Array(3), [3]))).toThrow(/dense: bias must have shape \[4\].*bias is \[3\]/);
      expect(() => dense(tensor(new Float32Array(6), [6]), w)).toThrow(/dense: x and w must have rank 2/);
      expect(() => dense(x, w, null, 'gelu' as DenseActivation)).toThrow(/dense: unknown activation 'gelu'/);
    });
  });

  test('forceMatmulVersion rejects unknown versions', () => {
    expect(() => forceMatmulVersion('v9' as MatmulVersion)).toThrow(/unknown version 'v9'/);
  });
});
