/**
 * Extra views of a labelled domain: a static augmentation for domain adaptation (`graft adapt
 * --augment-views N --augment-zoom LO,HI --augment-shift PX`).
 *
 * Why: on MNIST ↔ USPS most of the gap is the digits' scale. MNIST digits sit in a 20×20 box centred in 28×28;
 * USPS digits fill their 16×16 frame, so resized to 28×28 they are about 1.4× larger and touch the border. A
 * source model that has seen its digits at the target's scale transfers far better (README, "The digits'
 * scale"): MNIST→USPS wants zooming in ([1, 1.45]), USPS→MNIST zooming out ([0.69, 1]).
 *
 * Each image gets `views` copies: view 0 is the image itself, the others are zoomed about the centre by a
 * factor uniform in [zoom[0], zoom[1]] and shifted by up to ±`shift` pixels in x and y (bilinear, zero outside,
 * since a digit's background is 0). The views are drawn once, from `seed`, before training, so every method
 * trained on the same seed sees the same images. The result is a new set of count × views images, the views of
 * image i at rows i·views … i·views + views − 1.
 */
import { ArgumentError } from '../errors.js';
import { mulberry32 } from '../ops/random.js';
import type { DigitSet } from './mnist.js';
import { IDENTITY, resampleImage } from './resample.js';

export interface ViewAugmentation {
  /** Images per original, the original included (1 = no augmentation). */
  views: number;
  /** Range of the zoom factor [low, high]; 1 keeps the scale. */
  zoom: [number, number];
  /** Largest shift in pixels, in each of x and y. */
  shift: number;
  seed: number;
}

/** Checks `aug`, naming the offending field. */
export function checkViewAugmentation(aug: ViewAugmentation, fn = 'augmentDomain'): void {
  const { views, zoom, shift, seed } = aug;
  if (!Number.isInteger(views) || views < 1) throw new ArgumentError(`${fn}: views must be an integer ≥ 1; got ${views}.`);
  if (zoom.length !== 2 || !(zoom[0] > 0) || !(zoom[1] >= zoom[0]) || !Number.isFinite(zoom[1])) {
    throw new ArgumentError(`${fn}: zoom must be a range [low, high] with 0 < low ≤ high; got [${zoom.join(', ')}].`);
  }
  if (!(shift >= 0) || !Number.isFinite(shift)) throw new ArgumentError(`${fn}: shift must be a finite number of pixels ≥ 0; got ${shift}.`);
  if (!Number.isInteger(seed) || seed < 0) throw new ArgumentError(`${fn}: seed must be a non-negative integer; got ${seed}.`);
}

/** `set` with `views − 1` zoomed and shifted views added after each image (see the header). */
export function augmentDomain<T extends DigitSet>(set: T, aug: ViewAugmentation): T {
  checkViewAugmentation(aug);
  const { views, zoom, shift, seed } = aug;
  if (views === 1) return set;
  const [h, w, c] = set.imageShape;
  const per = h * w * c;
  const random = mulberry32(seed);
  const between = (lo: number, hi: number) => lo + random() * (hi - lo);
  const images = new Float32Array(set.count * views * per);
  const labels = new Int32Array(set.count * views);
  for (let i = 0; i < set.count; i++) {
    const original = set.images.subarray(i * per, (i + 1) * per);
    for (let v = 0; v < views; v++) {
      const j = i * views + v;
      labels[j] = set.labels[i]!;
      if (v === 0) {
        images.set(original, j * per);
        continue;
      }
      const placement = { ...IDENTITY, zoom: between(zoom[0], zoom[1]), shiftX: between(-shift, shift), shiftY: between(-shift, shift) };
      images.set(resampleImage(original, w, h, c, placement, 'zero'), j * per);
    }
  }
  return { ...set, images, labels, count: set.count * views };
}
