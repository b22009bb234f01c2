/**
 * BatchNorm folding (src/nn/folding.ts): a frozen Conv2D → BatchNormalization (→ ReLU) chain runs as one
 * convolution, with the same result as the three layers up to rounding, the same input gradient, and only
 * where nothing trains and no intermediate is asked for. The real ImageNet ResNet50, folded against
 * unfolded, is in test/models/resnet50-imagenet-parity.test.ts.
 */
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { tensor, write } from '../../src/tensor/create.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { runtime } from '../../src/gpu/runtime.js';
import { memory } from '../../src/tensor/memory.js';
import { backward, sum } from '../../src/ops/index.js';
import { input, Model } from '../../src/nn/model.js';
import { Conv2D } from '../../src/nn/layers/convolutional.js';
import { Activation, Add } from '../../src/nn/layers/core.js';
import { BatchNormalization } from '../../src/nn/layers/normalization.js';
import { withBatchNormFolding } from '../../src/nn/folding.js';
import { withReluFusion } from '../../src/nn/relu-fusion.js';
import { rng } from '../util/check.js';

useGpu();

let built = 0;
/** conv(3×3, bias) → BN → ReLU → conv(1×1, stride 2, no bias) → BN without γ/β, with non-trivial statistics. */
function chainModel(): Model {
  const p = `f${built++}_`;
  const x = input([9, 9, 3], `${p}input`);
  const c1 = new Conv2D({ filters: 4, kernelSize: 3, padding: 'same', name: `${p}conv1`, seed: 3 }).apply(x);
  const b1 = new BatchNormalization({ name: `${p}bn1`, epsilon: 1e-3 }).apply(c1);
  const r1 = new Activation({ activation: 'relu', name: `${p}relu1` }).apply(b1);
  const c2 = new Conv2D({ filters: 5, kernelSize: 1, strides: 2, useBias: false, name: `${p}conv2`, seed: 4 }).apply(r1);
  const b2 = new BatchNormalization({ name: `${p}bn2`, scale: false, center: false }).apply(c2);
  const m = new Model({ inputs: x, outputs: b2, name: `${p}model` });
  const r = rng(11);
  for (const w of m.weights) {
    const n = w.value.size;
    const values = Float32Array.from({ length: n }, () => (w.name === 'moving_variance' ? 0.2 + r() : w.name === 'gamma' ? 0.5 + r() : 2 * r() - 1));
    write(w.value, values);
  }
  return m;
}

/** The graph as written: no folding, and no BN → ReLU fusion either (its ReLU runs as its own kernel). */
const asWritten = <T>(fn: () => T): T => withBatchNormFolding(false, () => withReluFusion(false, fn));

const batch = (n: number) => tensor(Float32Array.from({ length: n * 9 * 9 * 3 }, (_, i) => Math.sin(i * 0.37)), [n, 9, 9, 3]);

