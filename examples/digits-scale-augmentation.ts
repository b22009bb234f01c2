/**
 * A trial on MNIST→USPS: how much of the domain gap is the digits' scale?
 *
 * MNIST digits sit in a 20×20 box centred in 28×28; USPS digits fill their 16×16 frame, so resized to 28×28
 * (the protocol) they are about 1.4× larger and touch the border. This trial gives the source a fixed set of
 * extra views of each of its 2,000 images: view 0 is the image itself, the others are zoomed in by a random
 * factor in [1, maxZoom] about the centre and shifted by up to ±2 pixels (bilinear, zero outside), then trains
 * source-only or DANN (per-domain batch norm, λ ≤ lambdaMax) for the same number of steps as the 20-epoch
 * trials of the README (views × 2,000 images / 64 per step × 20 / views epochs = 620 steps).
 *
 *   npx tsx examples/digits-scale-augmentation.ts source-only|dann [views 5] [maxZoom 1.45] [lambdaMax 0.3] [seed 1]
 *
 * The views are made once, in plain TypeScript, before training (a static augmentation: every method sees the
 * same images).
 */
import { init } from '../src/gpu/runtime.js';
import { loadDomain, sampleDomain } from '../src/data/domain-spec.js';
import { adapt } from '../src/train/adapt.js';
import { ArgumentError } from '../src/errors.js';

const [methodArg, viewsArg = '5', zoomArg = '1.45', lambdaArg = '0.3', seedArg = '1'] = process.argv.slice(2);
if (methodArg !== 'dann' && methodArg !== 'source-only') {
  throw new ArgumentError(`digits-scale-augmentation: the first argument must be 'source-only' or 'dann'; got '${methodArg}'.`);
}
const method = methodArg;
const [views, maxZoom, lambdaMax, seed] = [Number(viewsArg), Number(zoomArg), Number(lambdaArg), Number(seedArg)];
if (!Number.isInteger(views) || views < 1 || !(maxZoom >= 1) || !(lambdaMax >= 0) || !Number.isInteger(seed) || seed < 0) {
  throw new ArgumentError(`digits-scale-augmentation: expected views (integer ≥ 1), maxZoom (≥ 1), lambdaMax (≥ 0), seed (integer ≥ 0); got ${process.argv.slice(3).join(' ')}.`);
}

/** A linear congruential generator in [0, 1), seeded (the views are reproducible). */
function uniform(seedValue: number): () => number {
  let s = (12345 + seedValue) % 2147483648;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
}

/** `image` [h, w] zoomed by `zoom` about its centre and shifted by (dx, dy) pixels, bilinear, zero outside. */
function zoomShift(image: Float32Array, h: number, w: number, zoom: number, dx: number, dy: number): Float32Array {
  const out = new Float32Array(h * w);
  const at = (y: number, x: number) => (y >= 0 && y < h && x >= 0 && x < w ? image[y * w + x]! : 0);
  const [cy, cx] = [(h - 1) / 2, (w - 1) / 2];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const sx = (x - cx - dx) / zoom + cx;
      const sy = (y - cy - dy) / zoom + cy;
      const [x0, y0] = [Math.floor(sx), Math.floor(sy)];
      const [fx, fy] = [sx - x0, sy - y0];
      out[y * w + x] = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1));
    }
  }
  return out;
}

const source = sampleDomain(await loadDomain('mnist', { split: 'train' }), 2000, seed * 2 + 1);
const target = sampleDomain(await loadDomain('usps', { split: 'train' }), 1800, seed * 2 + 2);
const targetTest = await loadDomain('usps', { split: 'test' });
const [h, w] = source.imageShape as [number, number, number];
const per = h * w;
const rand = uniform(seed);
const images = new Float32Array(source.count * views * per);
const labels = new Int32Array(source.count * views);
for (let i = 0; i < source.count; i++) {
  const original = source.images.subarray(i * per, (i + 1) * per);
  for (let v = 0; v < views; v++) {
    const j = i * views + v;
    labels[j] = source.labels[i]!;
    const view = v === 0 ? original : zoomShift(original, h, w, 1 + rand() * (maxZoom - 1), rand() * 4 - 2, rand() * 4 - 2);
    images.set(view, j * per);
  }
}
const augmented = { ...source, images, labels, count: source.count * views };

await init();
const epochs = Math.max(1, Math.round(20 / views));
console.log(`${method}: ${source.count} MNIST images × ${views} views (zoom ≤ ${maxZoom}, shift ≤ 2 px) → USPS, ${epochs} epochs, λ ≤ ${lambdaMax}, seed ${seed}`);
const started = performance.now();
const result = await adapt(augmented, target, targetTest, {
  method, epochs, seed, batchSize: 128, optimizer: 'sgd', lr: 0.03, lambdaMax, batchNorm: true,
  onEpoch: (l) => console.log(`epoch ${l.epoch}/${epochs}  source acc ${l.sourceAccuracy.toFixed(4)}  target acc ${l.targetAccuracy.toFixed(4)}  domain acc ${l.domainAccuracy.toFixed(4)}  λ ${l.lambda.toFixed(3)}  ${l.seconds.toFixed(0)} s`),
});
console.log(`target accuracy ${result.history.at(-1)!.targetAccuracy.toFixed(4)} (${method}, seed ${seed}) in ${((performance.now() - started) / 1000).toFixed(0)} s`);
