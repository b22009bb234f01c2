/**
 * f16 precision (src/nn/precision.ts): a model run with `withPrecision('f16', …)` keeps the activations and
 * weights of every layer call that needs no gradient in f16, returns f32 outputs close to the f32 run, keeps
 * what trains in f32 (a frozen base with a trainable head follows the f32 loss curve), and frees its f16
 * weight copies with the model. The real ImageNet ResNet50 in f16 against f32 (top-1 agreement) is in
 * test/models/resnet50-imagenet-parity.test.ts.
 */
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { rng } from '../util/check.js';
import { tensor, write } from '../../src/tensor/create.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { tidy } from '../../src/tensor/scope.js';
import { memory } from '../../src/tensor/memory.js';
import { noGrad } from '../../src/autograd/tape.js';
import { runtime } from '../../src/gpu/runtime.js';
import { backward, softmaxCrossEntropy } from '../../src/ops/index.js';
import { input, Model } from '../../src/nn/model.js';
import { Conv2D, ZeroPadding2D } from '../../src/nn/layers/convolutional.js';
import { Activation, Add, Dense } from '../../src/nn/layers/core.js';
import { BatchNormalization } from '../../src/nn/layers/normalization.js';
import { GlobalAveragePooling2D, MaxPooling2D } from '../../src/nn/layers/pooling.js';
import { checkPrecision, currentPrecision, halfCopies, withPrecision } from '../../src/nn/precision.js';
import { Adam } from '../../src/train/optimizers.js';

useGpu();

let built = 0;
/** A small residual network: pad → conv → BN → ReLU → max-pool → [conv → BN] + shortcut → ReLU → GAP → Dense(3). */
function residualModel(): { model: Model; base: Model } {
  const p = `p${built++}_`;
  const x = input([12, 12, 3], `${p}input`);
  const padded = new ZeroPadding2D({ padding: 1, name: `${p}pad` }).apply(x);
  const c1 = new Conv2D({ filters: 8, kernelSize: 3, name: `${p}conv1`, seed: 1 }).apply(padded);
  const b1 = new BatchNormalization({ name: `${p}bn1` }).apply(c1);
  const r1 = new Activation({ activation: 'relu', name: `${p}relu1` }).apply(b1);
  const pooled = new MaxPooling2D({ poolSize: 2, name: `${p}pool` }).apply(r1);
  const c2 = new Conv2D({ filters: 8, kernelSize: 1, name: `${p}conv2`, seed: 2 }).apply(pooled);
  const b2 = new BatchNormalization({ name: `${p}bn2` }).apply(c2);
  const sum = new Add({ name: `${p}add` }).apply([b2, pooled]);
  const r2 = new Activation({ activation: 'relu', name: `${p}relu2` }).apply(sum);
  const features = new GlobalAveragePooling2D({ name: `${p}gap` }).apply(r2);
  const logits = new Dense({ units: 3, name: `${p}head`, seed: 3 }).apply(features);
  const model = new Model({ inputs: x, outputs: logits, name: `${p}model` });
  const r = rng(5);
  for (const w of model.weights) {
    write(w.value, Float32Array.from({ length: w.value.size }, () => (w.name === 'moving_variance' ? 0.3 + r() : w.name === 'gamma' ? 0.5 + r() : r() - 0.5)));
  }
  return { model, base: new Model({ inputs: x, outputs: features, name: `${p}base` }) };
}

const images = (n: number, seed: number) => {
  const r = rng(seed);
  return tensor(Float32Array.from({ length: n * 12 * 12 * 3 }, () => r() * 2 - 1), [n, 12, 12, 3]);
};

async function run(m: Model, x: Tensor): Promise<{ y: Float32Array; dtype: string; kernels: string[] }> {
  const p = runtime().profiler;
  p.start();
  const out = noGrad(() => m.call(x));
  const records = await p.stop();
  const y = await out.floats();
  const dtype = out.dtype;
  out.dispose();
  return { y, dtype, kernels: records.map((r) => r.kernel) };
}

describe('f16 precision', () => {
  test('inference in f16: f32 outputs within f16 rounding of the f32 run, every kernel on f16 storage', async () => {
    const { model } = residualModel();
    const x = images(4, 1);
    const full = await run(model, x);
    const before = memory().tensors;
    const half = await withPrecision('f16', () => run(model, x));
    expect(currentPrecision()).toBe('f32');
    expect(half.dtype).toBe('f32');
    const scale = Math.max(...full.y.map(Math.abs));
    const worst = full.y.reduce((w, v, i) => Math.max(w, Math.abs(v - half.y[i]!)), 0);
    expect(worst / scale).toBeLessThan(1e-2);
    expect(worst).toBeGreaterThan(0); // it did run in f16
    // Every compute kernel of the f16 run used f16 storage, except the casts at the edges and the 3-unit head
    // (f16 runs on matmul v3, which needs a multiple of 4 columns: that layer stays f32).
    const plain = half.kernels.filter((k) => !k.includes('<f16>') && !k.startsWith('cast'));
    expect(plain, half.kernels.join(', ')).toEqual([expect.stringMatching(/^matmul_v2/)]);
    // The weights' f16 copies are kept (one per weight read in f16) until the model is disposed.
    expect(halfCopies().count).toBeGreaterThan(0);
    expect(memory().tensors).toBe(before + halfCopies().count);
    model.dispose();
    expect(halfCopies().count).toBe(0);
    x.dispose();
  });

  test('a frozen base with a trainable head: the base runs in f16, the head in f32, and the loss curve follows f32', async () => {
    const losses = async (precision: 'f32' | 'f16') => {
      const { model, base } = residualModel();
      base.trainable = false;
      const head = model.layers[model.layers.length - 1]!;
      const opt = new Adam(head.trainableWeights.map((w) => w.value), { lr: 0.05 });
      const x = images(6, 2);
      const y = tensor(Int32Array.from([0, 1, 2, 0, 1, 2]), [6], 'i32');
      const out: number[] = [];
      const kernels = new Set<string>();
      for (let step = 0; step < 12; step++) {
        const p = runtime().profiler;
        p.start();
        const loss = withPrecision(precision, () =>
          tidy(() => {
            opt.zeroGrad();
            const l = softmaxCrossEntropy(model.call(x, { training: true }), y);
            backward(l);
            opt.step();
            return l;
          }),
        );
        for (const r of await p.stop()) kernels.add(r.kernel.split('[')[0]!);
        out.push(await loss.item());
        loss.dispose();
      }
      opt.dispose();
      model.dispose();
      x.dispose();
      y.dispose();
      return { out, kernels: [...kernels] };
    };
    const full = await losses('f32');
    const half = await losses('f16');
    expect(half.kernels.some((k) => k.startsWith('conv2d_v3<f16>'))).toBe(true); // the base ran in f16
    expect(half.kernels.some((k) => k.startsWith('adam_update'))).toBe(true); // the head trained (in f32)
    expect(full.out[11]!).toBeLessThan(full.out[0]! * 0.9); // the head learns
    half.out.forEach((l, i) => expect(Math.abs(l - full.out[i]!), `step ${i}: f32 ${full.out[i]}, f16 ${l}`).toBeLessThan(0.01 * full.out[0]!));
  });

  test('the precision is checked by name', () => {
    expect(() => checkPrecision('f64')).toThrow(/'f32' or 'f16'/);
    expect(checkPrecision('f16')).toBe('f16'); // this adapter has shader-f16
  });
});
