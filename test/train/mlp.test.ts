/**
 * End-to-end checks of the engine on a small MLP: it must learn a non-linear problem, and 1,000 training
 * steps must leave GPU memory exactly flat.
 */
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { rng } from '../util/check.js';
import { tensor } from '../../src/tensor/create.js';
import { memory } from '../../src/tensor/memory.js';
import { tidy } from '../../src/tensor/scope.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { noGrad } from '../../src/autograd/tape.js';
import { runtime } from '../../src/gpu/runtime.js';
import { backward, dense, glorotUniform, softmaxCrossEntropy, zeros } from '../../src/ops/index.js';
import { Adam } from '../../src/train/optimizers.js';

useGpu();

/** Two interleaved spirals: a classic problem no linear model can fit. */
function spirals(n: number, seed: number): { x: Float32Array; y: Int32Array } {
  const r = rng(seed);
  const x = new Float32Array(n * 2);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const cls = i % 2;
    const t = (i / n) * 3 * Math.PI + 0.5;
    const sign = cls === 0 ? 1 : -1;
    x[2 * i] = (sign * t * Math.cos(t)) / 10 + (r() - 0.5) * 0.05;
    x[2 * i + 1] = (sign * t * Math.sin(t)) / 10 + (r() - 0.5) * 0.05;
    y[i] = cls;
  }
  return { x, y };
}

function mlp(seed: number, hidden = 32) {
  const make = (t: Tensor) => {
    t.keep().requiresGrad = true;
    return t;
  };
  const params = [
    make(glorotUniform([2, hidden], seed)), make(zeros([hidden])),
    make(glorotUniform([hidden, hidden], seed + 1)), make(zeros([hidden])),
    make(glorotUniform([hidden, 2], seed + 2)), make(zeros([2])),
  ];
  const [w1, b1, w2, b2, w3, b3] = params as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
  const forward = (x: Tensor) => dense(dense(dense(x, w1, b1, 'relu'), w2, b2, 'relu'), w3, b3);
  return { params, forward };
}

describe('a small MLP', () => {
  test('learns two spirals to ≥ 97 % training accuracy', async () => {
    const n = 256;
    const { x, y } = spirals(n, 5);
    const net = mlp(11);
    const opt = new Adam(net.params, { lr: 0.01 });
    const xs = tensor(x, [n, 2]).keep();
    const ys = tensor(y, [n], 'i32').keep();
    let first = NaN;
    let last = NaN;
    for (let step = 0; step < 600; step++) {
      const loss = tidy(() => {
        opt.zeroGrad();
        const l = softmaxCrossEntropy(net.forward(xs), ys);
        backward(l);
        opt.step();
        return l;
      });
      if (step === 0) first = await loss.item();
      if (step === 599) last = await loss.item();
      loss.dispose();
    }
    const logits = noGrad(() => tidy(() => net.forward(xs)));
    const z = await logits.floats();
    logits.dispose();
    let correct = 0;
    for (let i = 0; i < n; i++) if ((z[2 * i + 1]! > z[2 * i]! ? 1 : 0) === y[i]) correct++;
    expect(first).toBeGreaterThan(0.6);
    expect(last).toBeLessThan(0.1);
    expect(correct / n).toBeGreaterThanOrEqual(0.97);
    opt.dispose();
    for (const p of [...net.params, xs, ys]) p.dispose();
  });

  test('1,000 training steps keep memory() flat: tensors, bytes in use and bytes allocated', async () => {
    const n = 64;
    const { x, y } = spirals(n, 9);
    const net = mlp(3, 16);
    const opt = new Adam(net.params, { lr: 0.005 });
    const step = () => {
      const loss = tidy(() => {
        opt.zeroGrad();
        // New input tensors every step, as a data loader would make them.
        const l = softmaxCrossEntropy(net.forward(tensor(x, [n, 2])), tensor(y, [n], 'i32'));
        backward(l);
        opt.step();
        return l;
      });
      return loss;
    };
    // Warm up: optimizer state and the pool's free lists reach their steady state.
    for (let i = 0; i < 5; i++) step().dispose();
    await runtime().sync();
    const before = memory();
    const samples: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const l = step();
      if (i % 100 === 99) {
        samples.push(await l.item());
        const m = memory();
        expect(m.tensors).toBe(before.tensors + 1); // the loss just returned
        expect(m.bytesInUse).toBe(before.bytesInUse + 16);
      }
      l.dispose();
    }
    await runtime().sync();
    expect(memory()).toEqual(before);
    expect(samples.every(Number.isFinite)).toBe(true);
    opt.dispose();
    for (const p of net.params) p.dispose();
  });
});
