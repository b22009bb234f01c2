/**
 * fit / evaluate / predict and the callbacks, on a small MLP (8 → Dense(16, relu) → Dense(3, softmax)) and a
 * synthetic dataset of three well-separated Gaussian clusters.
 */
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { rng } from '../util/check.js';
import { memory } from '../../src/tensor/memory.js';
import { Sequential } from '../../src/nn/model.js';
import { Dense } from '../../src/nn/layers/core.js';
import { Adam, AdamW, SGD } from '../../src/train/optimizers.js';
import { arrayBatches, evaluate, fit, predict, predictLabelled } from '../../src/train/fit.js';
import { type Callback, EarlyStopping, LearningRateScheduler, ModelCheckpoint, manifestPath } from '../../src/train/callbacks.js';
import { readSafetensorsFile } from '../../src/weights/files.js';
import { write } from '../../src/tensor/create.js';

useGpu();

const C = 3;
const D = 8;

/** Three clusters in 8-D, centres (from `centreSeed`) 3 apart on average, uniform noise of width 1.5. */
function clusters(n: number, centreSeed: number, noiseSeed: number): { x: Float32Array; y: Int32Array; hot: Float32Array } {
  const rc = rng(centreSeed);
  const centres = Array.from({ length: C }, () => Array.from({ length: D }, () => (rc() - 0.5) * 6));
  const r = rng(noiseSeed);
  const x = new Float32Array(n * D);
  const y = new Int32Array(n);
  const hot = new Float32Array(n * C);
  for (let i = 0; i < n; i++) {
    const c = i % C;
    y[i] = c;
    hot[i * C + c] = 1;
    for (let d = 0; d < D; d++) x[i * D + d] = centres[c]![d]! + (r() - 0.5) * 1.5;
  }
  return { x, y, hot };
}

const train = clusters(240, 1, 2);
const validData = clusters(90, 1, 3); // same centres, fresh noise

function smallModel(): Sequential {
  return new Sequential([new Dense({ units: 16, activation: 'relu' }), new Dense({ units: C, activation: 'softmax' })], { inputShape: [D] });
}

const trainSource = (seed = 1) => arrayBatches(train.x, train.y, { batchSize: 32, shuffle: true, seed, inputShape: [D], numClasses: C });
const validSource = () => arrayBatches(validData.x, validData.y, { batchSize: 64, inputShape: [D] });

