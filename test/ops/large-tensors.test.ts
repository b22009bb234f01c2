/**
 * Tensors larger than the device's storage binding limit (maxStorageBufferBindingSize: 128 MiB on lavapipe).
 *
 * Flat kernels run over windows of their tensors (launchFlat), matmul runs over blocks whose operand
 * windows fit (src/ops/matmul-split.ts), and anything else throws a LimitError naming the op, the tensor,
 * its size and the limit. Real 400 MB tensors are slow here, so most tests lower the limit that ops plan
 * with to a few KB (setStorageBindingLimit) and compare the windowed run with the whole one, or with the
 * f64 reference. The last block runs VGG16's fc1 at its real size.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { dimArb, expectClose, randomData, seedArb } from '../util/check.js';
import { tensor } from '../../src/tensor/create.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { tidy } from '../../src/tensor/scope.js';
import { memory } from '../../src/tensor/memory.js';
import { runtime } from '../../src/gpu/runtime.js';
import * as ops from '../../src/ops/index.js';
import { type BinaryOp, type UnaryOp, binaryReference, unaryReference } from '../../src/ops/elementwise.js';
import { type MatmulVersion, denseRef, forceMatmulVersion, matmulRef } from '../../src/ops/matmul.js';
import { adamUpdateRef, sgdUpdateRef } from '../../src/ops/optimizer-updates.js';
import { setStorageBindingLimit, storageBindingLimit, withStorageBindingLimit } from '../../src/ops/kernel.js';
import { Dense } from '../../src/nn/layers/core.js';
import { vgg16 } from '../../src/models/vgg16.js';
import { Adam } from '../../src/train/optimizers.js';
import { ArgumentError, LimitError } from '../../src/errors.js';

useGpu();

afterEach(() => {
  setStorageBindingLimit(null);
  forceMatmulVersion(null);
});

/** 1 KB, 2 KB or 4 KB: windows of 256 to 1024 f32 elements. */
const limitArb = fc.constantFrom(1024, 2048, 4096);
/** Sizes from one element to several windows, odd ones included. */
const sizeArb = fc.oneof(fc.constantFrom(1, 3, 255, 256, 257, 1023, 1025, 4097), fc.integer({ min: 1, max: 5000 }));
const runs = { numRuns: 12 } as const;

/** Runs `f` under `limit` and returns its result and the number of dispatches it made. */
function counted<T>(limit: number, f: () => T): { result: T; dispatches: number } {
  const before = runtime().counters.dispatches;
  const result = withStorageBindingLimit(limit, f);
  return { result, dispatches: runtime().counters.dispatches - before };
}

/** The raw bit patterns of a tensor's elements (f16 as 16-bit words), for exact comparisons. */
async function bits(t: Tensor): Promise<Uint16Array | Uint32Array> {
  const d = await t.data();
  return d instanceof Uint16Array ? d : new Uint32Array(d.buffer, d.byteOffset, d.length);
}

describe('the binding limit setting', () => {
  test('defaults to the device limit, lowers it, and rejects invalid values', () => {
    const device = runtime().gpu.limits.maxStorageBufferBindingSize;
    expect(storageBindingLimit()).toBe(device);
    setStorageBindingLimit(2048);
    expect(storageBindingLimit()).toBe(2048);
    setStorageBindingLimit(null);
    expect(storageBindingLimit()).toBe(device);
    expect(() => setStorageBindingLimit(1000)).toThrow(ArgumentError);
    expect(() => setStorageBindingLimit(512)).toThrow(ArgumentError);
  });
});

