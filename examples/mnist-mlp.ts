/**
 * An MLP on real MNIST, trained on WebGPU with Graft's engine: no layers API, just tensors, autograd and an
 * optimizer, so every step of a training loop is visible.
 *
 *   npm run demo:mnist                  # 784 → 512 → 10, Adam, 12 epochs, batch 64
 *   npx tsx examples/mnist-mlp.ts --epochs 3 --hidden 256
 *
 * Data (../shared/data/mnist, see its README): the 10,000 training images of the npm package mnist@1.1.0 for
 * training, and the official 10,000-image test set for the reported accuracy.
 */
import { parseArgs } from 'node:util';
import { init, runtime } from '../src/gpu/runtime.js';
import { adapterName } from '../src/gpu/device.js';
import { tensor } from '../src/tensor/create.js';
import { memory } from '../src/tensor/memory.js';
import { tidy } from '../src/tensor/scope.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { noGrad } from '../src/autograd/tape.js';
import { add, backward, dense, glorotUniform, permutation, softmaxCrossEntropy, zeros } from '../src/ops/index.js';
import { Adam } from '../src/train/optimizers.js';
import { type DigitSet, loadMnistTest, loadMnistTrain } from '../src/data/mnist.js';

const { values: opt } = parseArgs({
  options: {
    data: { type: 'string', default: '../shared/data/mnist' },
    epochs: { type: 'string', default: '12' },
    hidden: { type: 'string', default: '512' },
    batch: { type: 'string', default: '64' },
    lr: { type: 'string', default: '0.001' },
    seed: { type: 'string', default: '1' },
  },
});
const epochs = Number(opt.epochs);
const hidden = Number(opt.hidden);
const batchSize = Number(opt.batch);
const seed = Number(opt.seed);

await init();
console.log(`adapter: ${adapterName(runtime().gpu.info)}`);
const train = loadMnistTrain(opt.data!);
const test = loadMnistTest(opt.data!);
console.log(`MNIST: ${train.count} training images (npm mnist@1.1.0), ${test.count} test images (t10k IDX)`);

// Parameters: Glorot-uniform weights and zero biases, as Keras's Dense layer initialises them.
function parameter(t: Tensor, name: string): Tensor {
  t.keep().requiresGrad = true;
  t.name = name;
  return t;
}
const w1 = parameter(glorotUniform([784, hidden], seed), 'dense_1/kernel');
const b1 = parameter(zeros([hidden]), 'dense_1/bias');
const w2 = parameter(glorotUniform([hidden, 10], seed + 1), 'dense_2/kernel');
const b2 = parameter(zeros([10]), 'dense_2/bias');
const params = [w1, b1, w2, b2];
const optimizer = new Adam(params, { lr: Number(opt.lr) });

const logitsOf = (x: Tensor) => dense(dense(x, w1, b1, 'relu'), w2, b2);

function gather(set: DigitSet, order: ArrayLike<number>, start: number, count: number) {
  const x = new Float32Array(count * 784);
  const y = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const k = order[start + i]!;
    x.set(set.images.subarray(k * 784, (k + 1) * 784), i * 784);
    y[i] = set.labels[k]!;
  }
  return { x, y };
}

async function accuracy(set: DigitSet): Promise<number> {
  const order = Uint32Array.from({ length: set.count }, (_, i) => i);
  let correct = 0;
  for (let start = 0; start < set.count; start += 1000) {
    const count = Math.min(1000, set.count - start);
    const { x, y } = gather(set, order, start, count);
    const logits = noGrad(() => tidy(() => logitsOf(tensor(x, [count, 784]))));
    const z = await logits.floats();
    logits.dispose();
    for (let i = 0; i < count; i++) {
      let best = 0;
      for (let c = 1; c < 10; c++) if (z[i * 10 + c]! > z[i * 10 + best]!) best = c;
      if (best === y[i]) correct++;
    }
  }
  return correct / set.count;
}

const stepsPerEpoch = Math.floor(train.count / batchSize);
const t0 = performance.now();
for (let epoch = 1; epoch <= epochs; epoch++) {
  const e0 = performance.now();
  const order = permutation(train.count, seed * 1000 + epoch);
  let lossSum: Tensor | null = null;
  for (let s = 0; s < stepsPerEpoch; s++) {
    const { x, y } = gather(train, order, s * batchSize, batchSize);
    const loss = tidy(() => {
      optimizer.zeroGrad();
      const l = softmaxCrossEntropy(logitsOf(tensor(x, [batchSize, 784])), tensor(y, [batchSize], 'i32'));
      backward(l);
      optimizer.step();
      return l;
    });
    // Accumulate the epoch's loss on the GPU; read it once per epoch rather than stalling every step.
    const prev: Tensor | null = lossSum;
    lossSum = prev ? noGrad(() => add(prev, loss)) : loss;
    if (prev) {
      prev.dispose();
      loss.dispose();
    }
  }
  const meanLoss = (await lossSum!.item()) / stepsPerEpoch;
  lossSum!.dispose();
  const seconds = (performance.now() - e0) / 1000;
  const acc = await accuracy(test);
  console.log(
    `epoch ${String(epoch).padStart(2)}/${epochs}  loss ${meanLoss.toFixed(4)}  test accuracy ${acc.toFixed(4)}  ` +
      `${seconds.toFixed(1)} s (${((stepsPerEpoch * batchSize) / seconds).toFixed(0)} img/s)`,
  );
}
const finalAcc = await accuracy(test);
const m = memory();
console.log(`final test accuracy: ${finalAcc.toFixed(4)}  (${((performance.now() - t0) / 1000).toFixed(1)} s total)`);
console.log(`GPU memory: ${m.tensors} live tensors, ${(m.bytesInUse / 2 ** 20).toFixed(1)} MiB in use, ${(m.bytesAllocated / 2 ** 20).toFixed(1)} MiB pooled`);
optimizer.dispose();
for (const p of params) p.dispose();
