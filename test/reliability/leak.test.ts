/**
 * No leaks over a long training run: 1000 steps of a small CNN (Conv2D → ReLU → MaxPool → Flatten → Dense,
 * batches of 8 images 8×8×1, Adam, softmax cross-entropy), each step one `tidy` as in src/train/fit.ts.
 *
 * Every 100 steps we read the loss (which waits for the GPU) and sample `memory()`. After the first 100
 * steps (warm-up: Adam's state, the pool's free lists) the live tensor count and the bytes in use must be
 * identical at every sample, and the pool must not have allocated a single new buffer: what a step frees is
 * exactly what the next step reuses. The second run adds gradient clipping and the non-finite guard
 * (src/train/clipping.ts, src/train/nonfinite.ts), whose temporaries must be freed as well.
 *
 * Run: npx vitest run test/reliability/leak.test.ts
 */
import { expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { randomData } from '../util/check.js';
import { tensor, write } from '../../src/tensor/create.js';
import { tidy } from '../../src/tensor/scope.js';
import { type MemoryInfo, memory } from '../../src/tensor/memory.js';
import { backward, softmaxCrossEntropy } from '../../src/ops/index.js';
import { Sequential } from '../../src/nn/model.js';
import { Activation, Dense, Flatten } from '../../src/nn/layers/core.js';
import { Conv2D } from '../../src/nn/layers/convolutional.js';
import { MaxPooling2D } from '../../src/nn/layers/pooling.js';
import { Adam } from '../../src/train/optimizers.js';
import { allFinite } from '../../src/train/nonfinite.js';

useGpu();

const STEPS = 1000;
const SAMPLE_EVERY = 100;
const BATCH = 8;
const CLASSES = 3;

test.each([
  ['plain Adam', {}, false],
  ['Adam with clipValue + globalClipNorm, and an allFinite guard each step', { clipValue: 1, globalClipNorm: 0.5 }, true],
] as const)(`memory is flat over ${STEPS} training steps of a small CNN: %s`, async (_, clipping, guard) => {
  const model = new Sequential(
    [
      new Conv2D({ filters: 4, kernelSize: 3, name: 'conv' }),
      new Activation({ activation: 'relu', name: 'relu' }),
      new MaxPooling2D({ poolSize: 2, name: 'pool' }),
      new Flatten({ name: 'flatten' }),
      new Dense({ units: CLASSES, name: 'dense' }),
    ],
    { inputShape: [8, 8, 1], name: 'leak_cnn' },
  );
  const optimizer = new Adam(model.trainableParameters(), { lr: 1e-2, ...clipping });
  // Inputs are overwritten each step, as a data loader would; a few fixed batches so the loss can fall.
  const batches = Array.from({ length: 4 }, (_, i) => ({
    x: randomData(BATCH * 64, 10 + i),
    y: Int32Array.from({ length: BATCH }, (_, j) => (i + j) % CLASSES),
  }));
  const x = tensor(batches[0]!.x, [BATCH, 8, 8, 1]).keep();
  const y = tensor(batches[0]!.y, [BATCH], 'i32').keep();

  const samples: Array<{ step: number; loss: number; mem: MemoryInfo }> = [];
  const start = performance.now();
  for (let step = 1; step <= STEPS; step++) {
    const b = batches[step % batches.length]!;
    write(x, b.x);
    write(y, b.y);
    const { loss, finite } = tidy(() => {
      optimizer.zeroGrad();
      const logits = model.call(x, { training: true });
      const l = softmaxCrossEntropy(logits, y);
      backward(l);
      // The guard a `--skip-nonfinite` loop would use: one GPU flag over the loss and every gradient.
      const ok = guard ? allFinite([l, ...model.trainableParameters().map((p) => p.grad!)]) : null;
      optimizer.step();
      return { loss: l, finite: ok };
    });
    if (step % SAMPLE_EVERY === 0) {
      const value = await loss.item(); // waits for the GPU to finish this step
      if (finite) expect(await finite.item()).toBe(1);
      loss.dispose();
      finite?.dispose();
      samples.push({ step, loss: value, mem: memory() });
    } else {
      loss.dispose();
      finite?.dispose();
    }
  }
  const seconds = (performance.now() - start) / 1000;
  console.log(`${STEPS} steps in ${seconds.toFixed(1)} s; memory at each sample:`);
  console.table(samples.map((s) => ({ step: s.step, loss: s.loss.toFixed(4), ...s.mem })));

  const [first, ...rest] = samples;
  for (const s of rest) {
    expect(s.mem.tensors, `live tensors at step ${s.step} vs step ${first!.step}`).toBe(first!.mem.tensors);
    expect(s.mem.bytesInUse, `bytes in use at step ${s.step} vs step ${first!.step}`).toBe(first!.mem.bytesInUse);
    expect(s.mem.bytesAllocated, `pool bytes allocated at step ${s.step} vs step ${first!.step}`).toBe(first!.mem.bytesAllocated);
  }
  // The run really trained (so the steps did their work): the loss is finite and fell.
  for (const s of samples) expect(Number.isFinite(s.loss)).toBe(true);
  expect(samples[samples.length - 1]!.loss).toBeLessThan(samples[0]!.loss);

  // And everything goes back: what is live afterwards is what was live before the model existed.
  optimizer.zeroGrad();
  optimizer.dispose();
  model.dispose();
  x.dispose();
  y.dispose();
  expect(memory().tensors).toBe(0);
  expect(memory().bytesInUse).toBe(0);
});
