import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { expectClose, randomData } from '../util/check.js';
import { tensor } from '../../src/tensor/create.js';
import { liveTensorCount, sizeOf } from '../../src/tensor/tensor.js';
import { tidy } from '../../src/tensor/scope.js';
import { memory } from '../../src/tensor/memory.js';
import { runtime } from '../../src/gpu/runtime.js';
import { noGrad } from '../../src/autograd/tape.js';
import * as ops from '../../src/ops/index.js';
import { batchNormBackwardRef, batchNormRef, batchStatsRef, runningUpdateRef } from '../../src/ops/batchnorm.js';
import { BatchNormalization, type BatchNormalizationConfig } from '../../src/nn/layers/normalization.js';
import { Model, Sequential, input } from '../../src/nn/model.js';
import { Dense } from '../../src/nn/layers/core.js';
import { Conv2D } from '../../src/nn/layers/convolutional.js';
import { GlobalAveragePooling2D } from '../../src/nn/layers/pooling.js';
import type { Layer } from '../../src/nn/layer.js';
import { ArgumentError, DisposedError, ShapeError } from '../../src/errors.js';

useGpu();

const SHAPE = [2, 3, 5, 4];
const C = 4;

/** Activations with a per-channel offset, so batch and moving statistics clearly differ. */
function batch(seed: number): Float32Array {
  return randomData(sizeOf(SHAPE), seed, -1, 1).map((v, i) => v * (1 + (i % C)) + 2 * (i % C) - 3);
}

/** A layer built by one inference call on a [1, channels] input (which leaves the moving statistics alone). */
function built(config: BatchNormalizationConfig = {}, channels = C): BatchNormalization {
  const layer = new BatchNormalization(config);
  noGrad(() => tidy(() => void layer.call(tensor(new Float32Array(channels), [1, channels]))));
  return layer;
}

/** A layer with pretrained-looking weights: γ, β, moving mean and variance all away from their defaults. */
function pretrained(config: BatchNormalizationConfig = {}) {
  const w = { gamma: randomData(C, 1, 0.5, 1.5), beta: randomData(C, 2, -1, 1), mean: randomData(C, 3, -1, 1), variance: randomData(C, 4, 0.5, 2) };
  const layer = built({ name: 'bn', ...config });
  layer.setWeights([w.gamma, w.beta, w.mean, w.variance]);
  return { layer, w };
}

async function stats(layer: BatchNormalization) {
  return { mean: Array.from(await layer.movingMean!.value.data()), variance: Array.from(await layer.movingVariance!.value.data()) };
}

function clearGrads(layer: Layer) {
  for (const w of layer.weights) {
    w.value.grad?.dispose();
    w.value.grad = null;
  }
}

/** y = layer(x) and the gradients of Σ y·w (w fixed) for x, γ and β. */
async function forwardBackward(layer: BatchNormalization, data: Float32Array, training: boolean) {
  const x = tensor(data, SHAPE).keep();
  x.requiresGrad = true;
  const y = tidy(() => {
    const out = layer.call(x, { training });
    ops.backward(ops.sum(ops.mul(out, tensor(randomData(out.size, 77), SHAPE))));
    return out;
  });
  const gamma = layer.gamma!.value;
  const beta = layer.beta!.value;
  const result = {
    y: await y.data(),
    dx: await x.grad!.data(),
    dgamma: gamma.grad ? await gamma.grad.data() : null,
    dbeta: beta.grad ? await beta.grad.data() : null,
  };
  clearGrads(layer);
  y.dispose();
  x.dispose();
  return result;
}

