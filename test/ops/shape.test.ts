import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { expectClose, gpuRuns, randomData, seedArb, shapeArb } from '../util/check.js';
import { checkGradients } from '../util/grad.js';
import { tensor } from '../../src/tensor/create.js';
import { liveTensorCount, sizeOf } from '../../src/tensor/tensor.js';
import { tidy } from '../../src/tensor/scope.js';
import { runtime } from '../../src/gpu/runtime.js';
import * as ops from '../../src/ops/index.js';
import { concatRef, padRaw, simplifyLayout, sliceRef, transposeRaw, transposeRef } from '../../src/ops/shape.js';
import { stridesOf } from '../../src/ops/kernel.js';
import { ArgumentError, ShapeError } from '../../src/errors.js';

useGpu();

/** Shapes of rank 0–3 from the shared arbitrary, or rank up to 6 with small dims (size-1 dims included). */
const anyShape = fc.oneof(shapeArb(3, 3000), fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 4, maxLength: 6 }));

/** A shape with a permutation of its dims. */
const shapeAndPerm = anyShape.chain((shape) =>
  fc.shuffledSubarray(shape.map((_, i) => i), { minLength: shape.length, maxLength: shape.length }).map((perm) => ({ shape, perm })),
);

/** A shape with a valid begin and size (size entries may be −1: to the end). */
const shapeAndSlice = anyShape.chain((shape) =>
  fc
    .tuple(...shape.map((d) => fc.integer({ min: 0, max: d }).chain((b) => fc.tuple(fc.constant(b), fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: d - b }))))))
    .map((bs) => ({ shape, begin: bs.map((x) => x[0]), size: bs.map((x) => x[1]) })),
);

/** 1–4 shapes equal except along `axis`. */
const concatCase = fc
  .tuple(fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 4 }), fc.nat(), fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 1, maxLength: 4 }))
  .map(([shape, a, extents]) => {
    const axis = a % shape.length;
    return { axis, shapes: extents.map((e) => shape.map((d, i) => (i === axis ? e : d))) };
  });

const resolve = (shape: number[], begin: number[], size: number[]) => size.map((s, d) => (s === -1 ? shape[d]! - begin[d]! : s));

describe('reshape and flatten', () => {
  test('reshape is a view of the same storage, with one -1 inferred', async () => {
    await fc.assert(
      fc.asyncProperty(anyShape, seedArb, fc.nat(), async (shape, seed, pick) => {
        const n = sizeOf(shape);
        const data = randomData(n, seed);
        const expected = [[n], [1, n], [n, 1], [1, n, 1]][pick % 4]!;
        const target = expected.map((d, i) => (i === pick % expected.length ? -1 : d));
        const { x, y } = tidy(() => {
          const x = tensor(data, shape);
          return { x, y: ops.reshape(x, target) };
        });
        expect(y.storage).toBe(x.storage);
        expect(y.shape).toEqual(expected);
        expect(Array.from(await y.data())).toEqual(Array.from(data));
        x.dispose();
        y.dispose();
      }),
      gpuRuns,
    );
  });

  test('flatten keeps dim 0', () => {
    tidy(() => {
      expect(ops.flatten(tensor(new Float32Array(2 * 3 * 5), [2, 3, 5])).shape).toEqual([2, 15]);
      expect(ops.flatten(tensor(new Float32Array(7), [7])).shape).toEqual([7, 1]);
      expect(ops.flatten(tensor(new Float32Array(4), [4, 1, 1])).shape).toEqual([4, 1]);
    });
  });

  test('gradient flows back through reshape', async () => {
    const data = randomData(24, 5);
    await checkGradients(([x]) => ops.mul(ops.reshape(x!, [4, -1]), ops.reshape(x!, [4, 6])), ([x]) => x!.map((v) => v * v), [{ data, shape: [2, 3, 4] }]);
    await checkGradients(([x]) => ops.square(ops.flatten(x!)), ([x]) => x!.map((v) => v * v), [{ data, shape: [2, 3, 4] }]);
  });

  test('errors name the shapes', () => {
    tidy(() => {
      const x = tensor(new Float32Array(6), [2, 3]);
      expect(() => ops.reshape(x, [4, -1])).toThrow(/reshape: cannot reshape \[2, 3\] \(6 elements\) into \[4, -1\]/);
      expect(() => ops.reshape(x, [5])).toThrow(/reshape: cannot reshape \[2, 3\] \(6 elements\) into \[5\] \(5 elements\)/);
      expect(() => ops.reshape(x, [-1, -1])).toThrow(/at most one -1/);
      expect(() => ops.flatten(tensor([1], []))).toThrow(ShapeError);
    });
  });
});

