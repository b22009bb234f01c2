/**
 * fit's non-finite policy: 'stop' ends training at the first epoch whose loss is NaN/Inf, after the earlier
 * epochs' callbacks ran; 'skip' leaves out exactly the bad steps, so the weights equal those of training
 * without them.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { rng } from '../util/check.js';
import { Sequential } from '../../src/nn/model.js';
import { Dense } from '../../src/nn/layers/core.js';
import { Adam } from '../../src/train/optimizers.js';
import { type Batch, type BatchSource, fit } from '../../src/train/fit.js';
import { NonFiniteError } from '../../src/train/nonfinite.js';
import { WeightSnapshot } from '../../src/train/callbacks.js';

useGpu();

function batch(seed: number, poison = false): Batch {
  const r = rng(seed);
  const x = Float32Array.from({ length: 8 * 4 }, () => r() - 0.5);
  if (poison) x[5] = NaN;
  return { x, y: Int32Array.from({ length: 8 }, (_, i) => i % 2), count: 8 };
}

/** Three clean batches per epoch; with `poisonEpoch`, that epoch gets a NaN batch in the middle. */
function source(poisonEpoch: number | null): BatchSource {
  return {
    async *batches(epoch: number) {
      yield batch(epoch * 10 + 1);
      if (epoch === poisonEpoch) yield batch(99, true);
      yield batch(epoch * 10 + 2);
      yield batch(epoch * 10 + 3);
    },
  };
}

describe('fit with non-finite losses', () => {
  let model: Sequential;
  const initial = new WeightSnapshot();
  beforeAll(() => {
    model = new Sequential([new Dense({ units: 6, activation: 'relu', name: 'nf_hidden' }), new Dense({ units: 2, activation: 'softmax', name: 'nf_out' })], { inputShape: [4], name: 'nf' });
    initial.take(model);
  });
  const weights = () => Promise.all(model.weights.map((w) => w.value.floats()));

  test("'stop' throws a NonFiniteError naming the epoch, after the earlier epochs' callbacks", async () => {
    initial.restore(model);
    const ended: number[] = [];
    const run = fit(model, source(1), {
      optimizer: new Adam(model.trainableParameters(), { lr: 1e-2 }), loss: 'sparseCategoricalCrossentropy', epochs: 3,
      callbacks: [{ onEpochEnd: (e) => void ended.push(e) }],
    });
    await expect(run).rejects.toThrow(NonFiniteError);
    await expect(run).rejects.toThrow(/(loss of epoch 1 is NaN|after epoch 1 the trainable weights hold NaN)/);
    expect(ended).toEqual([0]);
  });

  test("'skip' skips exactly the bad step: the same weights as training without it", async () => {
    initial.restore(model);
    const history = await fit(model, source(1), {
      optimizer: new Adam(model.trainableParameters(), { lr: 1e-2 }), loss: 'sparseCategoricalCrossentropy', epochs: 3, onNonFinite: 'skip',
      callbacks: [{ onEpochEnd: (e, logs) => expect(logs.skipped_steps).toBe(e === 1 ? 1 : 0) }],
    });
    expect(history.loss.every(Number.isFinite)).toBe(true);
    const skipped = await weights();
    initial.restore(model);
    await fit(model, source(null), { optimizer: new Adam(model.trainableParameters(), { lr: 1e-2 }), loss: 'sparseCategoricalCrossentropy', epochs: 3 });
    const clean = await weights();
    skipped.forEach((w, i) => expect(Array.from(w)).toEqual(Array.from(clean[i]!)));
    await expect(fit(model, source(null), { optimizer: new Adam(model.trainableParameters(), { lr: 1 }), loss: 'sparseCategoricalCrossentropy', epochs: 1, onNonFinite: 'ignore' as 'skip' })).rejects.toThrow(/onNonFinite must be 'stop' or 'skip'/);
  });
});
