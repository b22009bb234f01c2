/**
 * BatchNormalization → ReLU fusion (src/nn/relu-fusion.ts): where only a ReLU reads a BatchNorm's output,
 * the model runs one batchNorm with its fused ReLU and skips the Activation, in training and inference, with
 * the same bits as the graph as written, forward and backward; not where the BN's output is asked for or read
 * by anything else.
 */
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { rng } from '../util/check.js';
import { tensor, write } from '../../src/tensor/create.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { runtime } from '../../src/gpu/runtime.js';
import { memory } from '../../src/tensor/memory.js';
import { backward, sum, mul } from '../../src/ops/index.js';
import { input, Model } from '../../src/nn/model.js';
import { Conv2D } from '../../src/nn/layers/convolutional.js';
import { Activation, Add } from '../../src/nn/layers/core.js';
import { BatchNormalization } from '../../src/nn/layers/normalization.js';
import { withReluFusion } from '../../src/nn/relu-fusion.js';

useGpu();

let built = 0;
/**
 * conv → BN → ReLU → conv → BN → ReLU, then the second ReLU's output also feeds an Add with the first
 * (so the graph has both a fusable pair and a tensor read twice), in training mode with real weights.
 */
function twoBlocks(): { model: Model; names: { bn1: string; relu1: string } } {
  const p = `rf${built++}_`;
  const x = input([7, 7, 4], `${p}input`);
  const b1 = new BatchNormalization({ name: `${p}bn1` }).apply(new Conv2D({ filters: 8, kernelSize: 3, padding: 'same', name: `${p}conv1`, seed: 1 }).apply(x));
  const r1 = new Activation({ activation: 'relu', name: `${p}relu1` }).apply(b1);
  const b2 = new BatchNormalization({ name: `${p}bn2` }).apply(new Conv2D({ filters: 8, kernelSize: 3, padding: 'same', name: `${p}conv2`, seed: 2 }).apply(r1));
  const r2 = new Activation({ activation: 'relu', name: `${p}relu2` }).apply(b2);
  const y = new Add({ name: `${p}add` }).apply([r1, r2]);
  const model = new Model({ inputs: x, outputs: y, name: `${p}model` });
  const r = rng(5);
  for (const w of model.weights) {
    const values = Float32Array.from({ length: w.value.size }, () => (w.name === 'gamma' ? 0.5 + r() : w.name === 'moving_variance' ? 0.5 + r() : 2 * r() - 1));
    write(w.value, values);
  }
  return { model, names: { bn1: `${p}bn1`, relu1: `${p}relu1` } };
}

const data = (n: number, seed: number) => {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => 2 * r() - 1);
};

/** Output, input gradient, the kernels dispatched and the tensors the tape held after the forward pass. */
async function step(m: Model, x: Tensor, training: boolean) {
  const p = runtime().profiler;
  const weights = tensor(data(2 * 7 * 7 * 8, 9), [2, 7, 7, 8]);
  p.start();
  const y = m.call(x, { training });
  const heldAfterForward = memory().tensors;
  const loss = sum(mul(y, weights));
  backward(loss);
  const labels = (await p.stop()).map((r) => r.kernel);
  const kernels = labels.map((l) => l.split(/[[:]/)[0]!);
  const relus = labels.filter((l) => l.startsWith('unary') && l.includes('[OP=4,')).length;
  const out = { relus, y: await y.floats(), dx: await x.grad!.floats(), kernels, heldAfterForward };
  for (const t of [y, loss, weights]) t.dispose();
  // Gradients accumulate: clear them, so that the next step starts as this one did.
  for (const t of [x, ...m.weights.map((w) => w.value)]) {
    t.grad?.dispose();
    t.grad = null;
  }
  return out;
}

describe('BatchNormalization → ReLU fusion', () => {
  for (const training of [true, false]) {
    test(`${training ? 'training' : 'inference'}: the same bits forward and backward, one ReLU kernel fewer per pair, one tensor fewer on the tape`, async () => {
      const { model } = twoBlocks();
      const x = tensor(data(2 * 7 * 7 * 4, 3), [2, 7, 7, 4]).keep();
      x.requiresGrad = true;
      const plain = await withReluFusion(false, () => step(model, x, training));
      const fused = await step(model, x, training);
      expect(plain.relus).toBe(2);
      expect(fused.relus).toBe(0);
      // Backward: the ReLU masks (binary reluGrad) are gone; batch norm's dx applies them.
      expect(fused.kernels.filter((k) => k === 'binary').length).toBeLessThan(plain.kernels.filter((k) => k === 'binary').length);
      expect(Array.from(fused.y)).toEqual(Array.from(plain.y));
      expect(Array.from(fused.dx)).toEqual(Array.from(plain.dx));
      expect(fused.heldAfterForward).toBeLessThan(plain.heldAfterForward);
      x.dispose();
      model.dispose();
    });
  }

  test("not where the BN's output is a requested target (feature extraction at that layer)", async () => {
    const { model, names } = twoBlocks();
    const bn1 = model.getLayer(names.bn1).nodes[0]!.output;
    const relu1 = model.getLayer(names.relu1).nodes[0]!.output;
    const x = tensor(data(2 * 7 * 7 * 4, 4), [2, 7, 7, 4]);
    const p = runtime().profiler;
    p.start();
    const [bnOut, reluOut] = model.execute(new Map([[model.inputs[0]!, x]]), [bn1, relu1], { training: true });
    const relus = (await p.stop()).filter((r) => r.kernel.startsWith('unary') && r.kernel.includes('[OP=4,'));
    expect(relus).toHaveLength(1); // relu1 ran as written; relu2 is not needed
    const b = await bnOut!.floats();
    const r = await reluOut!.floats();
    expect(Array.from(r)).toEqual(Array.from(b, (v) => Math.max(v, 0)));
    for (const t of [x, bnOut!, reluOut!]) t.dispose();
    model.dispose();
  });
});
