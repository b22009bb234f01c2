import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { expectClose, gpuRuns, randomData, seedArb } from '../util/check.js';
import { tensor } from '../../src/tensor/create.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { tidy } from '../../src/tensor/scope.js';
import { memory } from '../../src/tensor/memory.js';
import { runtime } from '../../src/gpu/runtime.js';
import * as ops from '../../src/ops/index.js';
import {
  type AdamHyper, type SgdHyper, adamUpdate, adamUpdateRef, sgdUpdate, sgdUpdateRef,
} from '../../src/ops/optimizer-updates.js';
import { Adam, AdamW, SGD } from '../../src/train/optimizers.js';

type AnyOptimizer = SGD | Adam | AdamW;
import { ArgumentError, DisposedError, ShapeError } from '../../src/errors.js';

useGpu();

/** A trainable leaf tensor that survives tidy scopes. */
function param(data: ArrayLike<number>, shape: number[]): Tensor {
  const t = tensor(data, shape).keep();
  t.requiresGrad = true;
  return t;
}

const sizeArb = fc.oneof(fc.constantFrom(1, 2, 3, 5, 7, 63, 64, 65, 127), fc.integer({ min: 1, max: 3000 }));
/** f32-representable hyper-parameters, so the f64 reference sees exactly what the kernel sees. */
const f32In = (min: number, max: number) => fc.double({ min, max, noNaN: true }).map(Math.fround);

// ---------------------------------------------------------------------------------------------------------
// 1. Each update kernel against its TypeScript reference, over several steps on random data.