describe('transpose', () => {
  test('matches the reference for any permutation up to rank 6, both kernel versions', async () => {
    await fc.assert(
      fc.asyncProperty(shapeAndPerm, seedArb, async ({ shape, perm }, seed) => {
        const data = randomData(sizeOf(shape), seed);
        const expected = transposeRef(data, shape, perm);
        for (const version of [1, 2, undefined] as const) {
          const y = tidy(() => transposeRaw(tensor(data, shape), perm, version));
          expect(y.shape).toEqual(perm.map((p) => shape[p]));
          expectClose(await y.data(), expected, { rtol: 0, atol: 0 }, `transpose v${version} ${JSON.stringify(shape)} by ${perm}`);
          y.dispose();
        }
      }),
      gpuRuns,
    );
  });

  test('the tiled kernel handles matrices and batches that are not multiples of the tile', async () => {
    for (const [shape, perm] of [[[33, 17], [1, 0]], [[3, 65, 31], [0, 2, 1]], [[2, 5, 16, 17], [0, 2, 3, 1]], [[1, 1], [1, 0]]] as const) {
      const data = randomData(sizeOf(shape), 11);
      const y = tidy(() => transposeRaw(tensor(data, shape), perm, 2));
      expectClose(await y.data(), transposeRef(data, shape, perm), { rtol: 0, atol: 0 }, `tiled ${JSON.stringify(shape)}`);
      y.dispose();
    }
  });

  test('default perm reverses the dims; integer data moves bit-exactly', async () => {
    const bits = Uint32Array.from({ length: 60 }, (_, i) => (0x7fc00001 + i * 0x01010101) >>> 0); // includes NaN patterns
    const y = tidy(() => ops.transpose(tensor(bits, [3, 4, 5], 'u32')));
    expect(y.shape).toEqual([5, 4, 3]);
    expect(Array.from(await y.data())).toEqual(Array.from(transposeRef(bits, [3, 4, 5], [2, 1, 0])));
    y.dispose();
  });

  test('gradient is the transpose by the inverse permutation', async () => {
    await fc.assert(
      fc.asyncProperty(shapeAndPerm.filter(({ shape }) => sizeOf(shape) <= 200), seedArb, async ({ shape, perm }, seed) => {
        await checkGradients(([x]) => ops.transpose(x!, perm), ([x]) => transposeRef(x!, shape, perm), [{ data: randomData(sizeOf(shape), seed), shape }]);
      }),
      { numRuns: 8 },
    );
  });

  test('a bad permutation names the op, the perm and the shape', () => {
    tidy(() => {
      const x = tensor(new Float32Array(6), [2, 3]);
      expect(() => ops.transpose(x, [0, 0])).toThrow(ArgumentError);
      expect(() => ops.transpose(x, [0, 0])).toThrow(/transpose: perm \[0, 0\] is not a permutation of \[0, …, 1\] for input of shape \[2, 3\]/);
      expect(() => ops.transpose(x, [1, 0, 2])).toThrow(/perm \[1, 0, 2\]/);
      expect(() => ops.transpose(x, [0, 2])).toThrow(/perm \[0, 2\]/);
    });
  });
});

