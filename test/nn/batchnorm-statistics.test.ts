import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { expectClose, randomData } from '../util/check.js';
import { tensor, write } from '../../src/tensor/create.js';
import { liveTensorCount } from '../../src/tensor/tensor.js';
import { batchStatsRef } from '../../src/ops/batchnorm.js';
import { BatchNormalization } from '../../src/nn/layers/normalization.js';
import { Dense } from '../../src/nn/layers/core.js';
import { Sequential } from '../../src/nn/model.js';
import { batchNormLayers, recomputeBatchNormStatistics } from '../../src/nn/batchnorm-statistics.js';
import { ArgumentError } from '../../src/errors.js';

useGpu();

const C = 3;
/** Three batches of [rows, C] whose channels have different offsets and spreads per batch. */
const BATCHES = [5, 8, 6].map((rows, b) => ({ rows, data: randomData(rows * C, 10 + b, -1, 1).map((v, i) => v * (1 + b + (i % C)) + 3 * b - (i % C)) }));

describe('recomputeBatchNormStatistics (AdaBN)', () => {
  test('moving statistics become the average of the batch statistics; γ, β and momentum are untouched', async () => {
    const bn = new BatchNormalization({ momentum: 0.99, name: 'bn' });
    const dense = new Dense({ units: C, seed: 1, useBias: false });
    const model = new Sequential([dense, bn], { inputShape: [C] });
    // The Dense layer is the identity, so the BN input is the data itself.
    write(dense.kernel!.value, Float32Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]));
    const gammaBefore = Array.from(await bn.gamma!.value.data());
    const live = liveTensorCount();
    const k = recomputeBatchNormStatistics(model, BATCHES.map((b) => tensor(b.data, [b.rows, C])));
    expect(k).toBe(3);
    expect(liveTensorCount()).toBe(live);
    const refs = BATCHES.map((b) => batchStatsRef(b.data, [b.rows, C]));
    const avg = (key: 'mean' | 'variance') => Array.from({ length: C }, (_, c) => refs.reduce((s, r) => s + r[key][c]!, 0) / refs.length);
    expectClose(await bn.movingMean!.value.data(), avg('mean'), { atol: 1e-5, rtol: 1e-4 });
    expectClose(await bn.movingVariance!.value.data(), avg('variance'), { atol: 1e-5, rtol: 1e-4 });
    expect(Array.from(await bn.gamma!.value.data())).toEqual(gammaBefore);
    expect(bn.momentumOverride).toBeNull();
    expect(bn.momentum).toBe(0.99);
    model.dispose();
  });

  test('finds batch norm inside nested models, skips frozen ones, and refuses a model without any', () => {
    const inner = new Sequential([new Dense({ units: 4, seed: 2 }), new BatchNormalization({ name: 'inner_bn' })], { inputShape: [2] });
    const frozen = new BatchNormalization({ name: 'frozen_bn' });
    const outer = new Sequential([inner, frozen], { inputShape: [2] });
    frozen.trainable = false;
    expect(batchNormLayers(outer).map((l) => l.name)).toEqual(['inner_bn']);
    const plain = new Sequential([new Dense({ units: 2, seed: 3 })], { inputShape: [2] });
    expect(() => recomputeBatchNormStatistics(plain, [])).toThrow(ArgumentError);
    expect(() => recomputeBatchNormStatistics(outer, [])).toThrow(/no batches/);
    outer.dispose();
    plain.dispose();
  });
});