describe('flat kernels run in windows and give the whole run\'s values', () => {
  test('random tensors are bit-identical, windowed or whole', async () => {
    const gens: Array<[string, (shape: number[], seed: number) => Tensor]> = [
      ['randomBits', (s, seed) => ops.randomBits(s, seed)],
      ['randomUniform', (s, seed) => ops.randomUniform(s, { seed, low: -2, high: 3 })],
      ['randomNormal', (s, seed) => ops.randomNormal(s, { seed, mean: 1, std: 2 })],
      ['truncatedNormal', (s, seed) => ops.truncatedNormal(s, { seed })],
    ];
    await fc.assert(
      fc.asyncProperty(sizeArb, seedArb, limitArb, fc.constantFrom(...gens), async (n, seed, limit, [name, gen]) => {
        const whole = gen([n], seed);
        const { result: windowed, dispatches } = counted(limit, () => gen([n], seed));
        expect(dispatches, `${name}: one dispatch per window`).toBe(Math.max(1, Math.ceil(n / (limit / 4))));
        expect(await bits(windowed), name).toEqual(await bits(whole));
        whole.dispose();
        windowed.dispose();
      }),
      runs,
    );
  });

  test('dropout masks are bit-identical, windowed or whole', async () => {
    await fc.assert(
      fc.asyncProperty(sizeArb, seedArb, limitArb, async (n, seed, limit) => {
        const x = tensor(randomData(n, seed), [n]);
        const whole = ops.dropoutRaw(x, 0.3, seed);
        const windowed = withStorageBindingLimit(limit, () => ops.dropoutRaw(x, 0.3, seed));
        expect(await bits(windowed)).toEqual(await bits(whole));
        for (const t of [x, whole, windowed]) t.dispose();
      }),
      runs,
    );
  });

  test('unary ops, copy and full match the reference', async () => {
    const cases: Array<[UnaryOp, (x: Tensor) => Tensor, number, number]> = [
      ['exp', ops.exp, 0, 0], ['relu', ops.relu, 0, 0], ['copy', ops.copy, 0, 0],
      ['affine', (x) => ops.affine(x, -1.5, 0.25), -1.5, 0.25], ['clamp', (x) => ops.clamp(x, -0.5, 0.7), -0.5, 0.7],
    ];
    await fc.assert(
      fc.asyncProperty(sizeArb, seedArb, limitArb, fc.constantFrom(...cases), async (n, seed, limit, [op, run, alpha, beta]) => {
        const data = randomData(n, seed, -2, 2);
        const x = tensor(data, [n]);
        const { result: y, dispatches } = counted(limit, () => run(x));
        expect(dispatches).toBe(Math.ceil(n / (limit / 4)));
        expectClose(await y.data(), Array.from(data, (v) => unaryReference[op](v, alpha, beta)), { rtol: 2e-6, atol: 1e-6 }, op);
        const filled = withStorageBindingLimit(limit, () => ops.full([n], alpha + 0.5));
        expect(Array.from(await filled.data())).toEqual(new Array(n).fill(Math.fround(alpha + 0.5)));
        for (const t of [x, y, filled]) t.dispose();
      }),
      runs,
    );
  });

  test('same-shape binary ops match the reference', async () => {
    const cases: Array<[BinaryOp, (a: Tensor, b: Tensor) => Tensor]> = [['add', ops.add], ['mul', ops.mul], ['div', ops.div], ['maximum', ops.maximum]];
    await fc.assert(
      fc.asyncProperty(sizeArb, seedArb, limitArb, fc.constantFrom(...cases), async (n, seed, limit, [op, run]) => {
        const a = randomData(n, seed, 0.5, 2);
        const b = randomData(n, seed + 1, 0.5, 2);
        const out = tidy(() => {
          const [ta, tb] = [tensor(a, [n]), tensor(b, [n])];
          return withStorageBindingLimit(limit, () => run(ta, tb));
        });
        const ref = Array.from(a, (v, i) => binaryReference[op](v, b[i]!));
        expectClose(await out.data(), ref, { rtol: 2e-6, atol: 1e-6 }, op);
        out.dispose();
      }),
      runs,
    );
  });

  test('cast f32 → f16 → f32 is bit-identical, windowed or whole', async () => {
    if (!runtime().gpu.features.f16) return;
    await fc.assert(
      fc.asyncProperty(sizeArb, seedArb, limitArb, async (n, seed, limit) => {
        const x = tensor(randomData(n, seed, -70000, 70000), [n]);
        const [half, back] = tidy(() => {
          const h = ops.castRaw(x, 'f16');
          return [h, ops.castRaw(h, 'f32')];
        });
        const [halfW, backW] = withStorageBindingLimit(limit, () => tidy(() => {
          const h = ops.castRaw(x, 'f16');
          return [h, ops.castRaw(h, 'f32')];
        }));
        expect(await bits(halfW!)).toEqual(await bits(half!));
        expect(await bits(backW!)).toEqual(await bits(back!));
        for (const t of [x, half!, back!, halfW!, backW!]) t.dispose();
      }),
      runs,
    );
  });

  test('SGD and Adam updates match the reference', async () => {
    await fc.assert(
      fc.asyncProperty(sizeArb, seedArb, limitArb, async (n, seed, limit) => {
        const p0 = randomData(n, seed);
        const g = randomData(n, seed + 1);
        const sgdH = { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 };
        const adamH = { lr: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, weightDecay: 0.01, decoupled: true, step: 1 };
        const [p, v, q, m, s, grad] = [tensor(p0, [n]), ops.zeros([n]), tensor(p0, [n]), ops.zeros([n]), ops.zeros([n]), tensor(g, [n])] as Tensor[];
        const { dispatches } = counted(limit, () => {
          ops.sgdUpdate(p!, grad!, v!, sgdH);
          ops.adamUpdate(q!, grad!, m!, s!, adamH);
        });
        expect(dispatches).toBe(2 * Math.ceil(n / (limit / 4)));
        const [refP, refV, refQ, refM, refS] = [Float64Array.from(p0), new Float64Array(n), Float64Array.from(p0), new Float64Array(n), new Float64Array(n)];
        sgdUpdateRef(refP, g, refV, sgdH);
        adamUpdateRef(refQ, g, refM, refS, adamH);
        const tol = { rtol: 1e-5, atol: 1e-6 };
        expectClose(await p!.data(), refP, tol, 'sgd param');
        expectClose(await v!.data(), refV, tol, 'sgd velocity');
        expectClose(await q!.data(), refQ, tol, 'adam param');
        expectClose(await m!.data(), refM, tol, 'adam m');
        expectClose(await s!.data(), refS, tol, 'adam v');
        for (const t of [p, v, q, m, s, grad]) t!.dispose();
      }),
      runs,
    );
  });
});