describe('update kernels match their references over several steps', () => {
  const sgdHyperArb = fc.record({
    lr: f32In(1e-3, 0.5),
    momentum: fc.oneof(fc.constant(0), f32In(0.1, 0.99)),
    nesterov: fc.boolean(),
    weightDecay: fc.oneof(fc.constant(0), f32In(1e-4, 0.1)),
  }).map((h): SgdHyper => ({ ...h, nesterov: h.nesterov && h.momentum > 0 }));

  test('sgdUpdate (plain, momentum, Nesterov, weight decay)', async () => {
    await fc.assert(
      fc.asyncProperty(sizeArb, sgdHyperArb, seedArb, fc.integer({ min: 1, max: 4 }), async (n, h, seed, steps) => {
        const p0 = randomData(n, seed);
        const refP = Float64Array.from(p0);
        const refV = h.momentum > 0 ? new Float64Array(n) : null;
        const p = tensor(p0, [n]).keep();
        const v = h.momentum > 0 ? ops.zeros([n]).keep() : null;
        for (let s = 0; s < steps; s++) {
          const g = randomData(n, seed + 100 + s);
          tidy(() => sgdUpdate(p, tensor(g, [n]), v, h));
          sgdUpdateRef(refP, g, refV, h);
        }
        expectClose(await p.data(), refP, { rtol: 1e-5, atol: 1e-6 }, 'param');
        if (v) expectClose(await v.data(), refV!, { rtol: 1e-5, atol: 1e-6 }, 'velocity');
        p.dispose();
        v?.dispose();
      }),
      gpuRuns,
    );
  });

  const adamHyperArb = fc.record({
    lr: f32In(1e-3, 0.3),
    beta1: f32In(0, 0.95),
    beta2: f32In(0.9, 0.9999),
    epsilon: fc.constantFrom(1e-7, 1e-8, 1e-3).map(Math.fround),
    weightDecay: fc.oneof(fc.constant(0), f32In(1e-4, 0.1)),
    decoupled: fc.boolean(),
  });

  test('adamUpdate (Adam with L2 decay, AdamW with decoupled decay)', async () => {
    await fc.assert(
      fc.asyncProperty(sizeArb, adamHyperArb, seedArb, fc.integer({ min: 1, max: 4 }), async (n, h, seed, steps) => {
        const p0 = randomData(n, seed);
        const ref = { p: Float64Array.from(p0), m: new Float64Array(n), v: new Float64Array(n) };
        const p = tensor(p0, [n]).keep();
        const m = ops.zeros([n]).keep();
        const v = ops.zeros([n]).keep();
        for (let s = 1; s <= steps; s++) {
          const g = randomData(n, seed + 100 + s);
          const hs: AdamHyper = { ...h, step: s };
          tidy(() => adamUpdate(p, tensor(g, [n]), m, v, hs));
          adamUpdateRef(ref.p, g, ref.m, ref.v, hs);
        }
        expectClose(await p.data(), ref.p, { rtol: 1e-5, atol: 1e-6 }, 'param');
        expectClose(await m.data(), ref.m, { rtol: 1e-5, atol: 1e-6 }, 'm');
        expectClose(await v.data(), ref.v, { rtol: 1e-5, atol: 1e-7 }, 'v');
        for (const t of [p, m, v]) t.dispose();
      }),
      gpuRuns,
    );
  });

  test('shape and argument errors name the op and the shapes', () => {
    tidy(() => {
      const p = tensor(new Float32Array(6), [2, 3]);
      const h = { lr: 0.1, momentum: 0, nesterov: false, weightDecay: 0 };
      expect(() => sgdUpdate(p, tensor(new Float32Array(6), [3, 2]), null, h)).toThrow(/sgdUpdate: the gradient has shape \[3, 2\]; expected the parameter's shape \[2, 3\]/);
      expect(() => sgdUpdate(p, tensor(new Float32Array(6), [2, 3]), null, { ...h, momentum: 0.9 })).toThrow(ArgumentError);
      const z = tensor(new Float32Array(6), [2, 3]);
      expect(() => adamUpdate(p, z, z, tensor(new Float32Array(5), [5]), { ...h, beta1: 0.9, beta2: 0.99, epsilon: 1e-7, decoupled: false, step: 1 }))
        .toThrow(ShapeError);
      expect(() => adamUpdate(p, z, z, z, { ...h, beta1: 0.9, beta2: 0.99, epsilon: 1e-7, decoupled: false, step: 0 })).toThrow(/step must be an integer ≥ 1; got 0/);
    });
  });
});

// ---------------------------------------------------------------------------------------------------------
// 2. The optimizer classes against a hand-written CPU simulation (PyTorch's algorithms, in f64) of several
//    steps on the quadratic loss L = ½ Σ a·(p − c)², whose gradient is a·(p − c).

interface Quadratic {
  a: Float32Array;
  c: Float32Array;
  shape: number[];
}

function quadratic(shape: number[], seed: number): Quadratic {
  const n = shape.reduce((x, y) => x * y, 1);
  return { a: randomData(n, seed, 0.5, 2), c: randomData(n, seed + 1, -1, 1), shape };
}

/**
 * A start 1 to 2 away from the optimum in every coordinate. Near the optimum, a·(p − c) in f32 loses its
 * relative precision to cancellation, and Adam, being scale invariant, would pass that on to its update;
 * several steps of the tests here do not get that close.
 */
function startFar(q: Quadratic, seed: number): Float32Array {
  const offset = randomData(q.c.length, seed, -1, 1);
  return q.c.map((c, i) => c + Math.sign(offset[i]!) + offset[i]!);
}

/** One GPU training step on the sum of the quadratics of `params`. */
function gpuStep(opt: AnyOptimizer, params: Tensor[], qs: Quadratic[]): void {
  tidy(() => {
    opt.zeroGrad();
    const losses = params.map((p, i) => ops.sum(ops.mul(tensor(qs[i]!.a, qs[i]!.shape), ops.square(ops.sub(p, tensor(qs[i]!.c, qs[i]!.shape))))));
    ops.backward(ops.mulScalar(losses.reduce((x, y) => ops.add(x, y)), 0.5));
    opt.step();
  });
}

const quadGrad = (p: Float64Array, q: Quadratic) => p.map((v, i) => q.a[i]! * (v - q.c[i]!));

/** PyTorch's SGD.step for one parameter (dampening 0): the first step's buffer is a clone of d_p. */
function simSGD(p: Float64Array, g0: Float64Array, st: { buf?: Float64Array }, o: { lr: number; momentum: number; nesterov: boolean; weightDecay: number }): void {
  const dp = g0.map((g, i) => g + o.weightDecay * p[i]!);
  let step: Float64Array = dp;
  if (o.momentum !== 0) {
    st.buf = st.buf ? st.buf.map((b, i) => o.momentum * b + dp[i]!) : Float64Array.from(dp);
    step = o.nesterov ? dp.map((d, i) => d + o.momentum * st.buf![i]!) : st.buf;
  }
  for (let i = 0; i < p.length; i++) p[i] = p[i]! - o.lr * step[i]!;
}

/** PyTorch's Adam / AdamW step, written as PyTorch writes it (step_size and denom). */
function simAdam(p: Float64Array, g0: Float64Array, st: { t: number; m: Float64Array; v: Float64Array }, o: { lr: number; beta1: number; beta2: number; epsilon: number; weightDecay: number; adamw: boolean }): void {
  st.t++;
  if (o.adamw) for (let i = 0; i < p.length; i++) p[i] = p[i]! * (1 - o.lr * o.weightDecay);
  const g = o.adamw ? g0 : g0.map((x, i) => x + o.weightDecay * p[i]!);
  const bc1 = 1 - o.beta1 ** st.t;
  const bc2 = 1 - o.beta2 ** st.t;
  const stepSize = o.lr / bc1;
  for (let i = 0; i < p.length; i++) {
    st.m[i] = st.m[i]! * o.beta1 + (1 - o.beta1) * g[i]!;
    st.v[i] = st.v[i]! * o.beta2 + (1 - o.beta2) * g[i]! * g[i]!;
    const denom = Math.sqrt(st.v[i]!) / Math.sqrt(bc2) + o.epsilon;
    p[i] = p[i]! - (stepSize * st.m[i]!) / denom;
  }
}

type Case = {
  name: string;
  make: (groups: Array<{ params: Tensor[]; lr?: number }>) => AnyOptimizer;
  /** A CPU stepper for one parameter, closed over its own state. */
  sim: () => (p: Float64Array, g: Float64Array, lr: number) => void;
};

const sgdCase = (name: string, o: { momentum: number; nesterov: boolean; weightDecay: number }): Case => ({
  name,
  make: (groups) => new SGD(groups, { lr: 0.05, ...o }),
  sim: () => {
    const st = {};
    return (p, g, lr) => simSGD(p, g, st, { lr, ...o });
  },
});

const adamCase = (name: string, adamw: boolean, o: { beta1: number; beta2: number; epsilon: number; weightDecay: number }): Case => ({
  name,
  make: (groups) => (adamw ? new AdamW(groups, { lr: 0.05, ...o }) : new Adam(groups, { lr: 0.05, ...o })),
  sim: () => {
    let st: { t: number; m: Float64Array; v: Float64Array } | null = null;
    return (p, g, lr) => {
      st ??= { t: 0, m: new Float64Array(p.length), v: new Float64Array(p.length) };
      simAdam(p, g, st, { lr, adamw, ...o });
    };
  },
});

const cases: Case[] = [
  sgdCase('SGD', { momentum: 0, nesterov: false, weightDecay: 0 }),
  sgdCase('SGD with momentum', { momentum: 0.9, nesterov: false, weightDecay: 0 }),
  sgdCase('SGD with Nesterov momentum and weight decay', { momentum: 0.8, nesterov: true, weightDecay: 0.01 }),
  adamCase('Adam', false, { beta1: 0.9, beta2: 0.999, epsilon: 1e-7, weightDecay: 0 }),
  adamCase('Adam with L2 weight decay', false, { beta1: 0.8, beta2: 0.99, epsilon: 1e-8, weightDecay: 0.05 }),
  adamCase('AdamW', true, { beta1: 0.9, beta2: 0.999, epsilon: 1e-7, weightDecay: 0.1 }),
];

describe('optimizers match a CPU simulation on a quadratic loss', () => {
  for (const c of cases) {
    test(`${c.name}: two param groups with their own lr, lr changed between steps`, async () => {
      const qs = [quadratic([3, 5], 11), quadratic([7], 12)];
      const init = [startFar(qs[0]!, 21), startFar(qs[1]!, 22)];
      const params = init.map((d, i) => param(d, qs[i]!.shape));
      const frozen = param([1, 2, 3], [3]); // in a group but never given a gradient
      const opt = c.make([{ params: [params[0]!, frozen] }, { params: [params[1]!], lr: 0.02 }]);
      const cpu = init.map((d) => Float64Array.from(d));
      const sims = cpu.map(() => c.sim());
      let pipelines = 0;
      // The base rate changes every step; the second group keeps its ratio 0.02 / 0.05 to it.
      const schedule = [0.05, 0.05, 0.1, 0.03, 0.07, 0.01, 0.05, 0.2];
      for (const [s, lr] of schedule.entries()) {
        opt.learningRate = lr;
        expect(opt.paramGroups[1]!.lr).toBeCloseTo(lr * 0.4, 12);
        gpuStep(opt, params, qs);
        sims.forEach((sim, i) => sim(cpu[i]!, quadGrad(cpu[i]!, qs[i]!), opt.paramGroups[i]!.lr));
        if (s === 0) pipelines = runtime().pipelines.size;
        else expect(runtime().pipelines.size, 'no new pipeline when lr changes').toBe(pipelines);
        for (let i = 0; i < params.length; i++) expectClose(await params[i]!.data(), cpu[i]!, { rtol: 1e-5, atol: 1e-6 }, `${c.name} param ${i} after step ${s + 1}`);
      }
      expect(await frozen.data()).toEqual(Float32Array.from([1, 2, 3]));
      expect(opt.stateOf(frozen)).toBeUndefined();
      expect(opt.stateOf(params[0]!)?.step).toBe(schedule.length);
      opt.dispose();
      for (const p of [...params, frozen]) p.dispose();
    });
  }

  test('a group lr set absolutely, then the base rate rescales it proportionally', async () => {
    const q = quadratic([4], 5);
    const a = param(randomData(4, 6), [4]);
    const b = param(randomData(4, 7), [4]);
    const opt = new SGD([{ params: [a] }, { params: [b], lr: 0.01 }], { lr: 0.1 });
    opt.paramGroups[0]!.lr = 0.3;
    expect(opt.paramGroups.map((g) => g.lr)).toEqual([0.3, 0.01]);
    opt.learningRate = 0.05; // half the base: every group halves
    expect(opt.paramGroups[0]!.lr).toBeCloseTo(0.15, 15);
    expect(opt.paramGroups[1]!.lr).toBeCloseTo(0.005, 15);
    const pa = Float64Array.from(await a.data());
    const pb = Float64Array.from(await b.data());
    gpuStep(opt, [a, b], [q, q]);
    simSGD(pa, quadGrad(pa, q), {}, { lr: 0.15, momentum: 0, nesterov: false, weightDecay: 0 });
    simSGD(pb, quadGrad(pb, q), {}, { lr: 0.005, momentum: 0, nesterov: false, weightDecay: 0 });
    expectClose(await a.data(), pa, { rtol: 1e-5, atol: 1e-6 }, 'group 0');
    expectClose(await b.data(), pb, { rtol: 1e-5, atol: 1e-6 }, 'group 1');
    opt.dispose();
    a.dispose();
    b.dispose();
  });
});

// ---------------------------------------------------------------------------------------------------------
// 3. A tiny problem converges: linear regression y = X·w + b, with X·w as sum(mul(X, w), axis 1).

function linearRegression(seed: number) {
  const n = 64, d = 5;
  const X = randomData(n * d, seed, -1, 1);
  const wTrue = randomData(d, seed + 1, -2, 2);
  const bTrue = 0.7;
  const y = Float32Array.from({ length: n }, (_, i) => wTrue.reduce((s, w, j) => s + w * X[i * d + j]!, bTrue));
  const Xt = tensor(X, [n, d]).keep();
  const yt = tensor(y, [n]).keep();
  const w = param(new Float32Array(d), [1, d]);
  const b = param([0], [1]);
  const loss = () => ops.mean(ops.square(ops.sub(ops.add(ops.sum(ops.mul(Xt, w), 1), b), yt)));
  const dispose = () => [Xt, yt, w, b].forEach((t) => t.dispose());
  return { w, b, wTrue, bTrue, loss, dispose };
}

function trainStep(opt: { zeroGrad(): void; step(): void }, loss: () => Tensor): void {
  opt.zeroGrad();
  ops.backward(loss());
  opt.step();
}

describe('a tiny problem converges', () => {
  const makers: Array<[string, (ps: Tensor[]) => SGD | Adam, number]> = [
    ['SGD with momentum', (ps) => new SGD(ps, { lr: 0.05, momentum: 0.9 }), 150],
    ['Adam', (ps) => new Adam(ps, { lr: 0.05 }), 300],
  ];
  for (const [name, make, steps] of makers) {
    test(`${name}: linear regression loss < 1e-5 after ${steps} steps`, async () => {
      const lr = linearRegression(3);
      const opt = make([lr.w, lr.b]);
      const first = tidy(() => lr.loss());
      const start = await first.item();
      first.dispose();
      for (let s = 0; s < steps; s++) tidy(() => trainStep(opt, lr.loss));
      const last = tidy(() => lr.loss());
      const end = await last.item();
      last.dispose();
      expect(start).toBeGreaterThan(0.5);
      expect(end).toBeLessThan(1e-5);
      expectClose(await lr.w.data(), lr.wTrue, { atol: 1e-2, rtol: 0 }, 'w');
      expect(Math.abs((await lr.b.item()) - lr.bTrue)).toBeLessThan(1e-2);
      opt.dispose();
      lr.dispose();
    });
  }
});

// ---------------------------------------------------------------------------------------------------------
// 4. Memory stays flat over many steps, and dispose() frees the state.

test('memory stays flat over 300 steps and dispose() returns it', async () => {
  const before = memory();
  const lr = linearRegression(9);
  const opt = new AdamW([lr.w, lr.b], { lr: 0.01 });
  tidy(() => trainStep(opt, lr.loss)); // the first step allocates the state
  await runtime().sync();
  const warm = memory();
  for (let s = 0; s < 300; s++) {
    tidy(() => trainStep(opt, lr.loss));
    if (s % 50 === 0) opt.learningRate = 0.01 / (1 + s / 50);
  }
  await runtime().sync();
  const after = memory();
  expect(after.tensors).toBe(warm.tensors);
  expect(after.bytesInUse).toBe(warm.bytesInUse);
  opt.zeroGrad();
  opt.dispose();
  lr.dispose();
  const end = memory();
  expect(end.tensors).toBe(before.tensors);
  expect(end.bytesInUse).toBe(before.bytesInUse);
});

// ---------------------------------------------------------------------------------------------------------
// 5. State: zeroGrad, skipping, dispose, checkpoints.

describe('state and lifecycle', () => {
  test('zeroGrad disposes the grads; step skips parameters without a grad', async () => {
    const a = param([1, 2], [2]);
    const b = param([3, 4], [2]);
    const opt = new SGD([a, b], { lr: 0.5, momentum: 0.5 });
    tidy(() => {
      ops.backward(ops.sum(ops.square(a)));
      opt.step();
    });
    expect(Array.from(await a.data())).toEqual([0, 0]); // a − 0.5 · 2a
    expect(Array.from(await b.data())).toEqual([3, 4]);
    expect(opt.stateOf(b)).toBeUndefined();
    const grad = a.grad!;
    opt.zeroGrad();
    expect(a.grad).toBeNull();
    expect(grad.isDisposed).toBe(true);
    opt.dispose();
    expect(() => opt.step()).toThrow(DisposedError);
    a.dispose();
    b.dispose();
  });

  test('stateDict / loadStateDict resume training exactly', async () => {
    const q = quadratic([2, 3], 31);
    const init = startFar(q, 32);
    const p1 = param(init, [2, 3]);
    const opt1 = new Adam([{ params: [p1], lr: 0.02, beta1: 0.8 }], { lr: 0.05 });
    for (let s = 0; s < 3; s++) gpuStep(opt1, [p1], [q]);
    const dict = await opt1.stateDict();
    expect(dict.state[0]!.step).toBe(3);
    expect(dict.groups[0]).toMatchObject({ lr: 0.02, params: [0], hyper: { beta1: 0.8 } });

    const p2 = param(await p1.data(), [2, 3]);
    const opt2 = new Adam([p2], { lr: 1 });
    opt2.loadStateDict(dict);
    expect(opt2.paramGroups[0]!.lr).toBe(0.02);
    expect(opt2.paramGroups[0]!.hyper.beta1).toBe(0.8);
    for (let s = 0; s < 3; s++) {
      gpuStep(opt1, [p1], [q]);
      gpuStep(opt2, [p2], [q]);
    }
    expect(Array.from(await p2.data())).toEqual(Array.from(await p1.data()));
    expect(opt2.stateOf(p2)!.step).toBe(6);

    const sgd = new SGD([p2], { lr: 0.1 });
    expect(() => sgd.loadStateDict(dict)).toThrow(/SGD.loadStateDict: the state dict is from a Adam optimizer/);
    const bad = { ...dict, state: [{ ...dict.state[0]!, buffers: { ...dict.state[0]!.buffers, m: { shape: [6], data: new Float32Array(6) } } }] };
    expect(() => opt2.loadStateDict(bad)).toThrow(ShapeError);
    for (const o of [opt1, opt2, sgd]) o.dispose();
    p1.dispose();
    p2.dispose();
  });
});

// ---------------------------------------------------------------------------------------------------------
// 6. Argument validation: each error names the argument and the value.

describe('argument validation', () => {
  test('learning rates, momentum, betas, epsilon, weight decay', () => {
    const p = param([1], [1]);
    for (const lr of [0, -1, NaN, Infinity]) expect(() => new SGD([p], { lr })).toThrow(new RegExp(`SGD: lr must be a finite number > 0; got ${lr}`));
    expect(() => new SGD([p], { lr: 0.1, momentum: 1 })).toThrow(/SGD: options: momentum must be in \[0, 1\); got 1\./);
    expect(() => new SGD([p], { lr: 0.1, momentum: -0.1 })).toThrow(/momentum must be in \[0, 1\); got -0.1/);
    expect(() => new SGD([p], { lr: 0.1, nesterov: true })).toThrow(/nesterov needs momentum > 0; got momentum 0/);
    expect(() => new SGD([p], { lr: 0.1, weightDecay: -1 })).toThrow(/weightDecay must be a finite number ≥ 0; got -1/);
    expect(() => new Adam([p], { lr: 0.1, beta1: 1 })).toThrow(/Adam: options: beta1 must be in \[0, 1\); got 1\./);
    expect(() => new AdamW([p], { lr: 0.1, beta2: 1.5 })).toThrow(/AdamW: options: beta2 must be in \[0, 1\); got 1.5/);
    expect(() => new Adam([p], { lr: 0.1, epsilon: 0 })).toThrow(/epsilon must be a finite number > 0; got 0/);
    expect(() => new Adam([{ params: [p], beta1: -0.5 }], { lr: 0.1 })).toThrow(/Adam: param group 0: beta1 must be in \[0, 1\); got -0.5/);
    expect(() => new SGD([{ params: [p], lr: -2 }], { lr: 0.1 })).toThrow(/SGD: param group 0: lr must be a finite number > 0; got -2/);
    const opt = new SGD([p], { lr: 0.1 });
    expect(() => { opt.learningRate = -3; }).toThrow(/SGD: learningRate must be a finite number > 0; got -3/);
    expect(() => { opt.paramGroups[0]!.lr = NaN; }).toThrow(ArgumentError);
    expect(opt.learningRate).toBe(0.1);
    opt.dispose();
    p.dispose();
  });

  test('parameters and options', () => {
    const p = param([1], [1]);
    const q = tidy(() => tensor([1, 2], [2]).keep());
    expect(() => new SGD([q], { lr: 0.1 })).toThrow(/SGD: parameter 0 \(Tensor\(\[2\], f32\)\) does not require grad/);
    const gone = param([1], [1]);
    gone.dispose();
    expect(() => new Adam([p, gone], { lr: 0.1 })).toThrow(/Adam: parameter 1 .* was already disposed/);
    expect(() => new Adam([{ params: [p] }, { params: [p] }], { lr: 0.1 })).toThrow(/parameter 1 .* appears more than once/);
    expect(() => new SGD([], { lr: 0.1 })).toThrow(/SGD: params must be a non-empty array/);
    expect(() => new SGD([p], { lr: 0.1, dampening: 0.1 } as never)).toThrow(/SGD: options: unknown or unsupported option 'dampening'/);
    expect(() => new Adam([{ params: [p], amsgrad: true } as never], { lr: 0.1 })).toThrow(/Adam: param group 0: unknown or unsupported option 'amsgrad'/);
    expect(() => new SGD([p], undefined as never)).toThrow(ArgumentError);
    const labels = tensor([1, 2], [2], 'i32').keep();
    labels.requiresGrad = true;
    expect(() => new SGD([labels], { lr: 0.1 })).toThrow(/has dtype i32; optimizers update f32 parameters only/);
    for (const t of [p, q, labels]) t.dispose();
  });
});
