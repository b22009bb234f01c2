/**
 * The resampler behind both augmentations (src/data/resample.ts) and the digit domains' zoomed and shifted
 * views (src/data/domain-augment.ts).
 *
 * resampleImage is checked against exact answers: the identity, mirror images, whole-pixel shifts (the array
 * moved, zeros or edge values coming in), a quarter turn, and zooms of a linear ramp (bilinear interpolation
 * reproduces a linear function exactly, so every output pixel whose source lies inside the image must equal
 * the ramp at the inverse-mapped point).
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { augmentDomain } from '../../src/data/domain-augment.js';
import type { DigitSet } from '../../src/data/mnist.js';
import { IDENTITY, resampleImage } from '../../src/data/resample.js';
import { ArgumentError } from '../../src/errors.js';
import { expectClose, randomData } from '../util/check.js';

const sizeArb = fc.integer({ min: 1, max: 12 });

describe('resampleImage', () => {
  test('the identity placement returns the image, with either fill', () => {
    fc.assert(
      fc.property(sizeArb, sizeArb, fc.constantFrom(1, 3), fc.integer({ min: 1, max: 1000 }), (w, h, c, seed) => {
        const img = randomData(w * h * c, seed);
        expect(resampleImage(img, w, h, c, IDENTITY, 'zero')).toEqual(img);
        expect(resampleImage(img, w, h, c, IDENTITY, 'edge')).toEqual(img);
      }),
    );
  });

  test('flip mirrors each row', () => {
    fc.assert(
      fc.property(sizeArb, sizeArb, fc.constantFrom(1, 3), fc.integer({ min: 1, max: 1000 }), (w, h, c, seed) => {
        const img = randomData(w * h * c, seed);
        const out = resampleImage(img, w, h, c, { ...IDENTITY, flip: true }, 'zero');
        for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) {
          expect(out[(y * w + x) * c + k]).toBe(img[(y * w + (w - 1 - x)) * c + k]);
        }
      }),
    );
  });

  test('a whole-pixel shift moves the array; zeros or the edge pixels come in', () => {
    fc.assert(
      fc.property(sizeArb, sizeArb, fc.integer({ min: -4, max: 4 }), fc.integer({ min: -4, max: 4 }), fc.constantFrom<'zero' | 'edge'>('zero', 'edge'), fc.integer({ min: 1, max: 1000 }), (w, h, sx, sy, fill, seed) => {
        const img = randomData(w * h, seed);
        const out = resampleImage(img, w, h, 1, { ...IDENTITY, shiftX: sx, shiftY: sy }, fill);
        const clamp = (v: number, n: number) => Math.min(Math.max(v, 0), n - 1);
        for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
          const [ox, oy] = [x - sx, y - sy];
          const inside = ox >= 0 && ox < w && oy >= 0 && oy < h;
          const want = inside ? img[oy * w + ox]! : fill === 'zero' ? 0 : img[clamp(oy, h) * w + clamp(ox, w)]!;
          expect(out[y * w + x]).toBeCloseTo(want, 6);
        }
      }),
    );
  });

  test('a quarter turn of a square image rotates the array', () => {
    for (const n of [1, 2, 5, 8]) {
      const img = randomData(n * n, n);
      const out = resampleImage(img, n, n, 1, { ...IDENTITY, angle: Math.PI / 2 }, 'zero');
      // out(x, y) = img at R(−90°)·(x − c, y − c) + c = (y, n − 1 − x) in (x, y) order.
      const want = new Float32Array(n * n);
      for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) want[y * n + x] = img[(n - 1 - x) * n + y]!;
      expectClose(out, want, { atol: 1e-5 }, `quarter turn, ${n}×${n}`);
    }
  });

  test('zooming a linear ramp gives the ramp at the inverse-mapped point wherever that point is inside', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 16 }), fc.integer({ min: 2, max: 16 }), fc.double({ min: 0.5, max: 2, noNaN: true }), fc.double({ min: -3, max: 3, noNaN: true }), fc.double({ min: -3, max: 3, noNaN: true }), (w, h, zoom, shiftX, shiftY) => {
        const ramp = (x: number, y: number) => 0.25 * x - 0.5 * y + 1;
        const img = new Float32Array(w * h);
        for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) img[y * w + x] = ramp(x, y);
        const out = resampleImage(img, w, h, 1, { ...IDENTITY, zoom, shiftX, shiftY }, 'zero');
        const [cx, cy] = [(w - 1) / 2, (h - 1) / 2];
        for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
          const sx = (x - cx - shiftX) / zoom + cx, sy = (y - cy - shiftY) / zoom + cy;
          if (sx < 0 || sx > w - 1 || sy < 0 || sy > h - 1 || Math.floor(sx) + 1 > w - 1 || Math.floor(sy) + 1 > h - 1) continue;
          expect(out[y * w + x]).toBeCloseTo(ramp(sx, sy), 4);
        }
      }),
    );
  });
});

/** `count` images of a centred square of ink, side `side`, in a [size, size, 1] frame. */
function squares(count: number, size: number, side: number): DigitSet {
  const images = new Float32Array(count * size * size);
  const lo = Math.floor((size - side) / 2);
  for (let i = 0; i < count; i++) for (let y = lo; y < lo + side; y++) for (let x = lo; x < lo + side; x++) images[i * size * size + y * size + x] = 1;
  return { images, labels: Int32Array.from({ length: count }, (_, i) => i % 10), count, imageShape: [size, size, 1] };
}
const ink = (set: DigitSet, i: number) => {
  const per = set.imageShape[0] * set.imageShape[1];
  return set.images.subarray(i * per, (i + 1) * per).reduce((a, b) => a + b, 0);
};

