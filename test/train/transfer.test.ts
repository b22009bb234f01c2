/**
 * The transfer API (createTransferModel, fineTune, fineTuneFrontier, extractFeatures), feature caching and
 * checkpoint restore, on a small residual base (8×8×3 → conv → BN → ReLU → conv → BN → Add → ReLU) so the
 * Keras-style counting of "the last N layers" and a two-tensor frontier are both exercised quickly.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { rng } from '../util/check.js';
import { tensor } from '../../src/tensor/create.js';
import { tidy } from '../../src/tensor/scope.js';
import { softmax } from '../../src/ops/index.js';
import { input, Model } from '../../src/nn/model.js';
import { Activation, Add } from '../../src/nn/layers/core.js';
import { Conv2D } from '../../src/nn/layers/convolutional.js';
import { BatchNormalization } from '../../src/nn/layers/normalization.js';
import { Adam } from '../../src/train/optimizers.js';
import { arrayBatches, type BatchSource, cacheProgress, fit, type ProgressEvent } from '../../src/train/fit.js';
import { FeatureCache } from '../../src/train/feature-cache.js';
import { ModelCheckpoint, manifestPath, WeightSnapshot } from '../../src/train/callbacks.js';
import { restoreCheckpoint } from '../../src/train/checkpoint.js';
import { createTransferModel, extractFeatures, fineTune, fineTuneFrontier, type TransferModel } from '../../src/train/transfer.js';

useGpu();

let built = 0;
/** A fresh residual base with unique layer names; weights seeded, so two bases of one `seed` are equal. */
function tinyBase(seed = 1): Model {
  const p = `b${built++}_`;
  const x = input([8, 8, 3], `${p}input`);
  const c1 = new Conv2D({ filters: 4, kernelSize: 3, padding: 'same', name: `${p}conv1`, seed }).apply(x);
  const b1 = new BatchNormalization({ name: `${p}bn1` }).apply(c1);
  const r1 = new Activation({ activation: 'relu', name: `${p}relu1` }).apply(b1);
  const c2 = new Conv2D({ filters: 4, kernelSize: 3, padding: 'same', name: `${p}conv2`, seed: seed + 1 }).apply(r1);
  const b2 = new BatchNormalization({ name: `${p}bn2` }).apply(c2);
  const sum = new Add({ name: `${p}add` }).apply([b2, r1]);
  const out = new Activation({ activation: 'relu', name: `${p}out` }).apply(sum);
  return new Model({ inputs: x, outputs: out, name: `${p}base` });
}

/** Two classes of 8×8×3 images: brighter red channel for class 1. */
function images(n: number, seed: number): { x: Float32Array; y: Int32Array } {
  const r = rng(seed);
  const x = new Float32Array(n * 192);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 2;
    for (let k = 0; k < 192; k++) x[i * 192 + k] = r() - 0.5 + (k % 3 === 0 && y[i] ? 0.8 : 0);
  }
  return { x, y };
}

