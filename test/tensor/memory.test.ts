import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { scalar, tensor, write } from '../../src/tensor/create.js';
import { memory } from '../../src/tensor/memory.js';
import { scopeDepth, tidy } from '../../src/tensor/scope.js';
import { Tensor } from '../../src/tensor/tensor.js';
import * as ops from '../../src/ops/index.js';
import { DisposedError, GraftError, ShapeError } from '../../src/errors.js';

useGpu();

describe('tensors', () => {
  test('upload and read back f32, i32 and f16', async () => {
    const f = tensor([1.5, -2, 3], [3]);
    const i = tensor([-7, 0, 9], [3], 'i32');
    const h = tensor([0.5, 65504, -1e-3], [3], 'f16');
    expect(Array.from(await f.data())).toEqual([1.5, -2, 3]);
    expect(Array.from(await i.data())).toEqual([-7, 0, 9]);
    const hf = await h.floats();
    expect(hf[0]).toBe(0.5);
    expect(hf[1]).toBe(65504);
    expect(Math.abs(hf[2]! + 1e-3)).toBeLessThan(1e-6);
    expect(h.byteLength).toBe(6);
    for (const t of [f, i, h]) t.dispose();
  });

  test('shape checks name the operation', () => {
    expect(() => tensor([1, 2, 3], [2, 2])).toThrow(/tensor: 3 values do not fill shape \[2, 2\]/);
    const t = tensor([1, 2, 3, 4], [2, 2]);
    expect(() => t.view([3])).toThrow(ShapeError);
    expect(() => write(t, [1])).toThrow(/write: 1 values for tensor \[2, 2\]/);
    t.dispose();
  });

  test('a disposed tensor cannot be used, and disposing twice is harmless', async () => {
    const t = tensor([1, 2]);
    t.dispose();
    t.dispose();
    expect(() => ops.exp(t)).toThrow(DisposedError);
    await expect(t.data()).rejects.toThrow(/already disposed/);
  });

  test('item() reads a scalar and refuses a vector', async () => {
    const s = scalar(4.25);
    expect(await s.item()).toBe(4.25);
    const v = tensor([1, 2]);
    await expect(v.item()).rejects.toThrow(/item\(\): tensor has shape \[2\]/);
    s.dispose();
    v.dispose();
  });

  test('views share storage: the buffer is freed only when the last handle goes', async () => {
    const before = memory();
    const t = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const v = t.view([3, 2]);
    t.dispose();
    expect(Array.from(await v.data())).toEqual([1, 2, 3, 4, 5, 6]);
    expect(memory().bytesInUse).toBeGreaterThan(before.bytesInUse);
    v.dispose();
    expect(memory()).toMatchObject({ tensors: before.tensors, bytesInUse: before.bytesInUse });
  });
});

describe('tidy', () => {
  test('disposes intermediates and keeps what it returns', async () => {
    const before = memory();
    const out = tidy(() => {
      const a = tensor([1, 2, 3]);
      const b = ops.mul(a, a);
      return ops.add(b, a);
    });
    expect(memory().tensors).toBe(before.tensors + 1);
    expect(Array.from(await out.data())).toEqual([2, 6, 12]);
    out.dispose();
    expect(memory()).toMatchObject({ tensors: before.tensors, bytesInUse: before.bytesInUse });
  });

  test('nests, returns tensors inside objects and arrays, and respects keep()', () => {
    const before = memory().tensors;
    let kept: Tensor | null = null;
    const result = tidy(() => {
      const inner = tidy(() => {
        const x = tensor([1]);
        kept = tensor([2]).keep();
        return { x, list: [ops.neg(x)] };
      });
      expect(scopeDepth()).toBe(1);
      ops.exp(inner.x); // dropped
      return inner;
    });
    expect(memory().tensors).toBe(before + 3);
    expect(result.x.isDisposed).toBe(false);
    expect(result.list[0]!.isDisposed).toBe(false);
    result.x.dispose();
    result.list[0]!.dispose();
    kept!.dispose();
    expect(memory().tensors).toBe(before);
  });

  test('disposes everything when the function throws', () => {
    const before = memory().tensors;
    expect(() =>
      tidy(() => {
        tensor([1, 2, 3]);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(memory().tensors).toBe(before);
    expect(scopeDepth()).toBe(0);
  });

  test('refuses an async function', () => {
    expect(() => tidy(async () => tensor([1]))).toThrow(GraftError);
  });

  test('memory stays flat over many tidy iterations, and the pool reuses buffers', async () => {
    const x = tensor(new Float32Array(1000).fill(1)).keep();
    const step = () => tidy(() => ops.sum(ops.mul(ops.exp(x), x)));
    const first = step();
    await first.data();
    first.dispose();
    const warm = memory();
    for (let i = 0; i < 200; i++) {
      const s = step();
      if (i % 50 === 0) await s.data();
      s.dispose();
    }
    const after = memory();
    expect(after.tensors).toBe(warm.tensors);
    expect(after.bytesInUse).toBe(warm.bytesInUse);
    expect(after.bytesAllocated).toBe(warm.bytesAllocated);
    x.dispose();
  });
});

describe('Tensor.empty', () => {
  test('rejects negative or fractional dims', () => {
    expect(() => Tensor.empty([2, -1])).toThrow(/invalid shape \[2, -1\]/);
    expect(() => Tensor.empty([1.5])).toThrow(ShapeError);
  });
});