describe('ops that cannot split throw a LimitError naming the op, the tensor, its size and the limit', () => {
  test('broadcasting binary ops and reductions', () => {
    const x = tensor(randomData(2000, 1), [500, 4]);
    x.name = 'big';
    const row = tensor(randomData(4, 2), [4]);
    setStorageBindingLimit(4096);
    expect(() => ops.add(x, row)).toThrow(LimitError);
    expect(() => ops.add(x, row)).toThrow(/^add: tensor 'big' \[500, 4\] f32 takes 8000 bytes \(0\.0 MiB\), over the storage binding limit of 4096 bytes/);
    expect(() => ops.sum(x)).toThrow(/tensor 'big' \[500, 4\] f32 takes 8000 bytes.*4096 bytes/);
    setStorageBindingLimit(null);
    x.dispose();
    row.dispose();
  });
});

// ---------------------------------------------------------------------------------------------------------
// Matmul in blocks

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const tolFor = (K: number) => ({ rtol: 1e-4, atol: 2e-6 * Math.max(K, 1) + 1e-6 });

/** The transpose of a row-major [rows, cols] matrix. */
function transpose(x: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = x[r * cols + c]!;
  return out;
}

const versionArb = fc.constantFrom<MatmulVersion | null>(null, 'v1', 'v2', 'v3');

