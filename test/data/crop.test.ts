/** cropToAspectRatio: the largest centred window of the target aspect ratio (Keras's crop_to_aspect_ratio). */
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { cropToAspectRatio, type RgbImage } from '../../src/data/image.js';

/** An image whose pixel (x, y) holds (x, y, 0), so a crop's offset can be read off its first pixel. */
function coords(width: number, height: number): RgbImage {
  const data = new Float32Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set([x, y, 0], (y * width + x) * 3);
  return { width, height, data };
}

describe('cropToAspectRatio', () => {
  test('a landscape image to a square keeps the full height, centred', () => {
    const out = cropToAspectRatio(coords(40, 20), 224, 224);
    expect([out.width, out.height]).toEqual([20, 20]);
    expect(Array.from(out.data.subarray(0, 2))).toEqual([10, 0]);
    expect(Array.from(out.data.subarray(out.data.length - 3, out.data.length - 1))).toEqual([29, 19]);
  });

  test('a portrait image to a square keeps the full width; a matching ratio is returned as it is', () => {
    const out = cropToAspectRatio(coords(10, 31), 5, 5);
    expect([out.width, out.height, out.data[1]]).toEqual([10, 10, 10]);
    const same = coords(8, 4);
    expect(cropToAspectRatio(same, 16, 8)).toBe(same);
  });

  test('any size and ratio: the window fits, has the ratio (to rounding) and is a centred copy of the pixels', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }), (w, h, tw, th) => {
        const out = cropToAspectRatio(coords(w, h), tw, th);
        expect(out.width <= w && out.height <= h && out.width >= 1 && out.height >= 1).toBe(true);
        expect(out.width === w || out.height === h).toBe(true);
        expect(Math.abs(out.width * th - out.height * tw)).toBeLessThanOrEqual(Math.max(tw, th));
        const [x0, y0] = [out.data[0]!, out.data[1]!];
        expect(x0).toBe(Math.floor((w - out.width) / 2));
        expect(y0).toBe(Math.floor((h - out.height) / 2));
      }),
      { numRuns: 200 },
    );
  });
});
