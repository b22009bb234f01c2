/**
 * USPS handwritten digits (the ESL book's copy, ../shared/data/usps/zip.{train,test}.gz; see its README).
 *
 * Format: text, optionally gzipped, one image per line: the label (written as a float, e.g. "6.0000") and then
 * 256 grey values in −1..1, row-major 16×16. `loadUsps` maps the values to [0, 1] by (v + 1) / 2 and returns
 * the same DigitSet shape as the MNIST loaders: images [n, 16, 16, 1] (NHWC) and i32 labels 0..9.
 *
 * For the MNIST ↔ USPS domain-adaptation protocol both domains must share one input size; `resizeDigits`
 * resamples a DigitSet bilinearly (half-pixel centres, as image.ts's resizeBilinear) to 28×28 or any size.
 */
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { GraftError, GraftFormatError } from '../errors.js';
import type { DigitSet } from './mnist.js';

const SIDE = 16;
const PIXELS = SIDE * SIDE;

/** Parses USPS text (already decompressed); `file` names the source in error messages. */
export function parseUsps(text: string, file: string): DigitSet {
  const lines = text.split('\n');
  const rows: number[][] = [];
  const lineNumbers: number[] = [];
  lines.forEach((line, i) => {
    const trimmed = line.trim();
    if (trimmed === '') return;
    const fields = trimmed.split(/\s+/).map(Number);
    if (fields.length !== PIXELS + 1) {
      throw new GraftFormatError(`${file}:${i + 1}: expected a label and ${PIXELS} values, got ${fields.length} fields.`);
    }
    rows.push(fields);
    lineNumbers.push(i + 1);
  });
  const count = rows.length;
  if (count === 0) throw new GraftFormatError(`${file}: no images found (expected lines of a label and ${PIXELS} values).`);
  const images = new Float32Array(count * PIXELS);
  const labels = new Int32Array(count);
  rows.forEach((fields, r) => {
    const where = `${file}:${lineNumbers[r]}`;
    const label = fields[0]!;
    if (!Number.isInteger(label) || label < 0 || label > 9) {
      throw new GraftFormatError(`${where}: label must be an integer 0..9, got '${label}'.`);
    }
    labels[r] = label;
    for (let p = 0; p < PIXELS; p++) {
      const v = fields[p + 1]!;
      if (!(v >= -1 && v <= 1)) throw new GraftFormatError(`${where}: value ${p + 1} must be a number in −1..1, got '${v}'.`);
      images[r * PIXELS + p] = (v + 1) / 2;
    }
  });
  return { images, labels, count, imageShape: [SIDE, SIDE, 1] };
}

/** Loads a USPS file (gzipped or plain text). */
export function loadUsps(file: string): DigitSet {
  if (!existsSync(file)) throw new GraftError(`USPS file not found: ${file}. Expected the data described in ../shared/data/README.md.`);
  let bytes: Uint8Array = readFileSync(file);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new GraftFormatError(`${file}: corrupt gzip data (${(e as Error).message}).`);
    }
  }
  return parseUsps(new TextDecoder().decode(bytes), file);
}

/** Bilinearly resamples single-channel digits to size × size (28 for the MNIST ↔ USPS protocol). */
export function resizeDigits(set: DigitSet, size = 28): DigitSet {
  const [h, w, c] = set.imageShape;
  if (c !== 1) throw new GraftError(`resizeDigits: expects single-channel images, got imageShape [${set.imageShape.join(', ')}].`);
  const out = new Float32Array(set.count * size * size);
  const sx = w / size, sy = h / size;
  for (let n = 0; n < set.count; n++) {
    const src = n * h * w, dst = n * size * size;
    for (let y = 0; y < size; y++) {
      const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), h - 1);
      const y0 = Math.floor(fy), y1 = Math.min(y0 + 1, h - 1), wy = fy - y0;
      for (let x = 0; x < size; x++) {
        const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), w - 1);
        const x0 = Math.floor(fx), x1 = Math.min(x0 + 1, w - 1), wx = fx - x0;
        const p = (yy: number, xx: number) => set.images[src + yy * w + xx]!;
        const top = p(y0, x0) * (1 - wx) + p(y0, x1) * wx;
        const bottom = p(y1, x0) * (1 - wx) + p(y1, x1) * wx;
        out[dst + y * size + x] = top * (1 - wy) + bottom * wy;
      }
    }
  }
  return { images: out, labels: set.labels, count: set.count, imageShape: [size, size, 1] };
}
