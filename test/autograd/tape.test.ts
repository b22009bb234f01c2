import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { expectClose } from '../util/check.js';
import { tensor } from '../../src/tensor/create.js';
import { memory } from '../../src/tensor/memory.js';
import { tidy } from '../../src/tensor/scope.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { detach, noGrad } from '../../src/autograd/tape.js';
import * as ops from '../../src/ops/index.js';
import { GraftError } from '../../src/errors.js';
import { runtime } from '../../src/gpu/runtime.js';

useGpu();

function param(data: number[], shape?: number[]): Tensor {
  const t = tensor(data, shape).keep();
  t.requiresGrad = true;
  return t;
}

describe('recording', () => {
  test('nothing is recorded when no input requires grad', () => {
    tidy(() => {
      const y = ops.exp(tensor([1, 2]));
      expect(y.node).toBeNull();
      expect(y.requiresGrad).toBe(false);
    });
  });

  test('noGrad() records nothing even for parameters', () => {
    const w = param([1, 2]);
    tidy(() => {
      const y = noGrad(() => ops.mul(w, w));
      expect(y.node).toBeNull();
      expect(ops.mul(w, w).node).not.toBeNull();
    });
    w.dispose();
  });

  test('detach() cuts the gradient path', async () => {
    const w = param([3]);
    tidy(() => {
      // y = w * detach(w): dy/dw = detach(w) = 3, not 2w = 6
      const y = ops.sum(ops.mul(w, detach(w)));
      ops.backward(y);
    });
    expect(Array.from(await w.grad!.data())).toEqual([3]);
    w.dispose();
  });
});

describe('backward', () => {
  test('a diamond accumulates both paths: d/dx (2x)(3x) = 12x', async () => {
    const x = param([1, -2, 0.5]);
    tidy(() => ops.backward(ops.sum(ops.mul(ops.mulScalar(x, 2), ops.mulScalar(x, 3)))));
    expectClose(await x.grad!.data(), [12, -24, 6]);
    x.dispose();
  });

  test('gradients accumulate across backward calls until cleared', async () => {
    const x = param([1, 2]);
    for (let i = 0; i < 3; i++) tidy(() => ops.backward(ops.sum(ops.mulScalar(x, 2))));
    expect(Array.from(await x.grad!.data())).toEqual([6, 6]);
    x.grad!.dispose();
    x.grad = null;
    x.dispose();
  });

  test('a 5,000-op chain runs without recursion', async () => {
    const x = param([1]);
    tidy(() => {
      let y: Tensor = x;
      for (let i = 0; i < 5000; i++) y = ops.addScalar(y, 0.001);
      ops.backward(ops.sum(y));
    });
    expect(Array.from(await x.grad!.data())).toEqual([1]);
    x.dispose();
  });

  test('backward twice on the same graph is an error; the graph was freed', () => {
    const x = param([1, 2]);
    tidy(() => {
      const y = ops.sum(ops.exp(x));
      ops.backward(y);
      expect(() => ops.backward(y)).toThrow(/already used by backward/);
    });
    x.dispose();
  });

  test('backward on a tensor that was not recorded explains why', () => {
    tidy(() => {
      expect(() => ops.backward(tensor([1]))).toThrow(GraftError);
      expect(() => ops.backward(tensor([1]))).toThrow(/was not produced by a recorded op/);
    });
  });

  test('a non-scalar root needs a seed of its shape', async () => {
    const x = param([1, 2, 3]);
    tidy(() => {
      const y = ops.mulScalar(x, 2);
      expect(() => ops.backward(y)).toThrow(/pass a gradient seed/);
      ops.backward(y, tensor([1, 0, -1]));
    });
    expect(Array.from(await x.grad!.data())).toEqual([2, 0, -2]);
    x.dispose();
  });

  test('the tape keeps what backward needs after tidy() disposes the forward handles', async () => {
    const x = param([0.5, 1.5]);
    const loss = tidy(() => ops.sum(ops.exp(ops.mul(x, x)))); // intermediates disposed here
    tidy(() => ops.backward(loss));
    const g = await x.grad!.data();
    expectClose(g, [0.5, 1.5].map((v) => 2 * v * Math.exp(v * v)), { rtol: 1e-5 });
    loss.dispose();
    x.dispose();
  });

  test('training steps leave no tensors behind', async () => {
    const w = param([0.1, 0.2, 0.3]);
    const step = () =>
      tidy(() => {
        const loss = ops.sum(ops.square(ops.sub(ops.mul(w, tensor([1, 2, 3])), tensor([1, 1, 1]))));
        ops.backward(loss);
        return loss;
      });
    const l0 = step();
    await l0.data();
    l0.dispose();
    w.grad!.dispose();
    w.grad = null;
    const before = memory();
    for (let i = 0; i < 100; i++) {
      step().dispose();
      w.grad!.dispose();
      w.grad = null;
    }
    await runtime().sync();
    const after = memory();
    expect(after.tensors).toBe(before.tensors);
    expect(after.bytesInUse).toBe(before.bytesInUse);
    w.dispose();
  });
});