describe('matmul splits along M, N and K when an operand exceeds the limit', () => {
  test('forward, any transposes and batch modes, every kernel version', async () => {
    // Operands up to about 10 times the limit: enough for every split, few enough blocks to stay fast.
    const dim = fc.oneof(dimArb, fc.integer({ min: 30, max: 100 }));
    const mult4 = fc.integer({ min: 1, max: 25 }).map((j) => 4 * j);
    await fc.assert(
      fc.asyncProperty(
        fc.record({ M: dim, N: fc.oneof(dim, mult4), K: fc.oneof(dim, mult4), tA: fc.boolean(), tB: fc.boolean(), batchMode: fc.constantFrom(0, 0, 1, 2, 3), batch: fc.integer({ min: 1, max: 3 }) }),
        versionArb, fc.constantFrom(2048, 4096), seedArb,
        async (p, version, limit, seed) => {
          const a2 = p.tA ? [p.K, p.M] : [p.M, p.K];
          const b2 = p.tB ? [p.N, p.K] : [p.K, p.N];
          const aShape = p.batchMode === 1 || p.batchMode === 2 ? [p.batch, ...a2] : a2;
          const bShape = p.batchMode === 1 || p.batchMode === 3 ? [p.batch, ...b2] : b2;
          const a = randomData(size(aShape), seed);
          const b = randomData(size(bShape), seed + 1);
          const opts = { transposeA: p.tA, transposeB: p.tB };
          forceMatmulVersion(version);
          const { result: out, dispatches } = counted(limit, () => tidy(() => ops.matmul(tensor(a, aShape), tensor(b, bShape), opts)));
          const ref = matmulRef(a, aShape, b, bShape, opts);
          const what = `${version ?? 'auto'} a ${JSON.stringify(aShape)} b ${JSON.stringify(bShape)} ${JSON.stringify(opts)} limit ${limit}`;
          const over = [size(aShape), size(bShape), ref.data.length].some((n) => n * 4 > limit);
          expect(dispatches > 1, `${what}: split`).toBe(over);
          expect(out.shape).toEqual(ref.shape);
          expectClose(await out.data(), ref.data, tolFor(p.K), what);
          out.dispose();
        },
      ),
      { numRuns: 40 },
    );
  });

  test('dense with bias and relu: each applied once, after the last block of K', async () => {
    for (const version of ['v1', 'v2', 'v3', null] as const) {
      forceMatmulVersion(version);
      const [B, I, O] = [3, 300, 40];
      const x = randomData(B * I, 1);
      const w = randomData(I * O, 2, -0.2, 0.2);
      const bias = randomData(O, 3, -0.5, 0.5);
      const { result: y, dispatches } = counted(4096, () => tidy(() => ops.dense(tensor(x, [B, I]), tensor(w, [I, O]), tensor(bias, [O]), 'relu')));
      expect(dispatches, `${version}: blocks of K`).toBeGreaterThan(1);
      const ref = denseRef(x, [B, I], w, [I, O], bias, 'relu');
      expect(ref.data.some((v) => v === 0) && ref.data.some((v) => v > 0)).toBe(true);
      expectClose(await y.data(), ref.data, tolFor(I), `dense ${version ?? 'auto'}`);
      y.dispose();
    }
  });

  test('backward of dense (bias, relu) and of matmul with transposes, in blocks', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({ M: fc.integer({ min: 1, max: 6 }), N: fc.oneof(dimArb, fc.integer({ min: 1, max: 20 }).map((j) => 4 * j)), K: fc.integer({ min: 50, max: 300 }) }),
        fc.boolean(), fc.boolean(), versionArb, seedArb,
        async ({ M, N, K }, tA, tB, version, seed) => {
          forceMatmulVersion(version);
          const limit = 2048;
          // C = op(A)·op(B) with op(A) [M, K] and op(B) [K, N], then L = Σ C·G for fixed G, so dC = G.
          const aShape = tA ? [K, M] : [M, K];
          const bShape = tB ? [N, K] : [K, N];
          const a = randomData(M * K, seed), b = randomData(K * N, seed + 1), g = randomData(M * N, seed + 2);
          const [ta, tb] = [tensor(a, aShape).keep(), tensor(b, bShape).keep()];
          ta.requiresGrad = tb.requiresGrad = true;
          withStorageBindingLimit(limit, () => tidy(() => {
            const c = ops.matmul(ta, tb, { transposeA: tA, transposeB: tB });
            // The loss is reduced outside the limit's reach: M·N is small.
            setStorageBindingLimit(null);
            ops.backward(ops.sum(ops.mul(c, tensor(g, [M, N]))));
          }));
          // d op(A) = G·op(B)ᵀ and d op(B) = op(A)ᵀ·G, transposed back where the operand is stored transposed.
          const opA = tA ? transpose(a, K, M) : a;
          const opB = tB ? transpose(b, N, K) : b;
          const dOpA = matmulRef(g, [M, N], opB, [K, N], { transposeB: true }).data;
          const dOpB = matmulRef(opA, [M, K], g, [M, N], { transposeA: true }).data;
          const what = `${version ?? 'auto'} M ${M} N ${N} K ${K} tA ${tA} tB ${tB}`;
          expectClose(await ta.grad!.data(), tA ? transpose(dOpA, M, K) : dOpA, tolFor(N), `dA ${what}`);
          expectClose(await tb.grad!.data(), tB ? transpose(dOpB, K, N) : dOpB, tolFor(M), `dB ${what}`);
          ta.dispose();
          tb.dispose();
        },
      ),
      { numRuns: 16 },
    );

    // dense: y = relu(x·w + bias); dz = G where y > 0; dx = dz·wᵀ, dw = xᵀ·dz (an output over the limit), dbias = Σ dz.
    const [B, I, O] = [3, 300, 40];
    const x = randomData(B * I, 4), w = randomData(I * O, 5, -0.2, 0.2), bias = randomData(O, 6, -0.5, 0.5), g = randomData(B * O, 7);
    const [tx, tw, tbias] = [tensor(x, [B, I]).keep(), tensor(w, [I, O]).keep(), tensor(bias, [O]).keep()];
    for (const t of [tx, tw, tbias]) t.requiresGrad = true;
    const before = runtime().counters.dispatches;
    withStorageBindingLimit(4096, () => tidy(() => ops.backward(ops.sum(ops.mul(ops.dense(tx, tw, tbias, 'relu'), tensor(g, [B, O]))))));
    expect(runtime().counters.dispatches - before).toBeGreaterThan(12);
    const y = denseRef(x, [B, I], w, [I, O], bias, 'relu').data;
    const dz = Float64Array.from(g, (v, i) => (y[i]! > 0 ? v : 0));
    const dbias = new Float64Array(O);
    dz.forEach((v, i) => (dbias[i % O]! += v));
    expectClose(await tx.grad!.data(), matmulRef(dz, [B, O], w, [I, O], { transposeB: true }).data, tolFor(O), 'dense dx');
    expectClose(await tw.grad!.data(), matmulRef(x, [B, I], dz, [B, O], { transposeA: true }).data, tolFor(B), 'dense dw');
    expectClose(await tbias.grad!.data(), dbias, tolFor(B), 'dense dbias');
    for (const t of [tx, tw, tbias]) t.dispose();
  });
});