const names = (m: Model) => m.layers.map((l) => l.name);
const dir = mkdtempSync(join(tmpdir(), 'graft-transfer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('createTransferModel', () => {
  test('the base frozen, then pooling, Dense(relu), Dropout and Dense(softmax), in one graph', () => {
    const base = tinyBase();
    const m = createTransferModel({ base, numClasses: 3, head: [6], dropout: 0.5 });
    expect(names(m).slice(0, base.layers.length)).toEqual(names(base));
    expect(m.headLayers.map((l) => l.name)).toEqual(['head_pool', 'head_dense1', 'head_dropout1', 'head_predictions']);
    expect(m.outputs[0]!.shape).toEqual([3]);
    expect(base.trainableWeights).toHaveLength(0);
    expect(m.trainableWeights.map((w) => w.key)).toEqual(['head_dense1/kernel', 'head_dense1/bias', 'head_predictions/kernel', 'head_predictions/bias']);
    // Pooling has no weights, so the frozen part runs through it: 4 numbers per image, not 8×8×4.
    expect(m.constantFrontier()).toEqual([m.getLayer('head_pool').output]);
    m.dispose();
  });

  test('bad options name what is wrong', () => {
    expect(() => createTransferModel({ base: tinyBase(), numClasses: 1 })).toThrow(/numClasses must be an integer ≥ 2/);
    expect(() => createTransferModel({ base: tinyBase(), numClasses: 2, dropout: 1 })).toThrow(/dropout must be in \[0, 1\)/);
    expect(() => createTransferModel({ base: 'vgg16', numClasses: 2 })).toThrow(/vgg16' needs weights/);
    expect(() => createTransferModel({ base: 'resnet50', numClasses: 2, weights: join(dir, 'absent.safetensors') })).toThrow(/not found.*graft weights fetch resnet50/);
  });
});

describe('fineTune', () => {
  test('unfreezes the last N layers as Keras counts them; BatchNorm stays in inference mode', () => {
    const base = tinyBase();
    const m = createTransferModel({ base, numClasses: 2, head: [5] });
    const expectedFrontier = fineTuneFrontier(m, 3);
    const { optimizer, unfrozen } = fineTune(m, { unfreezeLast: 3, learningRate: 1e-4 });
    const last3 = names(base).slice(-3);
    expect(unfrozen).toEqual(last3); // bn2, add, out: layers without weights count
    for (const l of base.layers.slice(1)) expect(l.trainable).toBe(last3.includes(l.name));
    for (const l of base.layers) if (l instanceof BatchNormalization) expect(l.inferenceMode).toBe(true);
    expect(optimizer.learningRate).toBe(1e-4);
    const bn2 = base.layers.find((l) => l.name.endsWith('bn2'))!;
    expect(m.trainableWeights.map((w) => w.key)).toEqual([`${bn2.name}/gamma`, `${bn2.name}/beta`, 'head_dense1/kernel', 'head_dense1/bias', 'head_predictions/kernel', 'head_predictions/bias']);
    // The trainable part now begins at bn2's input (conv2's output) and the Add's shortcut (relu1's output).
    const frontier = m.constantFrontier();
    expect(frontier.map((t) => t.layer.name).sort()).toEqual([base.layers.find((l) => l.name.endsWith('conv2'))!.name, base.layers.find((l) => l.name.endsWith('relu1'))!.name].sort());
    expect(expectedFrontier).toEqual(frontier);
    expect(() => fineTune(m, { unfreezeLast: 0 })).toThrow(/unfreezeLast must be an integer in \[1, 7\]/);
    m.dispose();
  });

  test('an unfrozen BatchNorm in inference mode keeps its moving statistics through training', async () => {
    const m = createTransferModel({ base: tinyBase(), numClasses: 2, head: [] });
    const { optimizer } = fineTune(m, { unfreezeLast: 3, learningRate: 1e-2 });
    const bn2 = m.base.layers.find((l) => l instanceof BatchNormalization && l.trainable) as BatchNormalization;
    const before = await bn2.movingMean!.value.floats();
    const gammaBefore = await bn2.gamma!.value.floats();
    const { x, y } = images(16, 3);
    await fit(m, arrayBatches(x, y, { batchSize: 8, inputShape: [8, 8, 3] }), { optimizer, loss: 'sparseCategoricalCrossentropy', epochs: 2 });
    expect(await bn2.movingMean!.value.floats()).toEqual(before);
    expect(await bn2.gamma!.value.floats()).not.toEqual(gammaBefore);
    m.dispose();
  });
});

describe('feature caching', () => {
  test('training on cached features gives the weights that training through the base gives', async () => {
    const m = createTransferModel({ base: tinyBase(), numClasses: 2, head: [6], dropout: 0 });
    fineTune(m, { unfreezeLast: 3 });
    const snapshot = new WeightSnapshot();
    snapshot.take(m);
    const { x, y } = images(20, 5);
    const source = arrayBatches(x, y, { batchSize: 8, inputShape: [8, 8, 3] });
    const run = async (cacheFeatures?: { train: FeatureCache }) => {
      snapshot.restore(m);
      const optimizer = new Adam(m.trainableParameters(), { lr: 1e-2 });
      const history = await fit(m, source, { optimizer, loss: 'sparseCategoricalCrossentropy', epochs: 3, ...(cacheFeatures ? { cacheFeatures } : {}) });
      return { history, weights: await Promise.all(m.trainableWeights.map((w) => w.value.floats())) };
    };
    const direct = await run();
    const cache = await FeatureCache.build(m, source, { shuffle: false });
    expect(cache.frontier).toHaveLength(2);
    expect(cache.size).toBe(20);
    const cached = await run({ train: cache });
    expect(cached.history.loss).toEqual(direct.history.loss);
    cached.weights.forEach((w, i) => expect(Array.from(w)).toEqual(Array.from(direct.weights[i]!)));
    snapshot.dispose();
    m.dispose();
  });

  test('views: one pass per epoch of the source; fit caches by itself with cacheFeatures: true', async () => {
    const m = createTransferModel({ base: tinyBase(), numClasses: 2, head: [6], dropout: 0.5 });
    const { x, y } = images(24, 7);
    const inner = arrayBatches(x, y, { batchSize: 8, inputShape: [8, 8, 3], shuffle: true, seed: 2 });
    const epochs: number[] = [];
    const source: BatchSource = { size: 24, batches: (e) => (epochs.push(e), inner.batches(e)) };
    const cache = await FeatureCache.build(m, source, { views: 2 });
    expect(epochs).toEqual([0, 1]);
    expect(cache.viewCount).toBe(2);
    expect(cache.bytes).toBe(2 * (24 * 4 * 4 + 24 * 4)); // pooled features (4 floats) and labels, per view
    const phases = new Set<string>();
    // Running metrics requested in onProgress but read only after fit: each read began when it was asked for,
    // so none sees a disposed total, and the last one of an epoch is that epoch's loss and accuracy.
    const running: Promise<{ loss: number; accuracy: number }>[][] = [];
    const history = await fit(m, source, {
      optimizer: new Adam(m.trainableParameters(), { lr: 1e-2 }), loss: 'sparseCategoricalCrossentropy', epochs: 6,
      cacheFeatures: true,
      onProgress: (e) => {
        phases.add(e.phase);
        if (e.metrics) (running[e.epoch] ??= []).push(e.metrics());
      },
    });
    expect(epochs).toEqual([0, 1, 0]); // fit's own cache: one view, one pass
    expect([...phases].sort()).toEqual(['cache', 'train']);
    expect(history.loss[5]!).toBeLessThan(history.loss[0]!);
    for (const [epoch, reads] of running.entries()) {
      const values = await Promise.all(reads);
      expect(values.at(-1)!.loss).toBeCloseTo(history.loss[epoch]!, 6);
      expect(values.at(-1)!.accuracy).toBeCloseTo(history.accuracy[epoch]!, 6);
    }
    m.dispose();
  });

  test('caching progress: the view being cached, or -1 for a validation set', () => {
    const events: ProgressEvent[] = [];
    const info = { view: 1, step: 2, examples: 8, total: 16 };
    cacheProgress((e) => events.push(e), false)(info);
    cacheProgress((e) => events.push(e), true)(info);
    expect(events).toEqual([{ phase: 'cache', epoch: 1, step: 2, examples: 8, total: 16 }, { phase: 'cache', epoch: -1, step: 2, examples: 8, total: 16 }]);
  });

  test('refuses to cache through trainable layers', async () => {
    const m = createTransferModel({ base: tinyBase(), numClasses: 2, head: [4] });
    m.base.trainable = true;
    const { x, y } = images(4, 1);
    await expect(FeatureCache.build(m, arrayBatches(x, y, { batchSize: 4, inputShape: [8, 8, 3] }))).rejects.toThrow(/nothing is frozen before the trainable layers/);
    m.base.trainable = false;
    const cache = await FeatureCache.build(m, arrayBatches(x, y, { batchSize: 4, inputShape: [8, 8, 3] }));
    fineTune(m, { unfreezeLast: 1 }); // the base's output now comes from a trainable layer… of no weights:
    expect(() => cache.checkUsableWith(m)).not.toThrow(); // ReLU has no weights, so its input is still constant
    fineTune(m, { unfreezeLast: 3 });
    expect(() => cache.checkUsableWith(m)).toThrow(/not computed by frozen layers/);
    m.dispose();
  });
});

describe('extractFeatures and logits', () => {
  test('a named layer\'s output, as the truncated model computes it', async () => {
    const m: TransferModel = createTransferModel({ base: tinyBase(), numClasses: 2 });
    const { x, y } = images(6, 9);
    const name = m.base.layers[3]!.name; // relu1
    const f = await extractFeatures(m, arrayBatches(x, y, { batchSize: 4, inputShape: [8, 8, 3] }), name);
    expect(f.shape).toEqual([8, 8, 4]);
    expect(f.count).toBe(6);
    expect(Array.from(f.labels)).toEqual(Array.from(y));
    const ref = tidy(() => m.truncate(name).call(tensor(x, [6, 8, 8, 3])));
    expect(Array.from(f.features)).toEqual(Array.from(await ref.floats()));
    ref.dispose();
    await expect(extractFeatures(m, arrayBatches(x, y, { batchSize: 4, inputShape: [8, 8, 3] }), 'nope')).rejects.toThrow(/has no layer named 'nope'/);
    m.dispose();
  });

  test('logits: true leaves out the final softmax only', async () => {
    const m = createTransferModel({ base: tinyBase(), numClasses: 3, head: [5], dropout: 0 });
    const { x } = images(4, 2);
    const { p, z } = tidy(() => {
      const xt = tensor(x, [4, 8, 8, 3]);
      return { p: m.call(xt), z: softmax(m.call(xt, { training: false, logits: true }), -1) };
    });
    const [pv, zv] = [await p.floats(), await z.floats()];
    pv.forEach((v, i) => expect(v).toBeCloseTo(zv[i]!, 6));
    p.dispose();
    z.dispose();
    m.dispose();
  });
});

describe('checkpoints of trainable weights', () => {
  test('restoreCheckpoint puts back the head and the optimizer state; frozen weights are not in the file', async () => {
    const m = createTransferModel({ base: tinyBase(), numClasses: 2, head: [4], dropout: 0 });
    const { x, y } = images(8, 4);
    const optimizer = new Adam(m.trainableParameters(), { lr: 1e-2 });
    const ckpt = new ModelCheckpoint({ path: join(dir, 'ck.safetensors'), weights: 'trainable', monitor: 'loss' });
    await fit(m, arrayBatches(x, y, { batchSize: 4, inputShape: [8, 8, 3] }), { optimizer, loss: 'sparseCategoricalCrossentropy', epochs: 2, callbacks: [ckpt] });
    const saved = await Promise.all(m.weights.map((w) => w.value.floats()));
    const moments = await optimizer.stateDict();
    // More training changes everything trainable; restoring brings it back.
    await fit(m, arrayBatches(x, y, { batchSize: 4, inputShape: [8, 8, 3] }), { optimizer, loss: 'sparseCategoricalCrossentropy', epochs: 1 });
    const manifest = restoreCheckpoint(manifestPath(join(dir, 'ck.safetensors')), m, optimizer);
    expect(manifest.weightsSaved).toBe('trainable');
    expect(manifest.weightKeys).toEqual(m.trainableWeights.map((w) => w.key));
    const now = await Promise.all(m.weights.map((w) => w.value.floats()));
    now.forEach((w, i) => expect(Array.from(w)).toEqual(Array.from(saved[i]!)));
    expect(JSON.stringify((await optimizer.stateDict()).state.map((s) => s.step))).toEqual(JSON.stringify(moments.state.map((s) => s.step)));
    expect(() => restoreCheckpoint(join(dir, 'missing.json'), m)).toThrow(/missing.json not found/);
    m.dispose();
  });
});