async function weightBits(model: Sequential): Promise<Uint32Array[]> {
  const out: Uint32Array[] = [];
  for (const w of model.weights) out.push(new Uint32Array((await w.value.floats()).buffer.slice(0)));
  return out;
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('fit / evaluate / predict', () => {
  test('learns separable clusters; history, evaluate and predict agree', async () => {
    const model = smallModel();
    const optimizer = new Adam(model.trainableParameters(), { lr: 0.01 });
    const history = await fit(model, trainSource(), { optimizer, loss: 'sparseCategoricalCrossentropy', epochs: 8, validation: validSource() });
    expect(history.epoch).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    for (const k of ['loss', 'accuracy', 'val_loss', 'val_accuracy'] as const) {
      expect(history[k]).toHaveLength(8);
      for (const v of history[k]) expect(Number.isFinite(v)).toBe(true);
    }
    expect(history.loss[7]!).toBeLessThan(history.loss[0]! * 0.5);
    expect(history.accuracy[7]!).toBeGreaterThan(0.9);
    expect(history.val_accuracy[7]!).toBeGreaterThan(0.9);

    // evaluate equals the f64 cross-entropy and argmax accuracy computed on the CPU from predict's probabilities.
    const probs = await predict(model, validSource());
    expect(probs).toHaveLength(validData.y.length * C);
    let ce = 0;
    let correct = 0;
    for (let i = 0; i < validData.y.length; i++) {
      const row = Array.from(probs.subarray(i * C, (i + 1) * C));
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      for (const p of row) expect(p).toBeGreaterThanOrEqual(0);
      ce -= Math.log(row[validData.y[i]!]!);
      if (row.indexOf(Math.max(...row)) === validData.y[i]) correct++;
    }
    const ev = await evaluate(model, validSource(), { loss: 'sparseCategoricalCrossentropy' });
    expect(ev.loss).toBeCloseTo(ce / validData.y.length, 4);
    expect(ev.accuracy).toBeCloseTo(correct / validData.y.length, 10);
    expect(ev.loss).toBeCloseTo(history.val_loss[7]!, 5);
    // predictLabelled gives the same loss in the same pass as its predictions, with index or one-hot labels.
    const labelled = await predictLabelled(model, validSource());
    expect(labelled.loss!).toBeCloseTo(ev.loss, 5);
    expect([...labelled.labels]).toEqual([...validData.y]);
    const hot = new Float32Array(validData.y.length * C);
    validData.y.forEach((c, i) => (hot[i * C + c] = 1));
    expect((await predictLabelled(model, arrayBatches(validData.x, hot, { batchSize: 7, inputShape: [D] }))).loss!).toBeCloseTo(ev.loss, 5);
    optimizer.dispose();
    model.dispose();
  });

  test('categoricalCrossentropy with one-hot rows gives the same evaluation as sparse labels', async () => {
    const model = smallModel();
    const optimizer = new SGD(model.trainableParameters(), { lr: 0.1 });
    const hotSource = arrayBatches(train.x, train.hot, { batchSize: 32, shuffle: true, seed: 3, inputShape: [D], numClasses: C });
    const history = await fit(model, hotSource, { optimizer, loss: 'categoricalCrossentropy', epochs: 3 });
    expect(history.loss[2]!).toBeLessThan(history.loss[0]!);
    const sparse = await evaluate(model, arrayBatches(train.x, train.y, { batchSize: 50, inputShape: [D] }), { loss: 'sparseCategoricalCrossentropy' });
    const dense = await evaluate(model, arrayBatches(train.x, train.hot, { batchSize: 50, inputShape: [D] }), { loss: 'categoricalCrossentropy' });
    expect(dense.loss).toBeCloseTo(sparse.loss, 5);
    expect(dense.accuracy).toBe(sparse.accuracy);
    await expect(fit(model, hotSource, { optimizer, loss: 'sparseCategoricalCrossentropy', epochs: 1 })).rejects.toThrow(/Int32Array/);
    optimizer.dispose();
    model.dispose();
  });

  test('a frozen layer stays bit-identical while the unfrozen one changes (AdamW with weight decay)', async () => {
    for (const freezeFirst of [true, false]) {
      const model = smallModel();
      const first = model.layers[1]!;
      // Either frozen before the optimizer is built (it never sees the weights), or after (they get no gradient).
      if (freezeFirst) first.trainable = false;
      const optimizer = new AdamW(freezeFirst ? model.trainableParameters() : model.weights.map((w) => w.value), { lr: 0.01, weightDecay: 0.1 });
      if (!freezeFirst) first.trainable = false;
      const before = await weightBits(model);
      await fit(model, trainSource(), { optimizer, loss: 'sparseCategoricalCrossentropy', epochs: 2 });
      const after = await weightBits(model);
      model.weights.forEach((w, i) => {
        if (w.layer === first) expect(after[i], w.key).toEqual(before[i]);
        else expect(after[i], w.key).not.toEqual(before[i]);
      });
      optimizer.dispose();
      model.dispose();
    }
  });

  test('the loss of a softmax model is computed from logits: finite far beyond where probabilities underflow', async () => {
    const model = smallModel();
    const last = model.layers[2] as Dense;
    // A bias of 200 on class 2: for class-0 examples p(class 0) ≈ e^-200, which is 0 in f32, so −log(p) would be ∞.
    write(last.bias!.value, [0, 0, 200]);
    const zeroes = Int32Array.from({ length: 30 }, () => 0);
    const xs = train.x.slice(0, 30 * D);
    const ev = await evaluate(model, arrayBatches(xs, zeroes, { batchSize: 30, inputShape: [D] }), { loss: 'sparseCategoricalCrossentropy' });
    const probs = await predict(model, arrayBatches(xs, zeroes, { batchSize: 30, inputShape: [D] }));
    expect(Math.min(...Array.from({ length: 30 }, (_, i) => probs[i * C]!))).toBe(0);
    expect(Number.isFinite(ev.loss)).toBe(true);
    expect(ev.loss).toBeGreaterThan(150);
    expect(ev.accuracy).toBe(0);
    model.dispose();
  });

  test('GPU memory is flat across epochs', async () => {
    const model = smallModel();
    const optimizer = new Adam(model.trainableParameters(), { lr: 0.01 });
    const seen: Array<{ tensors: number; bytes: number }> = [];
    const probe: Callback = {
      onEpochEnd: () => {
        const m = memory();
        seen.push({ tensors: m.tensors, bytes: m.bytesInUse });
      },
    };
    await fit(model, trainSource(), { optimizer, loss: 'sparseCategoricalCrossentropy', epochs: 5, validation: validSource(), callbacks: [probe] });
    expect(seen).toHaveLength(5);
    for (const s of seen) expect(s).toEqual(seen[0]);
    optimizer.dispose();
    model.dispose();
  });
});

describe('callbacks', () => {
  const ctx = () => ({ model: smallModel(), optimizer: { kind: 'fake', learningRate: 1, stateDict: async () => ({ kind: 'fake', learningRate: 1, groups: [], state: [] }) } });

  /** Feeds a scripted monitor sequence; returns the epoch at which the callback said 'stop', or -1. */
  function runScript(es: EarlyStopping, monitor: string, values: number[]): number {
    const c = ctx();
    es.onTrainBegin();
    try {
      for (const [epoch, v] of values.entries()) if (es.onEpochEnd(epoch, { [monitor]: v }, c) === 'stop') return epoch;
      return -1;
    } finally {
      es.onTrainEnd(c);
      c.model.dispose();
    }
  }

  test('EarlyStopping stops at the right epoch for scripted sequences', () => {
    expect(runScript(new EarlyStopping({ patience: 1 }), 'val_loss', [1, 0.8, 0.85, 0.9, 0.1])).toBe(2);
    expect(runScript(new EarlyStopping({ patience: 0 }), 'val_loss', [1, 0.8, 0.85, 0.1])).toBe(2);
    expect(runScript(new EarlyStopping({ patience: 2 }), 'val_loss', [1, 0.9, 0.95, 0.85, 0.9, 0.9, 0.9])).toBe(5);
    // minDelta: 0.95 is not enough of an improvement over 1.
    expect(runScript(new EarlyStopping({ patience: 0, minDelta: 0.1 }), 'val_loss', [1, 0.95, 0.5])).toBe(1);
    // 'auto' maximises accuracies.
    expect(runScript(new EarlyStopping({ monitor: 'val_accuracy', patience: 1 }), 'val_accuracy', [0.5, 0.6, 0.7, 0.65, 0.66])).toBe(3);
    expect(runScript(new EarlyStopping({ monitor: 'loss', mode: 'max', patience: 0 }), 'loss', [1, 2, 1.5])).toBe(2);
    expect(runScript(new EarlyStopping({ patience: 1 }), 'val_loss', [3, 2, 1, 0.5])).toBe(-1);
    expect(() => runScript(new EarlyStopping(), 'loss', [1])).toThrow(/val_loss/);
  });

  test('EarlyStopping with restoreBestWeights puts back exactly the best epoch\'s weights', async () => {
    const model = smallModel();
    const optimizer = new Adam(model.trainableParameters(), { lr: 0.01 });
    const script = [1.0, 0.5, 0.7, 0.6, 0.55, 0.1];
    const perEpoch: Uint32Array[][] = [];
    // Runs before EarlyStopping: overrides the monitored value and records the weights of each epoch.
    const scripted: Callback = {
      onEpochEnd: async (epoch, logs) => {
        logs.val_loss = script[epoch]!;
        perEpoch.push(await weightBits(model));
      },
    };
    const es = new EarlyStopping({ monitor: 'val_loss', patience: 2, restoreBestWeights: true });
    const history = await fit(model, trainSource(), { optimizer, loss: 'sparseCategoricalCrossentropy', epochs: 6, callbacks: [scripted, es] });
    expect(history.epoch).toEqual([0, 1, 2, 3]);
    expect(es.stoppedEpoch).toBe(3);
    expect(es.bestEpoch).toBe(1);
    const restored = await weightBits(model);
    expect(restored).toEqual(perEpoch[1]);
    expect(restored).not.toEqual(perEpoch[3]);
    // The optimizer still updates the (same) weight tensors afterwards.
    await fit(model, trainSource(), { optimizer, loss: 'sparseCategoricalCrossentropy', epochs: 1 });
    expect(await weightBits(model)).not.toEqual(restored);
    optimizer.dispose();
    model.dispose();
  });

  test('LearningRateScheduler sets the rate from (epoch, current rate) each epoch', async () => {
    const model = smallModel();
    const optimizer = new SGD(model.trainableParameters(), { lr: 0.1 });
    const calls: Array<[number, number]> = [];
    const schedule = (epoch: number, lr: number) => {
      calls.push([epoch, lr]);
      return epoch === 0 ? lr : lr / 2;
    };
    const rates: number[] = [];
    const probe: Callback = {
      onEpochBegin: () => void rates.push(optimizer.learningRate),
      onEpochEnd: (_e, logs) => expect(logs.lr).toBe(optimizer.learningRate),
    };
    await fit(model, trainSource(), { optimizer, loss: 'sparseCategoricalCrossentropy', epochs: 4, initialEpoch: 1, callbacks: [new LearningRateScheduler(schedule), probe] });
    expect(calls).toEqual([[1, 0.1], [2, 0.05], [3, 0.025]]);
    expect(rates).toEqual([0.05, 0.025, 0.0125]);
    expect(optimizer.paramGroups[0]!.lr).toBe(0.0125);
    await expect(fit(model, trainSource(), { optimizer, loss: 'sparseCategoricalCrossentropy', epochs: 1, callbacks: [new LearningRateScheduler(() => 0)] })).rejects.toThrow(/> 0/);
    optimizer.dispose();
    model.dispose();
  });

  test('ModelCheckpoint writes safetensors equal to the weights, a manifest, and the optimizer state', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'graft-ckpt-'));
    dirs.push(dir);
    const model = smallModel();
    const optimizer = new Adam(model.trainableParameters(), { lr: 0.02 });
    const every = new ModelCheckpoint({ path: join(dir, 'ckpt-{epoch}.safetensors') });
    const best = new ModelCheckpoint({ path: join(dir, 'best.safetensors'), monitor: 'val_loss', saveBestOnly: true });
    const scripted: Callback = { onEpochEnd: (epoch, logs) => void (logs.val_loss = [0.5, 0.9, 0.4][epoch]) };
    const history = await fit(model, trainSource(), { optimizer, loss: 'sparseCategoricalCrossentropy', epochs: 3, callbacks: [scripted, every, best] });
    expect(every.written.map((p) => p.slice(dir.length + 1))).toEqual(['ckpt-0.safetensors', 'ckpt-1.safetensors', 'ckpt-2.safetensors']);
    expect(best.written).toHaveLength(2); // epochs 0 and 2

    const file = readSafetensorsFile(join(dir, 'ckpt-2.safetensors'));
    expect([...file.tensors.keys()].sort()).toEqual(model.weights.map((w) => w.key).sort());
    for (const w of model.weights) {
      const t = file.tensors.get(w.key)!;
      expect(t.dtype).toBe('F32');
      expect(t.shape).toEqual([...w.value.shape]);
      expect(new Uint32Array((t.data as Float32Array).slice().buffer)).toEqual(new Uint32Array((await w.value.floats()).buffer));
    }
    const manifest = JSON.parse(readFileSync(manifestPath(join(dir, 'ckpt-2.safetensors')), 'utf8'));
    expect(manifest.epoch).toBe(2);
    expect(manifest.logs.loss).toBeCloseTo(history.loss[2]!, 6);
    expect(manifest.optimizer.kind).toBe(optimizer.kind);
    expect(manifest.optimizer.learningRate).toBe(0.02);
    expect(existsSync(manifest.optimizer.stateFile)).toBe(true);
    const state = readSafetensorsFile(manifest.optimizer.stateFile);
    const dict = await optimizer.stateDict();
    const expectedNames = dict.state.flatMap((s) => Object.keys(s.buffers).map((b) => `${s.param}/${b}`));
    expect([...state.tensors.keys()].sort()).toEqual(expectedNames.sort());
    expect(expectedNames.length).toBeGreaterThan(0);

    const bestManifest = JSON.parse(readFileSync(join(dir, 'best.json'), 'utf8'));
    expect(bestManifest.epoch).toBe(2);
    expect(bestManifest.best).toBe(0.4);
    optimizer.dispose();
    model.dispose();
  });
});
