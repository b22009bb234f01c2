/**
 * allFinite / checkFinite (src/train/nonfinite.ts, shaders/nonfinite.wgsl): NaN, +Inf and −Inf are caught
 * wherever they are, also in tensors split into windows; large finite values (up to the f32 maximum) and
 * subnormals are not flagged.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { randomData, seedArb } from '../util/check.js';
import { tensor } from '../../src/tensor/create.js';
import { tidy } from '../../src/tensor/scope.js';
import { memory } from '../../src/tensor/memory.js';
import { GraftError } from '../../src/errors.js';
import { setStorageBindingLimit } from '../../src/ops/kernel.js';
import { NonFiniteError, allFinite, allFiniteRef, checkFinite } from '../../src/train/nonfinite.js';

useGpu();

const F32_MAX = 3.4028234663852886e38;
const specialArb = fc.constantFrom(Number.NaN, Infinity, -Infinity, F32_MAX, -F32_MAX, 1e30, -1e-38, 1e-45, -0, 0);

async function flag(arrays: Float32Array[]): Promise<number> {
  const f = tidy(() => allFinite(arrays.map((a) => tensor(a))));
  const v = await f.item();
  f.dispose();
  return v;
}

describe('allFinite', () => {
  test('matches the reference with NaN / ±Inf / huge values planted at random places', async () => {
    const arrayArb = fc
      .tuple(fc.integer({ min: 1, max: 3000 }), seedArb, fc.array(fc.tuple(fc.nat(), specialArb), { maxLength: 3 }))
      .map(([n, seed, plants]) => {
        const a = randomData(n, seed, -1e3, 1e3);
        for (const [at, v] of plants) a[at % n] = v;
        return a;
      });
    await fc.assert(
      fc.asyncProperty(fc.array(arrayArb, { minLength: 1, maxLength: 4 }), async (arrays) => {
        expect(await flag(arrays)).toBe(allFiniteRef(arrays) ? 1 : 0);
      }),
      { numRuns: 25 },
    );
  });

  test.each([
    ['NaN', Number.NaN, 0],
    ['+Inf', Infinity, 0],
    ['−Inf', -Infinity, 0],
    ['the f32 maximum', F32_MAX, 1],
    ['minus the f32 maximum', -F32_MAX, 1],
  ])('one %s among 1000 values', async (_, v, expected) => {
    for (const at of [0, 517, 999]) {
      const a = randomData(1000, at + 1);
      a[at] = v;
      expect(await flag([new Float32Array(5), a])).toBe(expected);
    }
  });

  test('every NaN and Inf bit pattern is caught (signalling, negative, with payloads)', async () => {
    for (const bits of [0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0x7fbfffff, 0xffffffff]) {
      const a = new Float32Array(8).fill(1);
      new Uint32Array(a.buffer)[3] = bits;
      expect(await flag([a]), `bits 0x${bits.toString(16)}`).toBe(0);
    }
  });

  test('all f32 maxima (whose sum would overflow) are finite; an empty list is finite', async () => {
    expect(await flag([new Float32Array(4096).fill(F32_MAX)])).toBe(1);
    expect(await flag([])).toBe(1);
  });

  test('returns a rank-0 GPU tensor and leaves nothing else behind', () => {
    const x = tensor([1, 2, 3]);
    const before = memory();
    const f = allFinite([x, x]);
    expect(f.shape).toEqual([]);
    f.dispose();
    // Live tensors and bytes in use come back exactly; the pool may have grown a size class it lacked (that
    // depends on what earlier, randomly sized tests left in it), which is not a leak.
    const after = memory();
    expect({ tensors: after.tensors, bytesInUse: after.bytesInUse }).toEqual({ tensors: before.tensors, bytesInUse: before.bytesInUse });
    x.dispose();
  });

  test('tensors over the storage binding limit are checked in windows, up to their last element', async () => {
    setStorageBindingLimit(1024); // 256 floats a window
    try {
      for (const at of [0, 255, 256, 1000, 2999]) {
        const a = randomData(3000, at + 7);
        expect(await flag([a]), `all finite (${at})`).toBe(1);
        a[at] = at % 2 ? Infinity : Number.NaN;
        expect(await flag([a]), `bad value at ${at}`).toBe(0);
      }
    } finally {
      setStorageBindingLimit(null);
    }
  });

  test('rejects non-f32 tensors', () => {
    const i = tensor([1, 2], [2], 'i32');
    expect(() => allFinite([i])).toThrow(GraftError);
    i.dispose();
  });
});

describe('checkFinite', () => {
  test('passes finite tensors, and names the tensor, the count and the first bad index otherwise', async () => {
    const good = tensor([1, -F32_MAX, 3]);
    await expect(checkFinite('loss', good)).resolves.toBeUndefined();
    const bad = tensor([1, Number.NaN, 3, -Infinity]);
    await expect(checkFinite('dense/kernel grad', bad)).rejects.toThrow(NonFiniteError);
    await expect(checkFinite('dense/kernel grad', bad)).rejects.toThrow(/^dense\/kernel grad: 2 of 4 values of \[4\] are not finite \(the first, at flat index 1, is NaN\)/);
    good.dispose();
    bad.dispose();
  });
});