describe('slice', () => {
  test('matches the reference (size -1 = to the end)', async () => {
    await fc.assert(
      fc.asyncProperty(shapeAndSlice, seedArb, async ({ shape, begin, size }, seed) => {
        const data = randomData(sizeOf(shape), seed);
        const y = tidy(() => ops.slice(tensor(data, shape), begin, size));
        const s = resolve(shape, begin, size);
        expect(y.shape).toEqual(s);
        expectClose(await y.data(), sliceRef(data, shape, begin, s), { rtol: 0, atol: 0 }, 'slice');
        y.dispose();
      }),
      gpuRuns,
    );
  });

  test('a contiguous slice is a buffer copy, not a kernel', async () => {
    const data = randomData(5 * 7 * 3, 2);
    await runtime().sync();
    const before = runtime().counters.dispatches;
    const y = tidy(() => ops.slice(tensor(data, [5, 7, 3]), [2, 0, 0], [2, -1, -1]));
    const z = tidy(() => ops.slice(tensor(data, [5, 7, 3]), [3, 4, 0], [1, 2, 3]));
    expect(runtime().counters.dispatches).toBe(before);
    expectClose(await y.data(), sliceRef(data, [5, 7, 3], [2, 0, 0], [2, 7, 3]), { rtol: 0, atol: 0 });
    expectClose(await z.data(), sliceRef(data, [5, 7, 3], [3, 4, 0], [1, 2, 3]), { rtol: 0, atol: 0 });
    y.dispose();
    z.dispose();
  });

  test('gradient scatters into zeros', async () => {
    await fc.assert(
      fc.asyncProperty(shapeAndSlice.filter(({ shape }) => sizeOf(shape) <= 300), seedArb, async ({ shape, begin, size }, seed) => {
        const s = resolve(shape, begin, size);
        await checkGradients(([x]) => ops.slice(x!, begin, size), ([x]) => sliceRef(x!, shape, begin, s), [{ data: randomData(sizeOf(shape), seed), shape }]);
      }),
      { numRuns: 10 },
    );
  });

  test('padRaw places x at an offset in zeros', async () => {
    const data = randomData(2 * 3, 4);
    const y = tidy(() => padRaw(tensor(data, [2, 3]), [4, 5], [1, 2]));
    const expected = new Float64Array(20);
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) expected[(i + 1) * 5 + j + 2] = data[i * 3 + j]!;
    expectClose(await y.data(), expected, { rtol: 0, atol: 0 });
    y.dispose();
  });

  test('out-of-range begin or size names the dim and the input shape', () => {
    tidy(() => {
      const x = tensor(new Float32Array(12), [3, 4]);
      expect(() => ops.slice(x, [0, 5], [1, -1])).toThrow(/slice: begin\[1\] = 5 is out of range \[0, 4\] for dim 1 of the input \[3, 4\]/);
      expect(() => ops.slice(x, [1, 2], [3, 1])).toThrow(/slice: begin\[0\] \+ size\[0\] = 1 \+ 3 exceeds dim 0 of the input \[3, 4\] \(size 3\)/);
      expect(() => ops.slice(x, [-1, 0], [1, 1])).toThrow(ShapeError);
      expect(() => ops.slice(x, [0], [1])).toThrow(/one entry per dim/);
    });
  });
});