/** Runs the model on x and returns its output and the kernels it dispatched. */
async function run(m: Model, x: Tensor, options = { training: false }): Promise<{ y: Float32Array; kernels: string[] }> {
  const p = runtime().profiler;
  p.start();
  const out = m.call(x, options);
  const records = await p.stop();
  const y = await out.floats();
  out.dispose();
  return { y, kernels: records.map((r) => r.kernel.split(/[[:]/)[0]!) };
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((w, v, i) => Math.max(w, Math.abs(v - b[i]!)), 0);

describe('BatchNorm folding', () => {
  test('a frozen chain runs as two convolutions, with the three-layer result up to rounding', async () => {
    const m = chainModel();
    m.trainable = false;
    const x = batch(2);
    const folded = await run(m, x);
    const plain = await asWritten(() => run(m, x));
    expect(plain.kernels).toContain('batchnorm');
    expect(plain.kernels).toContain('unary'); // the ReLU
    expect(folded.kernels).not.toContain('batchnorm');
    expect(folded.kernels.filter((k) => k.startsWith('conv2d') || k.startsWith('matmul'))).toHaveLength(2);
    expect(maxDiff(folded.y, plain.y)).toBeLessThan(1e-5);
    expect(maxDiff(folded.y, plain.y)).toBeGreaterThan(0); // really a different computation
    // Training mode does not matter to frozen layers: they normalise with their moving statistics.
    expect(maxDiff((await run(m, x, { training: true })).y, plain.y)).toBeLessThan(1e-5);
    x.dispose();
    m.dispose();
  });

  test('the folded weights are kept, recomputed after a write into their sources (only), and freed with the model', async () => {
    const before = memory().tensors;
    const m = chainModel();
    m.trainable = false;
    const x = batch(2);
    await run(m, x);
    const folds = (await run(m, x)).kernels; // second call: the kept folded weights, no folding dispatches
    expect(folds.filter((k) => k === 'binary' || k === 'unary')).toEqual([]);
    // A write into another tensor (a head's optimizer step, the next input batch) keeps them.
    const other = tensor(new Float32Array(4), [4]);
    write(other, [1, 2, 3, 4]);
    write(x, Float32Array.from({ length: x.size }, (_, i) => Math.cos(i)));
    expect((await run(m, x)).kernels.filter((k) => k === 'binary' || k === 'unary')).toEqual([]);
    other.dispose();
    // New statistics written into a BN: the next call must use them.
    const bn = m.layers.find((l) => l.name.endsWith('bn1')) as BatchNormalization;
    write(bn.movingMean!.value, [0.3, -0.2, 0.1, 0.5]);
    const after = await run(m, x);
    const plain = await asWritten(() => run(m, x));
    expect(maxDiff(after.y, plain.y)).toBeLessThan(1e-5);
    x.dispose();
    m.dispose();
    expect(memory().tensors).toBe(before);
  });

  test('the input gradient through a folded chain equals the unfolded one', async () => {
    const m = chainModel();
    m.trainable = false;
    const grad = async () => {
      const x = batch(2);
      x.requiresGrad = true;
      const y = m.call(x, { training: false });
      const loss = sum(y);
      backward(loss);
      const g = await x.grad!.floats();
      for (const t of [x, y, loss]) t.dispose();
      return g;
    };
    const folded = await grad();
    const plain = await asWritten(grad);
    expect(maxDiff(folded, plain)).toBeLessThan(1e-5);
    m.dispose();
  });

  test('a block end, conv → BN → Add(shortcut) → ReLU, runs as one convolution, also when the shortcut is computed after it', async () => {
    const p = `f${built++}_`;
    const x = input([6, 6, 4], `${p}input`);
    // An identity block: the shortcut is the block's input, computed before anything in the block.
    const shortcut = new Conv2D({ filters: 8, kernelSize: 1, activation: 'relu', name: `${p}stem`, seed: 5 }).apply(x);
    const a = new Conv2D({ filters: 4, kernelSize: 1, activation: 'relu', name: `${p}conv_a`, seed: 11 }).apply(shortcut);
    const c = new Conv2D({ filters: 8, kernelSize: 3, padding: 'same', name: `${p}conv`, seed: 6 }).apply(a);
    const b = new BatchNormalization({ name: `${p}bn` }).apply(c);
    const sum = new Add({ name: `${p}add` }).apply([b, shortcut]);
    const out = new Activation({ activation: 'relu', name: `${p}relu` }).apply(sum);
    // A block whose shortcut (three convolutions) is computed after `conv_late` in execution order: the folded
    // convolution waits for it (and `conv_late`'s input stays alive until then).
    const deep = [7, 8, 9].reduce((t, seed, i) => new Conv2D({ filters: 8, kernelSize: 1, name: `${p}deep${i}`, seed }).apply(t), x);
    const lateSum = new Add({ name: `${p}add_late` }).apply([new BatchNormalization({ name: `${p}bn_late` }).apply(new Conv2D({ filters: 8, kernelSize: 3, padding: 'same', name: `${p}conv_late`, seed: 10 }).apply(x)), deep]);
    const late = new Activation({ activation: 'relu', name: `${p}relu_late` }).apply(lateSum);
    const block = new Model({ inputs: x, outputs: out, name: `${p}block` });
    const lateBlock = new Model({ inputs: x, outputs: late, name: `${p}late` });
    const r = rng(3);
    for (const w of [...block.weights, ...lateBlock.weights]) {
      write(w.value, Float32Array.from({ length: w.value.size }, () => (w.name === 'moving_variance' ? 0.2 + r() : r() - 0.5)));
    }
    block.trainable = lateBlock.trainable = false;
    const xs = tensor(Float32Array.from({ length: 2 * 6 * 6 * 4 }, (_, i) => Math.sin(i * 0.7)), [2, 6, 6, 4]);
    for (const m of [block, lateBlock]) {
      await run(m, xs); // computes and keeps the folded weights (with binary and unary kernels of its own)
      const folded = await run(m, xs);
      const plain = await asWritten(() => run(m, xs));
      expect(maxDiff(folded.y, plain.y)).toBeLessThan(1e-5);
      expect(folded.kernels, m.name).not.toContain('binary'); // the residual add
      expect(folded.kernels, m.name).not.toContain('unary'); // its ReLU
      expect(folded.kernels).not.toContain('batchnorm');
    }
    xs.dispose();
    block.dispose();
    lateBlock.dispose();
  });

  test('not folded where something trains, or where the batch is too small for folding to pay', async () => {
    const m = chainModel();
    const x = batch(2);
    expect((await run(m, x)).kernels).toContain('batchnorm'); // trainable: BN's γ, β need their own gradient
    m.trainable = false;
    m.layers.find((l) => l.name.endsWith('bn1'))!.trainable = true;
    const partly = await run(m, x);
    expect(partly.kernels.filter((k) => k === 'batchnorm')).toHaveLength(1); // bn1 stays, bn2 folds
    x.dispose();
    m.trainable = false;
    // conv1's kernel is 3·3·3·4 = 108 values, its output 9·9·4 = 324 per image: folding pays from one image on.
    const one = batch(1);
    expect((await run(m, one)).kernels).not.toContain('batchnorm');
    one.dispose();
    m.dispose();
    // A 1×1 map through 64 filters: a 4,096-value kernel, 64 outputs an image. Folding pays from 64 images on.
    const v = input([1, 1, 64], `f${built++}_v`);
    const wide = new Model({ inputs: v, outputs: new BatchNormalization({ name: `f${built}_bn` }).apply(new Conv2D({ filters: 64, kernelSize: 1, name: `f${built}_conv` }).apply(v)) });
    wide.trainable = false;
    for (const [n, folds] of [[2, false], [64, true]] as const) {
      const xs = tensor(new Float32Array(n * 64).fill(0.5), [n, 1, 1, 64]);
      expect((await run(wide, xs)).kernels.includes('batchnorm'), `batch ${n}`).toBe(!folds);
      xs.dispose();
    }
    wide.dispose();
  });
});
