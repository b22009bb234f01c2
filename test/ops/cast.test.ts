import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { getFloat16 } from '@petamoriken/float16';
import { useGpu } from '../util/gpu.js';
import { gpuRuns, randomData, rng, seedArb } from '../util/check.js';
import { gpuGradients } from '../util/grad.js';
import { tensor } from '../../src/tensor/create.js';
import { type Tensor, liveTensorCount } from '../../src/tensor/tensor.js';
import { tidy } from '../../src/tensor/scope.js';
import { runtime } from '../../src/gpu/runtime.js';
import * as ops from '../../src/ops/index.js';
import { f16BitsRef, roundToF16Ref } from '../../src/ops/cast.js';
import { GraftError } from '../../src/errors.js';

useGpu();

/** The f16 bit patterns of an f16 tensor (two per u32 word, low half first). */
async function halfBits(t: Tensor): Promise<Uint16Array> {
  const d = await t.data();
  return new Uint16Array(d.buffer, d.byteOffset, t.size);
}

/**
 * f32 values across the whole f16 range and beyond: log-uniform magnitudes from 2^-30 (f16 subnormals
 * and underflow) to 2^18 (overflow), either sign, plus zeros, infinities and NaN.
 */
function hardValues(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, (_, i) => {
    if (i % 97 === 3) return [0, -0, Infinity, -Infinity, NaN, 65504, 65519.996, 65520, -65520, 2 ** -24, 2 ** -25, 2 ** -14][i % 12]!;
    return (r() < 0.5 ? -1 : 1) * 2 ** (-30 + 48 * r());
  });
}

/** Values exactly halfway between two neighbouring f16 numbers: round-to-nearest-even decides. */
function halfwayValues(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const view = new DataView(new ArrayBuffer(2));
  return Float32Array.from({ length: n }, () => {
    const bits = Math.floor(r() * 0x7bff); // a finite, non-negative f16 below the largest
    view.setUint16(0, bits, true);
    const lo = getFloat16(view, 0, true);
    view.setUint16(0, bits + 1, true);
    const hi = getFloat16(view, 0, true);
    return (r() < 0.5 ? -1 : 1) * (lo + hi) / 2;
  });
}

function expectSameHalves(got: Uint16Array, expected: Uint16Array, inputs: ArrayLike<number>): void {
  expect(got.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const nan = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    if (got[i] !== expected[i] && !(nan(got[i]!) && nan(expected[i]!))) {
      throw new Error(`element ${i}: ${inputs[i]} became f16 0x${got[i]!.toString(16)}, expected 0x${expected[i]!.toString(16)}`);
    }
  }
}

describe('f32 → f16 rounds like @petamoriken/float16 (nearest, ties to even)', () => {
  test('across magnitudes, subnormals, overflow and specials, odd and even lengths', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 3001 }), seedArb, async (n, seed) => {
        const x = hardValues(n, seed);
        const h = tidy(() => ops.cast(tensor(x, [n]), 'f16'));
        expect(h.dtype).toBe('f16');
        expectSameHalves(await halfBits(h), f16BitsRef(x), x);
        h.dispose();
      }),
      gpuRuns,
    );
  });

  test('ties go to the even neighbour', async () => {
    const x = halfwayValues(2049, 3);
    const h = tidy(() => ops.cast(tensor(x, [2049]), 'f16'));
    expectSameHalves(await halfBits(h), f16BitsRef(x), x);
    h.dispose();
  });

  test('the last word of an odd-length tensor keeps its high half zero', async () => {
    const h = tidy(() => ops.cast(tensor([1, 2, 3], [3]), 'f16'));
    const words = new Uint32Array(await runtime().read(h.buffer, 0, 8));
    expect(words[1]! >>> 16).toBe(0);
    expect(Array.from(await h.floats())).toEqual([1, 2, 3]);
    h.dispose();
  });
});

describe('f16 → f32', () => {
  test('is exact for all 65,536 bit patterns, and f16 → f32 → f16 is the identity', async () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const view = new DataView(all.buffer);
    const expected = Float32Array.from({ length: 65536 }, (_, i) => getFloat16(view, i * 2, true));
    // Upload the raw halves: decode on the CPU, then let `tensor` re-encode them as f16 (exact).
    const { f, back } = tidy(() => {
      const h = tensor(expected, [256, 256], 'f16');
      const f = ops.cast(h, 'f32');
      return { f, back: ops.cast(f, 'f16') };
    });
    const got = await f.data();
    for (let i = 0; i < 65536; i++) {
      if (!(Object.is(got[i], expected[i]) || (Number.isNaN(got[i]) && Number.isNaN(expected[i])))) {
        throw new Error(`f16 0x${i.toString(16)}: got ${got[i]}, expected ${expected[i]}`);
      }
    }
    expectSameHalves(await halfBits(back), all, expected);
    f.dispose();
    back.dispose();
  });

  test('f32 → f16 → f32 equals rounding on the CPU, for random shapes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 17 }), { minLength: 0, maxLength: 3 }), seedArb, async (shape, seed) => {
        const n = shape.reduce((a, b) => a * b, 1);
        const x = randomData(n, seed, -300, 300);
        const y = tidy(() => ops.cast(ops.cast(tensor(x, shape), 'f16'), 'f32'));
        expect(y.shape).toEqual(shape);
        expect(y.dtype).toBe('f32');
        expect(Array.from(await y.data())).toEqual(Array.from(roundToF16Ref(x), Math.fround));
        y.dispose();
      }),
      gpuRuns,
    );
  });
});

describe('gradient and dtype rules', () => {
  test('the gradient passes straight through, in f32', async () => {
    const data = randomData(37, 8);
    const { grads } = await gpuGradients(([x]) => ops.cast(ops.cast(x!, 'f16'), 'f32'), [{ data, shape: [37] }]);
    // L = Σ y·w with the weights gpuGradients draws (seed 99), so dL/dx = w exactly.
    expect(Array.from(grads[0]!)).toEqual(Array.from(randomData(37, 99)));
  });

  test('casting to the same dtype is a view, without a kernel', async () => {
    await runtime().sync();
    const before = runtime().counters.dispatches;
    const { x, y } = tidy(() => {
      const x = tensor([1, 2], [2]);
      return { x, y: ops.cast(x, 'f32') };
    });
    expect(runtime().counters.dispatches).toBe(before);
    expect(y.storage).toBe(x.storage);
    x.dispose();
    y.dispose();
  });

  test('errors name the op, the dtype, and a missing feature', () => {
    tidy(() => {
      expect(() => ops.cast(tensor([1], [1], 'i32'), 'f16')).toThrow(/cast: .*dtype i32; expected f32 or f16/);
      expect(() => ops.cast(tensor([1], [1]), 'i32' as 'f16')).toThrow(/cast: target dtype 'i32' is not supported/);
      const features = runtime().gpu.features;
      features.f16 = false;
      try {
        expect(() => ops.cast(tensor([1], [1]), 'f16')).toThrow(GraftError);
        expect(() => ops.cast(tensor([1], [1]), 'f16')).toThrow(/needs the WebGPU feature 'shader-f16'/);
      } finally {
        features.f16 = true;
      }
    });
  });

  test('GPU memory stays flat', async () => {
    await runtime().sync();
    const before = liveTensorCount();
    tidy(() => {
      ops.cast(ops.cast(tensor(randomData(9, 1), [9]), 'f16'), 'f32');
    });
    expect(liveTensorCount()).toBe(before);
  });
});