describe('augmentDomain', () => {
  test('views per image: the original first, labels repeated, the same views for the same seed', () => {
    const set = squares(7, 20, 10);
    const aug = { views: 4, zoom: [0.8, 1.3] as [number, number], shift: 2, seed: 5 };
    const out = augmentDomain(set, aug);
    expect(out.count).toBe(28);
    expect(out.imageShape).toEqual([20, 20, 1]);
    for (let i = 0; i < 7; i++) {
      expect(out.images.subarray(i * 4 * 400, i * 4 * 400 + 400)).toEqual(set.images.subarray(i * 400, (i + 1) * 400));
      for (let v = 0; v < 4; v++) expect(out.labels[i * 4 + v]).toBe(set.labels[i]);
    }
    expect(augmentDomain(set, aug).images).toEqual(out.images);
    expect(augmentDomain(set, { ...aug, seed: 6 }).images).not.toEqual(out.images);
    expect(augmentDomain(set, { ...aug, views: 1 })).toBe(set);
  });

  test('zooming in enlarges the digits and zooming out shrinks them, by the square of the factor', () => {
    const set = squares(3, 28, 10);
    const grown = augmentDomain(set, { views: 2, zoom: [1.4, 1.4], shift: 0, seed: 1 });
    const shrunk = augmentDomain(set, { views: 2, zoom: [0.7, 0.7], shift: 0, seed: 1 });
    for (let i = 0; i < 3; i++) {
      // A square of side 10 scaled by z has area 100·z² (bilinear edges keep the area to within the rim).
      expect(ink(grown, 2 * i + 1) / ink(set, i)).toBeCloseTo(1.96, 1);
      expect(ink(shrunk, 2 * i + 1) / ink(set, i)).toBeCloseTo(0.49, 1);
    }
  });

  test('a zoom of 1 and no shift repeats the image; bad settings name the field', () => {
    const set = squares(2, 9, 3);
    const same = augmentDomain(set, { views: 3, zoom: [1, 1], shift: 0, seed: 2 });
    for (let j = 0; j < 6; j++) expect(same.images.subarray(j * 81, (j + 1) * 81)).toEqual(set.images.subarray(Math.floor(j / 3) * 81, Math.floor(j / 3) * 81 + 81));
    expect(() => augmentDomain(set, { views: 0, zoom: [1, 1], shift: 0, seed: 1 })).toThrow(/views/);
    expect(() => augmentDomain(set, { views: 2, zoom: [1.2, 1], shift: 0, seed: 1 })).toThrow(ArgumentError);
    expect(() => augmentDomain(set, { views: 2, zoom: [0, 1], shift: 0, seed: 1 })).toThrow(/zoom/);
    expect(() => augmentDomain(set, { views: 2, zoom: [1, 1], shift: -1, seed: 1 })).toThrow(/shift/);
  });
});
