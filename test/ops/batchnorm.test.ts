import fc from 'fast-check';
import { afterEach, describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { expectClose, finiteDiff, randomData, rng, seedArb } from '../util/check.js';
import { checkGradients, gpuGradients } from '../util/grad.js';
import { tensor } from '../../src/tensor/create.js';
import { sizeOf } from '../../src/tensor/tensor.js';
import { tidy } from '../../src/tensor/scope.js';
import { memory } from '../../src/tensor/memory.js';
import { runtime } from '../../src/gpu/runtime.js';
import * as ops from '../../src/ops/index.js';
import {
  type BatchNormRefOptions, type BatchNormVersion, batchNormBackwardRef, batchNormRef, batchNormStatsRaw, batchStatsRef,
  forceBatchNormVersion, runningUpdateRef,
} from '../../src/ops/batchnorm.js';
import { ArgumentError, ShapeError } from '../../src/errors.js';

useGpu();
afterEach(() => forceBatchNormVersion(null));

const VERSIONS: BatchNormVersion[] = ['v1', 'v2'];
const channelArb = fc.constantFrom(1, 2, 3, 5, 7, 8, 9, 16, 17, 64, 512);
const oddDimArb = fc.constantFrom(1, 2, 3, 5, 7, 9, 13);

/** [N, C] or [N, H, W, C] with N ≥ 1, odd H and W included, C from 1 to 512; at most `maxSize` elements. */
function bnShapeArb(maxSize: number): fc.Arbitrary<number[]> {
  return fc
    .oneof(
      fc.tuple(fc.integer({ min: 1, max: 40 }), channelArb).map(([n, c]) => [n, c]),
      fc.tuple(fc.integer({ min: 1, max: 4 }), oddDimArb, oddDimArb, channelArb).map(([n, h, w, c]) => [n, h, w, c]),
    )
    .filter((s) => sizeOf(s) <= maxSize);
}

/** Input data whose channels differ in offset and spread, as real activations do. */
function channelData(shape: number[], seed: number): Float32Array {
  const C = shape[shape.length - 1]!;
  const offset = randomData(C, seed + 1, -3, 3);
  const spread = randomData(C, seed + 2, 0.2, 3);
  return randomData(sizeOf(shape), seed).map((u, i) => offset[i % C]! + spread[i % C]! * u);
}

interface Params {
  gamma: Float32Array;
  beta: Float32Array;
  mean: Float32Array;
  variance: Float32Array;
}

function params(C: number, seed: number): Params {
  return {
    gamma: randomData(C, seed + 10, 0.5, 1.5),
    beta: randomData(C, seed + 11, -1, 1),
    mean: randomData(C, seed + 12, -1, 1),
    variance: randomData(C, seed + 13, 0.2, 2),
  };
}

/** Runs batchNorm on the GPU; returns y and the running statistics afterwards. */
async function runGpu(x: Float32Array, shape: number[], p: Params, o: { training: boolean; epsilon: number; momentum?: number; relu?: boolean; affine?: boolean }) {
  const C = shape[shape.length - 1]!;
  const mean = tensor(p.mean, [C]).keep();
  const variance = tensor(p.variance, [C]).keep();
  const y = tidy(() =>
    ops.batchNorm(tensor(x, shape), {
      gamma: o.affine === false ? null : tensor(p.gamma, [C]),
      beta: o.affine === false ? null : tensor(p.beta, [C]),
      mean, variance, epsilon: o.epsilon, momentum: o.momentum, training: o.training, relu: o.relu,
    }),
  );
  expect(y.shape).toEqual(shape);
  const out = { y: await y.data(), mean: await mean.data(), variance: await variance.data() };
  for (const t of [y, mean, variance]) t.dispose();
  return out;
}

const refOptions = (p: Params, o: { training: boolean; epsilon: number; relu?: boolean; affine?: boolean }): BatchNormRefOptions => ({
  gamma: o.affine === false ? null : p.gamma,
  beta: o.affine === false ? null : p.beta,
  mean: p.mean,
  variance: p.variance,
  epsilon: o.epsilon,
  training: o.training,
  relu: o.relu,
});

describe('forward matches the f64 reference', () => {
  for (const version of VERSIONS) {
    test(`training and inference modes, random shapes (${version} statistics)`, async () => {
      forceBatchNormVersion(version);
      await fc.assert(
        fc.asyncProperty(bnShapeArb(6000), seedArb, fc.boolean(), fc.boolean(), fc.boolean(), async (shape, seed, training, relu, affine) => {
          const x = channelData(shape, seed);
          const p = params(shape[shape.length - 1]!, seed);
          const o = { training, epsilon: 1e-3, relu, affine };
          const got = await runGpu(x, shape, p, o);
          expectClose(got.y, batchNormRef(x, shape, refOptions(p, o)).y, { rtol: 1e-4, atol: 1e-4 }, `y ${JSON.stringify(shape)} ${training ? 'training' : 'inference'}`);
        }),
        { numRuns: 20 },
      );
    });

    test(`batch statistics, random shapes (${version})`, async () => {
      forceBatchNormVersion(version);
      await fc.assert(
        fc.asyncProperty(bnShapeArb(6000), seedArb, async (shape, seed) => {
          const x = channelData(shape, seed);
          const s = tidy(() => batchNormStatsRaw(tensor(x, shape)));
          const ref = batchStatsRef(x, shape);
          expectClose(await s.mean.data(), ref.mean, { rtol: 1e-5, atol: 1e-6 }, 'mean');
          expectClose(await s.variance.data(), ref.variance, { rtol: 1e-4, atol: 1e-6 }, 'variance');
          s.mean.dispose();
          s.variance.dispose();
        }),
        { numRuns: 15 },
      );
    });
  }

  test('long columns and many channels, where the two versions differ most', async () => {
    for (const shape of [[8, 24, 24, 3], [2, 32, 33, 1], [4, 5, 5, 512], [3000, 2]]) {
      const x = channelData(shape, 5);
      const ref = batchStatsRef(x, shape);
      for (const version of VERSIONS) {
        forceBatchNormVersion(version);
        const s = tidy(() => batchNormStatsRaw(tensor(x, shape)));
        expectClose(await s.mean.data(), ref.mean, { rtol: 1e-5, atol: 1e-6 }, `${version} mean ${JSON.stringify(shape)}`);
        expectClose(await s.variance.data(), ref.variance, { rtol: 1e-4, atol: 1e-6 }, `${version} variance ${JSON.stringify(shape)}`);
        s.mean.dispose();
        s.variance.dispose();
      }
    }
  });

  test('no cancellation: a channel with mean 1e3 and standard deviation 0.05', async () => {
    // Channels: ordinary, mean 1e3 / sd 0.05, mean −4e3 / sd 0.2, ordinary. The formula E[x²] − E[x]² in
    // f32 gets the second channel's variance wrong by far more than the tolerance (asserted below, so this
    // test would catch a kernel that used it); the two-pass kernels must get it right.
    const shape = [4, 9, 11, 4];
    const C = 4;
    const r = rng(42);
    const centre = [0, 1e3, -4e3, 0.5];
    const sd = [1, 0.05, 0.2, 2];
    const x = Float32Array.from({ length: sizeOf(shape) }, (_, i) => centre[i % C]! + sd[i % C]! * (2 * r() - 1) * Math.sqrt(3));
    const ref = batchStatsRef(x, shape);

    let s1 = 0, s2 = 0;
    for (let i = 1; i < x.length; i += C) {
      s1 = Math.fround(s1 + x[i]!);
      s2 = Math.fround(s2 + Math.fround(x[i]! * x[i]!));
    }
    const n = x.length / C;
    const naive = Math.fround(s2 / n) - Math.fround(s1 / n) ** 2;
    expect(Math.abs(naive - ref.variance[1]!) / ref.variance[1]!).toBeGreaterThan(0.1);

    const p = params(C, 3);
    for (const version of VERSIONS) {
      forceBatchNormVersion(version);
      const s = tidy(() => batchNormStatsRaw(tensor(x, shape)));
      expectClose(await s.variance.data(), ref.variance, { rtol: 1e-4, atol: 0 }, `${version} variance`);
      expectClose(await s.mean.data(), ref.mean, { rtol: 0, atol: 1e-4 }, `${version} mean`);
      s.mean.dispose();
      s.variance.dispose();
      // x − μ carries μ's f32 rounding (up to 3e-5 at 1e3, 1.2e-4 at 4e3), which 1/σ magnifies.
      const got = await runGpu(x, shape, p, { training: true, epsilon: 1e-5 });
      expectClose(got.y, batchNormRef(x, shape, refOptions(p, { training: true, epsilon: 1e-5 })).y, { rtol: 0, atol: 3e-3 }, `${version} y`);
    }
  });

  test('N = 1 in training mode: a [1, C] batch has zero variance, so y = β', async () => {
    const p = params(5, 1);
    const got = await runGpu(randomData(5, 2), [1, 5], p, { training: true, epsilon: 1e-3 });
    expectClose(got.y, p.beta, { rtol: 0, atol: 1e-6 });
  });
});

describe('running statistics', () => {
  for (const version of VERSIONS) {
    test(`training updates them as Keras does over several steps; inference leaves them alone (${version})`, async () => {
      forceBatchNormVersion(version);
      await fc.assert(
        fc.asyncProperty(bnShapeArb(3000), seedArb, fc.constantFrom(0.99, 0.9, 0.5, 0), async (shape, seed, momentum) => {
          const C = shape[shape.length - 1]!;
          const p = params(C, seed);
          const mean = tensor(p.mean, [C]).keep();
          const variance = tensor(p.variance, [C]).keep();
          const moving = { mean: Float64Array.from(p.mean), variance: Float64Array.from(p.variance) };
          for (let step = 0; step < 4; step++) {
            const x = channelData(shape, seed + 100 * step);
            const training = step !== 2;
            tidy(() => {
              ops.batchNorm(tensor(x, shape), { mean, variance, momentum, training });
            });
            if (training) runningUpdateRef(moving, batchStatsRef(x, shape), momentum);
          }
          expectClose(await mean.data(), moving.mean, { rtol: 1e-5, atol: 1e-6 }, 'moving mean');
          expectClose(await variance.data(), moving.variance, { rtol: 1e-4, atol: 1e-6 }, 'moving variance');
          mean.dispose();
          variance.dispose();
        }),
        { numRuns: 12 },
      );
    });
  }

  test('inference mode leaves them bit for bit unchanged', async () => {
    const p = params(6, 4);
    const got = await runGpu(randomData(60, 5), [10, 6], p, { training: false, epsilon: 1e-3 });
    expect(Array.from(got.mean)).toEqual(Array.from(p.mean));
    expect(Array.from(got.variance)).toEqual(Array.from(p.variance));
  });
});

describe('gradients', () => {
  /** checkGradients over x, γ and β (and the f64 reference) for one case. */
  async function check(shape: number[], seed: number, o: { training: boolean; relu?: boolean }) {
    const C = shape[shape.length - 1]!;
    const p = params(C, seed);
    const epsilon = 1e-3;
    const running = () => ({ mean: tensor(p.mean, [C]), variance: tensor(p.variance, [C]) });
    await checkGradients(
      ([x, gamma, beta]) => ops.batchNorm(x!, { gamma, beta, ...running(), epsilon, training: o.training, relu: o.relu }),
      ([x, gamma, beta]) => batchNormRef(x!, shape, { gamma, beta, mean: p.mean, variance: p.variance, epsilon, training: o.training, relu: o.relu }).y,
      [{ data: channelData(shape, seed), shape }, { data: p.gamma, shape: [C] }, { data: p.beta, shape: [C] }],
    );
  }

  for (const version of VERSIONS) {
    for (const training of [true, false]) {
      test(`${training ? 'training' : 'inference'} mode: x, γ and β match finite differences (${version})`, async () => {
        forceBatchNormVersion(version);
        await fc.assert(
          fc.asyncProperty(bnShapeArb(240), seedArb, async (shape, seed) => check(shape, seed, { training })),
          { numRuns: 8 },
        );
      });
    }
  }

  test('fused ReLU, both modes (fixed cases, checked to stay clear of the kink)', async () => {
    const cases: Array<[number[], number]> = [[[6, 5], 1], [[2, 3, 5, 4], 2], [[1, 7, 3, 3], 3], [[9, 1], 4]];
    for (const [shape, seed] of cases) {
      for (const training of [true, false]) {
        const p = params(shape[shape.length - 1]!, seed);
        const { y } = batchNormRef(channelData(shape, seed), shape, { ...p, epsilon: 1e-3, training });
        expect(Math.min(...y.map(Math.abs))).toBeGreaterThan(1e-4); // finite differences would straddle the kink
        await check(shape, seed, { training, relu: true });
      }
    }
  });

  test('without γ and β (scale = center = false)', async () => {
    const shape = [3, 5, 3];
    const data = channelData(shape, 9);
    const p = params(3, 9);
    for (const training of [true, false]) {
      await checkGradients(
        ([x]) => ops.batchNorm(x!, { mean: tensor(p.mean, [3]), variance: tensor(p.variance, [3]), training }),
        ([x]) => batchNormRef(x!, shape, { mean: p.mean, variance: p.variance, epsilon: 1e-3, training }).y,
        [{ data, shape }],
      );
    }
  });

  test('only γ requires grad: the rule skips dx and still gives dγ', async () => {
    const shape = [4, 6];
    const data = channelData(shape, 12);
    const p = params(6, 12);
    const { grads } = await gpuGradients(([gamma]) => ops.batchNorm(tensor(data, shape), { gamma, training: true }), [{ data: p.gamma, shape: [6] }]);
    const w = randomData(24, 99);
    expectClose(grads[0]!, batchNormBackwardRef(data, shape, w, { gamma: p.gamma, epsilon: 1e-3, training: true }).dgamma, { rtol: 1e-4, atol: 1e-5 });
  });

  test('the analytic f64 backward reference matches finite differences of the forward reference', () => {
    const shape = [3, 2, 4];
    const x = Float64Array.from(channelData(shape, 7));
    const p = params(4, 7);
    const g = Float64Array.from(randomData(24, 8));
    for (const training of [true, false]) {
      for (const relu of [false, true]) {
        const o: BatchNormRefOptions = { ...p, epsilon: 1e-3, training, relu };
        const loss = (y: Float64Array) => y.reduce((s, v, i) => s + v * g[i]!, 0);
        const ref = batchNormBackwardRef(x, shape, g, o);
        expectClose(ref.dx, finiteDiff((xx) => loss(batchNormRef(xx, shape, o).y), x), { rtol: 1e-5, atol: 1e-7 }, 'dx');
        expectClose(ref.dgamma, finiteDiff((gg) => loss(batchNormRef(x, shape, { ...o, gamma: gg }).y), Float64Array.from(p.gamma)), { rtol: 1e-5, atol: 1e-7 }, 'dgamma');
        expectClose(ref.dbeta, finiteDiff((bb) => loss(batchNormRef(x, shape, { ...o, beta: bb }).y), Float64Array.from(p.beta)), { rtol: 1e-5, atol: 1e-7 }, 'dbeta');
      }
    }
  });

  test('inference mode saves a copy of the running statistics: a later in-place update does not change dx', async () => {
    const shape = [5, 3];
    const data = channelData(shape, 21);
    const p = params(3, 21);
    const mean = tensor(p.mean, [3]).keep();
    const variance = tensor(p.variance, [3]).keep();
    const x = tensor(data, shape).keep();
    x.requiresGrad = true;
    tidy(() => {
      const y = ops.batchNorm(x, { mean, variance, training: false });
      ops.batchNorm(tensor(randomData(15, 22, 5, 9), shape), { mean, variance, training: true, momentum: 0 }); // overwrites them
      ops.backward(ops.sum(y));
    });
    const expected = batchNormBackwardRef(data, shape, new Float64Array(15).fill(1), { mean: p.mean, variance: p.variance, epsilon: 1e-3, training: false }).dx;
    expectClose(await x.grad!.data(), expected, { rtol: 1e-5, atol: 1e-6 });
    for (const t of [mean, variance, x]) t.dispose();
  });
});

describe('errors', () => {
  test('shapes, modes and options are checked, naming the op and the argument', () => {
    tidy(() => {
      const x = tensor(new Float32Array(12), [2, 2, 3]);
      const c3 = tensor(new Float32Array(3), [3]);
      const c4 = tensor(new Float32Array(4), [4]);
      expect(() => ops.batchNorm(x, { gamma: c4, mean: c3, variance: c3 })).toThrow(/batchNorm: gamma has shape \[4\]; expected \[3\]/);
      expect(() => ops.batchNorm(x, { mean: c3, variance: c4 })).toThrow(ShapeError);
      expect(() => ops.batchNorm(x, { training: false })).toThrow(/inference mode .* needs the running mean and variance/);
      expect(() => ops.batchNorm(x, { mean: c3, training: true })).toThrow(/both running statistics/);
      expect(() => ops.batchNorm(x, { training: true, epsilon: 0 })).toThrow(/epsilon must be a finite number > 0; got 0/);
      expect(() => ops.batchNorm(x, { training: true, momentum: 1.5 })).toThrow(/momentum must be in \[0, 1\]/);
      expect(() => ops.batchNorm(x, { training: true, axis: 1 } as never)).toThrow(ArgumentError);
      expect(() => ops.batchNorm(tensor(new Float32Array(3), [3]), { training: true })).toThrow(/expected rank ≥ 2/);
      expect(() => ops.batchNorm(tensor([1, 2], [1, 2], 'i32'), { training: true })).toThrow(/dtype i32; expected f32/);
      expect(() => ops.batchNorm(tensor(new Float32Array(0), [0, 3]), { training: true })).toThrow(/at least one row/);
      expect(() => forceBatchNormVersion('v3' as never)).toThrow(ArgumentError);
    });
  });
});

test('GPU memory stays flat over repeated training and inference steps', async () => {
  const shape = [2, 5, 5, 8];
  const data = channelData(shape, 31);
  const gamma = tensor(params(8, 31).gamma, [8]).keep();
  const beta = tensor(params(8, 31).beta, [8]).keep();
  const mean = tensor(new Float32Array(8), [8]).keep();
  const variance = tensor(new Float32Array(8).fill(1), [8]).keep();
  gamma.requiresGrad = beta.requiresGrad = true;
  const step = (training: boolean, relu: boolean) =>
    tidy(() => {
      const x = tensor(data, shape);
      x.requiresGrad = true;
      const y = ops.batchNorm(x, { gamma, beta, mean, variance, training, relu });
      ops.backward(ops.sum(ops.mul(y, y)));
      for (const p of [gamma, beta]) {
        p.grad?.dispose();
        p.grad = null;
      }
    });
  step(true, false);
  step(false, true);
  await runtime().sync();
  const before = memory();
  for (let i = 0; i < 10; i++) step(i % 2 === 0, i % 3 === 0);
  await runtime().sync();
  const after = memory();
  expect(after.tensors).toBe(before.tensors);
  expect(after.bytesInUse).toBe(before.bytesInUse);
  for (const t of [gamma, beta, mean, variance]) t.dispose();
});