describe('BatchNormalization layer', () => {
  test('starts as Keras does: weights built from the channels, γ = 1, β = 0, moving mean 0, variance 1', async () => {
    const layer = new BatchNormalization({ name: 'conv1_bn' });
    expect([layer.className, layer.built, layer.channels, layer.weights.length]).toEqual(['BatchNormalization', false, null, 0]);
    expect([layer.epsilon, layer.momentum, layer.trainable]).toEqual([1e-3, 0.99, true]);
    expect(layer.getConfig()).toEqual({ name: 'conv1_bn', trainable: true, epsilon: 1e-3, momentum: 0.99, center: true, scale: true });
    const y = tidy(() => layer.call(tensor(randomData(6, 9), [2, 3])));
    y.dispose();
    expect(layer.channels).toBe(3);
    expect(Array.from(await layer.gamma!.value.data())).toEqual([1, 1, 1]);
    expect(Array.from(await layer.beta!.value.data())).toEqual([0, 0, 0]);
    expect(Array.from(await layer.movingMean!.value.data())).toEqual([0, 0, 0]);
    expect(Array.from(await layer.movingVariance!.value.data())).toEqual([1, 1, 1]);
    expect(layer.weights.map((w) => w.key)).toEqual(['conv1_bn/gamma', 'conv1_bn/beta', 'conv1_bn/moving_mean', 'conv1_bn/moving_variance']);
    expect([layer.gamma!.value.name, layer.movingVariance!.value.name]).toEqual(['conv1_bn/gamma', 'conv1_bn/moving_variance']);
    expect(layer.gamma!.value.requiresGrad && layer.beta!.value.requiresGrad).toBe(true);
    expect(layer.movingMean!.value.requiresGrad || layer.movingVariance!.value.requiresGrad).toBe(false);
    expect(layer.trainableWeights).toEqual([layer.gamma, layer.beta]);
    expect(layer.nonTrainableWeights).toEqual([layer.movingMean, layer.movingVariance]);
    expect(layer.countParams()).toBe(12);
    layer.dispose();
    const unnamed = new BatchNormalization();
    expect(unnamed.name).toMatch(/^batch_normalization(_\d+)?$/);
  });

  test('unfrozen, training: batch statistics, moving statistics updated as Keras does, gradients for γ and β', async () => {
    const { layer, w } = pretrained({ momentum: 0.9 });
    const moving = { mean: Float64Array.from(w.mean), variance: Float64Array.from(w.variance) };
    for (let step = 0; step < 3; step++) {
      const data = batch(10 + step);
      const got = await forwardBackward(layer, data, true);
      const o = { gamma: w.gamma, beta: w.beta, epsilon: 1e-3, training: true };
      expectClose(got.y, batchNormRef(data, SHAPE, o).y, { rtol: 1e-4, atol: 1e-4 }, 'y');
      const ref = batchNormBackwardRef(data, SHAPE, randomData(sizeOf(SHAPE), 77), o);
      expectClose(got.dgamma!, ref.dgamma, { rtol: 1e-4, atol: 1e-4 }, 'dgamma');
      expectClose(got.dbeta!, ref.dbeta, { rtol: 1e-4, atol: 1e-4 }, 'dbeta');
      runningUpdateRef(moving, batchStatsRef(data, SHAPE), 0.9);
    }
    const s = await stats(layer);
    expectClose(s.mean, moving.mean, { rtol: 1e-5, atol: 1e-6 }, 'moving mean');
    expectClose(s.variance, moving.variance, { rtol: 1e-5, atol: 1e-6 }, 'moving variance');
    layer.dispose();
  });

  test('unfrozen, inference: moving statistics used and left alone; γ and β still get gradients', async () => {
    const { layer, w } = pretrained();
    const data = batch(20);
    const before = await stats(layer);
    const got = await forwardBackward(layer, data, false);
    expectClose(got.y, batchNormRef(data, SHAPE, { ...w, epsilon: 1e-3, training: false }).y, { rtol: 1e-5, atol: 1e-5 });
    expect(got.dgamma).not.toBeNull();
    expect(got.dbeta).not.toBeNull();
    expect(await stats(layer)).toEqual(before);
    layer.dispose();
  });

  test('frozen: training = true is ignored (inference output, moving statistics bit for bit, no γ/β gradient)', async () => {
    const { layer, w } = pretrained();
    layer.trainable = false;
    expect(layer.gamma!.value.requiresGrad || layer.beta!.value.requiresGrad).toBe(false);
    const data = batch(30);
    const before = await stats(layer);
    const asTraining = await forwardBackward(layer, data, true);
    const asInference = await forwardBackward(layer, data, false);
    expect(Array.from(asTraining.y)).toEqual(Array.from(asInference.y));
    expect(await stats(layer)).toEqual(before);
    expect(asTraining.dgamma).toBeNull();
    expect(asTraining.dbeta).toBeNull();
    const o = { ...w, epsilon: 1e-3, training: false };
    expectClose(asTraining.y, batchNormRef(data, SHAPE, o).y, { rtol: 1e-5, atol: 1e-5 }, 'y is the inference output');
    expectClose(asTraining.dx, batchNormBackwardRef(data, SHAPE, randomData(sizeOf(SHAPE), 77), o).dx, { rtol: 1e-5, atol: 1e-5 }, 'dx = g·γ/σ');
    // Keras lists a frozen layer's γ and β among its non-trainable weights.
    expect(layer.trainableWeights).toEqual([]);
    expect(layer.trainableParameters()).toEqual([]);
    expect(layer.nonTrainableWeights).toEqual([layer.gamma, layer.beta, layer.movingMean, layer.movingVariance]);
    layer.dispose();
  });

  test('built frozen (trainable: false in the config): γ and β never require grad', () => {
    const layer = built({ trainable: false });
    expect(layer.gamma!.value.requiresGrad || layer.beta!.value.requiresGrad).toBe(false);
    expect(layer.trainableWeights).toEqual([]);
    layer.trainable = true;
    expect(layer.gamma!.value.requiresGrad && layer.beta!.value.requiresGrad).toBe(true);
    expect(layer.movingMean!.value.requiresGrad || layer.movingVariance!.value.requiresGrad).toBe(false);
    layer.dispose();
  });

  test('switching trainable back and forth takes effect at the next call', async () => {
    const { layer, w } = pretrained({ momentum: 0.5 });
    const moving = { mean: Float64Array.from(w.mean), variance: Float64Array.from(w.variance) };
    for (const [i, trainable] of [true, false, true, false, false, true].entries()) {
      layer.trainable = trainable;
      const data = batch(40 + i);
      const got = await forwardBackward(layer, data, true);
      expect(got.dgamma !== null && got.dbeta !== null).toBe(trainable);
      expect(layer.trainableWeights.length).toBe(trainable ? 2 : 0);
      const mode = trainable ? { epsilon: 1e-3, training: true } : { ...moving, epsilon: 1e-3, training: false };
      expectClose(got.y, batchNormRef(data, SHAPE, { gamma: w.gamma, beta: w.beta, ...mode }).y, { rtol: 1e-4, atol: 1e-4 }, `step ${i} y`);
      if (trainable) runningUpdateRef(moving, batchStatsRef(data, SHAPE), 0.5);
      const s = await stats(layer);
      expectClose(s.mean, moving.mean, { rtol: 1e-5, atol: 1e-6 }, `step ${i} moving mean`);
      expectClose(s.variance, moving.variance, { rtol: 1e-5, atol: 1e-6 }, `step ${i} moving variance`);
    }
    layer.dispose();
  });

  test('center = scale = false: no γ or β, and [N, C] input', async () => {
    const layer = new BatchNormalization({ center: false, scale: false, epsilon: 1.001e-5 });
    const data = randomData(35, 50, -2, 2);
    const y = tidy(() => layer.call(tensor(data, [7, 5]), { training: true }));
    expect(layer.gamma).toBeNull();
    expect(layer.beta).toBeNull();
    expect(layer.weights.map((w) => w.name)).toEqual(['moving_mean', 'moving_variance']);
    expect(layer.trainableWeights).toEqual([]);
    expectClose(await y.data(), batchNormRef(data, [7, 5], { epsilon: 1.001e-5, training: true }).y, { rtol: 1e-4, atol: 1e-4 });
    y.dispose();
    const mean = randomData(5, 1);
    const variance = randomData(5, 2, 0.5, 1);
    layer.setWeights([mean, variance]);
    const z = tidy(() => layer.call(tensor(data, [7, 5])));
    expectClose(await z.data(), batchNormRef(data, [7, 5], { mean, variance, epsilon: 1.001e-5, training: false }).y, { rtol: 1e-5, atol: 1e-5 });
    z.dispose();
    layer.dispose();
  });

  test('arguments are checked, with errors naming the layer', async () => {
    expect(() => new BatchNormalization({ name: 'bad', momentum: -0.1 })).toThrow(/bad: momentum must be in \[0, 1\]/);
    expect(() => new BatchNormalization({ momentum: 1.5 })).toThrow(ArgumentError);
    expect(() => new BatchNormalization({ momentum: NaN })).toThrow(ArgumentError);
    expect(() => new BatchNormalization({ name: 'bad', epsilon: 0 })).toThrow(/bad: epsilon/);
    expect(() => new BatchNormalization({ epsilon: Infinity })).toThrow(ArgumentError);
    expect(() => new BatchNormalization({ epsilon: NaN })).toThrow(ArgumentError);
    expect(() => new BatchNormalization({ name: 'a/b' })).toThrow(ArgumentError);

    const layer = new BatchNormalization({ name: 'bn3' });
    expect(() => layer.setWeights([[1, 1, 1], [0, 0, 0], [0, 0, 0], [1, 1, 1]])).toThrow(/bn3: setWeights before the layer is built; call the layer once/);
    // A [N] input has no channel axis.
    tidy(() => {
      expect(() => layer.call(tensor(new Float32Array(3), [3]))).toThrow(ShapeError);
    });
    expect(layer.built).toBe(false);
    tidy(() => void layer.call(tensor(new Float32Array(6), [2, 3])));
    expect(() => layer.setWeights([[1, 1, 1]])).toThrow(/bn3: setWeights got 1 arrays, expected 4 \(gamma, beta, moving_mean, moving_variance\)/);
    // A bad array leaves every weight untouched, including those before it.
    expect(() => layer.setWeights([[2, 2, 2], [0, 0, 0], [0, 0], [1, 1, 1]])).toThrow(/bn3\/moving_mean: expected 3 values, got 2/);
    expect(Array.from(await layer.gamma!.value.data())).toEqual([1, 1, 1]);
    tidy(() => {
      expect(() => layer.call(tensor(new Float32Array(8), [2, 4]), { training: true })).toThrow(/bn3: expected 3 channels \(the last axis\), got 4/);
    });
    expect(() => layer.apply(input([5, 5, 4]))).toThrow(ShapeError);
    expect(layer.nodes.length).toBe(0);
    layer.dispose();
    const x = tensor(new Float32Array(6), [2, 3]).keep();
    expect(() => layer.call(x)).toThrow(DisposedError);
    expect(() => layer.setWeights([])).toThrow(DisposedError);
    expect(layer.weights).toEqual([]);
    x.dispose();
  });

  test('dispose() frees its tensors; memory stays flat over repeated steps', async () => {
    await runtime().sync();
    const start = liveTensorCount();
    const { layer } = pretrained();
    expect(liveTensorCount()).toBe(start + 4);
    const step = (i: number) =>
      tidy(() => {
        layer.trainable = i % 3 !== 2;
        const x = tensor(batch(60 + i), SHAPE);
        x.requiresGrad = true;
        ops.backward(ops.sum(ops.square(layer.call(x, { training: i % 2 === 0 }))));
        clearGrads(layer);
      });
    step(0);
    step(1);
    await runtime().sync();
    const before = memory();
    for (let i = 0; i < 12; i++) step(i);
    await runtime().sync();
    const after = memory();
    expect(after.tensors).toBe(before.tensors);
    expect(after.bytesInUse).toBe(before.bytesInUse);
    layer.dispose();
    expect(liveTensorCount()).toBe(start);
  });
});