// ---------------------------------------------------------------------------------------------------------
// Real size

describe('VGG16 with its top, at the real binding limit', () => {
  test('builds with 138,357,544 parameters; fc1 (392 MiB) runs forward and matches the reference', async () => {
    const m = vgg16({ includeTop: true });
    expect(m.countParams()).toBe(138_357_544);
    const fc1 = m.getLayer('fc1');
    const kernel = fc1.getWeight('kernel').value;
    expect(kernel.byteLength).toBeGreaterThan(runtime().gpu.limits.maxStorageBufferBindingSize);
    const x = randomData(2 * 25088, 8, 0, 1);
    const y = tidy(() => fc1.call(tensor(x, [2, 25088])));
    expect(y.shape).toEqual([2, 4096]);
    const got = await y.data();
    // The reference for a few output columns (the bias is zero). Rather than read back all 392 MiB of the
    // kernel, copy out groups of 4 columns, row by row (buffer copies have no binding limit).
    for (const col0 of [0, 2044, 4092]) {
      const cols = tensor(new Float32Array(25088 * 4), [25088, 4]);
      for (let k = 0; k < 25088; k++) runtime().copy(kernel.buffer, (k * 4096 + col0) * 4, cols.buffer, k * 16, 16);
      const w = await cols.data();
      cols.dispose();
      for (let r = 0; r < 2; r++) {
        for (let j = 0; j < 4; j++) {
          let s = 0;
          for (let k = 0; k < 25088; k++) s += x[r * 25088 + k]! * w[k * 4 + j]!;
          expectClose([got[r * 4096 + col0 + j]!], [Math.max(s, 0)], { rtol: 1e-4, atol: 1e-5 }, `fc1 output [${r}, ${col0 + j}]`);
        }
      }
    }
    y.dispose();
    m.dispose();
  });

  test('one training step of Dense(4096) on a [2, 25088] input through Adam', async () => {
    const before = memory().tensors;
    const [B, I, O] = [2, 25088, 4096];
    const layer = new Dense({ units: O, activation: 'relu', name: 'big_dense' });
    const xData = randomData(B * I, 9);
    const x = tensor(xData, [B, I]).keep();
    x.requiresGrad = true;
    const y0 = tidy(() => layer.call(x)); // builds the 392 MiB kernel
    const y = await y0.data();
    y0.dispose();
    const kernel = layer.getWeight('kernel').value;
    expect(kernel.byteLength).toBeGreaterThan(runtime().gpu.limits.maxStorageBufferBindingSize);
    const row = async (k: number) => new Float32Array(await runtime().read(kernel.buffer, k * O * 4, O * 4));
    const rows = [0, 8191, 12345, 25087];
    const w0 = await Promise.all(rows.map(row));

    const lr = 1e-3;
    const opt = new Adam(layer.trainableParameters(), { lr });
    tidy(() => {
      opt.zeroGrad();
      ops.backward(ops.mean(ops.square(layer.call(x, { training: true }))));
      opt.step();
    });
    const w1 = await Promise.all(rows.map(row));
    const dx = await x.grad!.data();

    // L = mean(y²) over B·O outputs, so dz = 2y/(B·O) where y > 0 (relu). Then dW[k, :] = Σ_b x[b, k]·dz[b, :]
    // (xᵀ·dz, an output over the binding limit), dx[b, k] = dz[b, :]·W[k, :] (dz·Wᵀ, reading W transposed),
    // and Adam's first step moves W by −lr·g/(|g| + ε), as m̂ = g and v̂ = g².
    const dz = Float64Array.from(y, (v) => (v > 0 ? (2 * v) / (B * O) : 0));
    rows.forEach((k, i) => {
      const g = Float64Array.from({ length: O }, (_, j) => xData[k]! * dz[j]! + xData[I + k]! * dz[O + j]!);
      const moved = w1[i]!.map((v, j) => v - w0[i]![j]!);
      expectClose(moved, Array.from(g, (v) => (-lr * v) / (Math.abs(v) + 1e-7)), { rtol: 1e-3, atol: 2e-8 }, `W row ${k} after the step`);
      expect(moved.filter((d) => d !== 0).length, `row ${k}: weights moved`).toBeGreaterThan(O / 4);
      for (let b = 0; b < B; b++) {
        let s = 0;
        for (let j = 0; j < O; j++) s += dz[b * O + j]! * w0[i]![j]!;
        expectClose([dx[b * I + k]!], [s], { rtol: 1e-3, atol: 1e-9 }, `dx[${b}, ${k}]`);
      }
    });
    opt.dispose();
    x.dispose();
    layer.dispose();
    expect(memory().tensors).toBe(before);
  });
});