describe('concat', () => {
  test('matches the reference along any axis', async () => {
    await fc.assert(
      fc.asyncProperty(concatCase, seedArb, async ({ axis, shapes }, seed) => {
        const datas = shapes.map((s, k) => randomData(sizeOf(s), seed + k));
        const y = tidy(() => ops.concat(datas.map((d, k) => tensor(d, shapes[k])), axis));
        const ref = concatRef(datas.map((data, k) => ({ data, shape: shapes[k]! })), axis);
        expect(y.shape).toEqual(ref.shape);
        expectClose(await y.data(), ref.data, { rtol: 0, atol: 0 }, 'concat');
        y.dispose();
      }),
      gpuRuns,
    );
  });

  test('along the outermost axis it is buffer copies, not kernels; negative axes count from the end', async () => {
    const a = randomData(6, 1);
    const b = randomData(9, 2);
    await runtime().sync();
    const before = runtime().counters.dispatches;
    const y = tidy(() => ops.concat([tensor(a, [2, 3]), tensor(b, [3, 3])], -2));
    expect(runtime().counters.dispatches).toBe(before);
    expect(Array.from(await y.data())).toEqual([...a, ...b]);
    y.dispose();
  });

  test('gradients are the slices of g', async () => {
    await fc.assert(
      fc.asyncProperty(concatCase.filter(({ shapes }) => shapes.every((s) => sizeOf(s) > 0 && sizeOf(s) <= 150)), seedArb, async ({ axis, shapes }, seed) => {
        await checkGradients(
          (xs) => ops.concat(xs, axis),
          (xs) => concatRef(xs.map((data, k) => ({ data, shape: shapes[k]! })), axis).data,
          shapes.map((shape, k) => ({ data: randomData(sizeOf(shape), seed + k), shape })),
        );
      }),
      { numRuns: 8 },
    );
  });

  test('a mismatched tensor is named by its index', () => {
    tidy(() => {
      const a = tensor(new Float32Array(6), [2, 3]);
      const b = tensor(new Float32Array(8), [2, 4]);
      expect(() => ops.concat([a, a, b], 0)).toThrow(/concat: tensor 2 has shape \[2, 4\], which does not match tensor 0's \[2, 3\] outside axis 0/);
      expect(() => ops.concat([a, tensor(new Float32Array(6), [6])], 1)).toThrow(/tensor 1 has shape \[6\]/);
      expect(() => ops.concat([a, tensor(new Int32Array(6), [2, 3], 'i32')], 1)).toThrow(/tensor 1 has dtype i32; tensor 0 has f32/);
      expect(() => ops.concat([], 0)).toThrow(/at least one tensor/);
      expect(() => ops.concat([a], 2)).toThrow(/axis 2 is out of range for rank 2/);
    });
  });
});

test('simplifyLayout describes the same copy', () => {
  fc.assert(
    fc.property(shapeAndPerm, ({ shape, perm }) => {
      const outShape = perm.map((p) => shape[p]!);
      const inStrides = stridesOf(shape);
      const src = perm.map((p) => inStrides[p]!);
      const dst = stridesOf(outShape);
      const s = simplifyLayout(outShape, [src, dst]);
      const pairs = (sh: number[], a: number[], b: number[]) =>
        Array.from({ length: sizeOf(sh) }, (_, i) => {
          let rest = i, x = 0, y = 0;
          for (let d = sh.length - 1; d >= 0; d--) {
            const c = rest % sh[d]!;
            rest = Math.floor(rest / sh[d]!);
            x += c * a[d]!;
            y += c * b[d]!;
          }
          return `${x}:${y}`;
        });
      expect(pairs(s.shape, s.strides[0]!, s.strides[1]!)).toEqual(pairs(outShape, src, dst));
      expect(s.shape.every((d) => d > 1)).toBe(true);
    }),
    { numRuns: 50 },
  );
});

test('GPU memory stays flat', async () => {
  await runtime().sync();
  const before = liveTensorCount();
  const x = tensor(randomData(60, 1), [3, 4, 5]);
  x.requiresGrad = true;
  tidy(() => {
    const y = ops.concat([ops.slice(ops.transpose(ops.reshape(x, [4, 15]), [1, 0]), [1, 0], [-1, 4]), ops.reshape(ops.flatten(x), [15, 4])], 0);
    ops.backward(ops.sum(y));
  });
  x.dispose();
  await runtime().sync();
  expect(liveTensorCount()).toBe(before);
});