describe('BatchNormalization in a model', () => {
  /** input [5, 5, 2] → conv 3×3, 3 filters → BN → global average pool → dense 2. */
  function convModel() {
    const x = input([5, 5, 2], 'image');
    const conv = new Conv2D({ filters: 3, kernelSize: 3, name: 'conv1_conv', seed: 5 }).apply(x);
    const bn = new BatchNormalization({ name: 'conv1_bn', momentum: 0.8 }).apply(conv);
    const y = new Dense({ units: 2, name: 'head', seed: 6 }).apply(new GlobalAveragePooling2D({ name: 'pool' }).apply(bn));
    return new Model({ inputs: x, outputs: y, name: 'convnet' });
  }

  /** Layer.dispose frees a layer's own weights only, so free each layer of the model. */
  function disposeAll(m: Model) {
    for (const l of m.layers) l.dispose();
  }

  /** Runs the model to the conv output and to the BN output (one step each), then backprops Σ output. */
  async function step(m: Model, data: Float32Array, training: boolean) {
    const x = tensor(data, [2, 5, 5, 2]).keep();
    x.requiresGrad = true;
    const convOut = noGrad(() => tidy(() => m.truncate('conv1_conv', 'to_conv').call(x)));
    const bnOut = tidy(() => {
      const features = m.truncate('conv1_bn', 'to_bn').call(x, { training });
      ops.backward(ops.sum(ops.square(features)));
      return features;
    });
    const out = { conv: await convOut.data(), bn: await bnOut.data() };
    convOut.dispose();
    bnOut.dispose();
    x.dispose();
    return out;
  }

  test('a model in training mode normalises with batch statistics and updates the moving ones', async () => {
    const m = convModel();
    const bn = m.getLayer('conv1_bn') as BatchNormalization;
    expect(bn.channels).toBe(3);
    expect(m.getLayer('conv1_bn').output.shape).toEqual([3, 3, 3]);
    const moving = { mean: new Float64Array(3), variance: new Float64Array(3).fill(1) };
    for (let i = 0; i < 2; i++) {
      const got = await step(m, randomData(100, 80 + i, -2, 2), true);
      const shape = [2, 3, 3, 3];
      expectClose(got.bn, batchNormRef(got.conv, shape, { epsilon: 1e-3, training: true }).y, { rtol: 1e-4, atol: 1e-4 }, 'bn output');
      runningUpdateRef(moving, batchStatsRef(got.conv, shape), 0.8);
      expect(bn.gamma!.value.grad).not.toBeNull();
      expect(m.getLayer('conv1_conv').getWeight('kernel').value.grad).not.toBeNull();
      clearGrads(m);
    }
    const s = await stats(bn);
    expectClose(s.mean, moving.mean, { rtol: 1e-5, atol: 1e-6 }, 'moving mean');
    expectClose(s.variance, moving.variance, { rtol: 1e-5, atol: 1e-6 }, 'moving variance');
    disposeAll(m);
  });

  test('model.trainable = false freezes the BN layer: inference mode, moving statistics unchanged, no γ/β gradient', async () => {
    const m = convModel();
    const bn = m.getLayer('conv1_bn') as BatchNormalization;
    const mean = randomData(3, 11, -0.5, 0.5);
    const variance = randomData(3, 12, 0.5, 2);
    const gamma = randomData(3, 13, 0.5, 1.5);
    const beta = randomData(3, 14, -1, 1);
    bn.setWeights([gamma, beta, mean, variance]);
    m.trainable = false;
    expect(bn.trainable).toBe(false);
    expect(m.trainableWeights).toEqual([]);
    const before = await stats(bn);
    const data = randomData(100, 90, -2, 2);
    const asTraining = await step(m, data, true);
    expect(bn.gamma!.value.grad).toBeNull();
    expect(bn.beta!.value.grad).toBeNull();
    expect(m.getLayer('conv1_conv').getWeight('kernel').value.grad).toBeNull();
    const asInference = await step(m, data, false);
    expect(Array.from(asTraining.bn)).toEqual(Array.from(asInference.bn));
    expect(await stats(bn)).toEqual(before);
    const ref = batchNormRef(asTraining.conv, [2, 3, 3, 3], { gamma, beta, mean, variance, epsilon: 1e-3, training: false });
    expectClose(asTraining.bn, ref.y, { rtol: 1e-5, atol: 1e-5 }, 'frozen output is the inference output');
    // Unfreezing only the BN layer: it trains again, while the conv stays frozen.
    bn.trainable = true;
    await step(m, data, true);
    expect(bn.gamma!.value.grad).not.toBeNull();
    expect(m.getLayer('conv1_conv').getWeight('kernel').value.grad).toBeNull();
    expect(await stats(bn)).not.toEqual(before);
    clearGrads(m);
    disposeAll(m);
  });

  test('summary() counts the moving statistics as non-trainable, and γ/β too once frozen', () => {
    const conv = convModel();
    const convParams = 3 * 3 * 2 * 3 + 3 + 4 * 3 + (3 * 2 + 2);
    const s = conv.summary();
    expect(s).toContain('conv1_bn (BatchNormalization)');
    expect(s).toMatch(/conv1_bn \(BatchNormalization\)\s+\(None, 3, 3, 3\)\s+12\s+conv1_conv\[0\]/);
    expect(s).toContain(`Total params: ${convParams} `);
    expect(s).toContain(`Trainable params: ${convParams - 6} `);
    expect(s).toContain('Non-trainable params: 6 ');
    disposeAll(conv);

    // Dense → BN on [N, C]: a Sequential model.
    const seq = new Sequential([new Dense({ units: 4, name: 'fc' }), new BatchNormalization({ name: 'fc_bn' }), new Dense({ units: 2, name: 'out' })], { inputShape: [3], name: 'mlp' });
    const total = 3 * 4 + 4 + 4 * 4 + 4 * 2 + 2;
    expect(seq.countParams()).toBe(total);
    expect(seq.summary()).toContain(`Trainable params: ${total - 8} `);
    expect(seq.summary()).toContain('Non-trainable params: 8 ');
    seq.getLayer('fc_bn').trainable = false;
    expect(seq.summary()).toContain(`Trainable params: ${total - 16} `);
    expect(seq.summary()).toContain('Non-trainable params: 16 ');
    seq.trainable = false;
    expect(seq.summary()).toContain('Trainable params: 0 ');
    expect(seq.summary()).toContain(`Non-trainable params: ${total} `);
    disposeAll(seq);
  });
});
