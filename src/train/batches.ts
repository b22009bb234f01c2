/**
 * Where training data comes from: a BatchSource yields the batches of one epoch. `arrayBatches` serves
 * in-memory arrays; `imageDatasetFromDirectory` (src/data) and the feature cache (feature-cache.ts) are
 * sources too. A batch holds either model inputs (`x`) or the values of intermediate tensors of the model
 * (`features`, cached activations of a frozen base), from which `Model.execute` runs the rest of the graph.
 */
import { ArgumentError, ShapeError } from '../errors.js';
import { permutation } from '../ops/index.js';
import type { SymbolicTensor } from '../nn/layer.js';

export interface Batch {
  /** [count, ...inputShape] flat, NHWC for images. Empty when `features` is given. */
  x: Float32Array;
  /** Values for intermediate tensors of the model, each [count, ...shape] flat, instead of `x`. */
  features?: ReadonlyMap<SymbolicTensor, Float32Array>;
  /** Class indices [count] (Int32Array) or one-hot rows [count, C] (Float32Array). */
  y: Int32Array | Float32Array;
  count: number;
}

export interface BatchSource {
  batches(epoch: number): AsyncIterable<Batch>;
  /** Examples per epoch, when known (progress bars use it for the ETA). */
  readonly size?: number;
}

export interface ArrayBatchesOptions {
  batchSize: number;
  /** Reshuffle every epoch (deterministically from `seed` and the epoch). Default false. */
  shuffle?: boolean;
  seed?: number;
  /** Shape of one example, batch excluded, e.g. [8] or [32, 32, 3]. */
  inputShape: readonly number[];
  /** Checks that class indices lie in [0, numClasses) or that one-hot rows have this width. */
  numClasses?: number;
}

/** Batches of in-memory arrays; the last batch of an epoch may be smaller (as in Keras). */
export function arrayBatches(x: Float32Array, y: Int32Array | Float32Array, options: ArrayBatchesOptions): BatchSource {
  const { batchSize, shuffle = false, seed = 0, inputShape, numClasses } = options;
  if (!Number.isInteger(batchSize) || batchSize <= 0) throw new ArgumentError(`arrayBatches: batchSize must be a positive integer, got ${batchSize}.`);
  const perExample = inputShape.reduce((a, b) => a * b, 1);
  const n = x.length / perExample;
  if (!Number.isInteger(n)) throw new ShapeError(`arrayBatches: x has ${x.length} values, not a multiple of the example size ${perExample} (inputShape [${inputShape.join(', ')}]).`);
  const width = y instanceof Int32Array ? 1 : y.length / n;
  if (!Number.isInteger(width) || (y instanceof Int32Array && y.length !== n)) {
    throw new ShapeError(`arrayBatches: ${n} examples but y has ${y.length} values (expected ${n} class indices or ${n} one-hot rows).`);
  }
  if (numClasses !== undefined) {
    if (y instanceof Float32Array && width !== numClasses) throw new ShapeError(`arrayBatches: one-hot rows have ${width} columns, expected numClasses = ${numClasses}.`);
    if (y instanceof Int32Array) {
      const bad = y.findIndex((c) => c < 0 || c >= numClasses);
      if (bad >= 0) throw new ArgumentError(`arrayBatches: label ${y[bad]} at index ${bad} is outside [0, ${numClasses}).`);
    }
  }
  return {
    size: n,
    async *batches(epoch: number) {
      const order = shuffle ? permutation(n, (seed * 100_003 + epoch) >>> 0) : null;
      for (let start = 0; start < n; start += batchSize) {
        const count = Math.min(batchSize, n - start);
        const bx = new Float32Array(count * perExample);
        const by = y instanceof Int32Array ? new Int32Array(count) : new Float32Array(count * width);
        for (let i = 0; i < count; i++) {
          const k = order ? order[start + i]! : start + i;
          bx.set(x.subarray(k * perExample, (k + 1) * perExample), i * perExample);
          by.set(y.subarray(k * width, (k + 1) * width), i * width);
        }
        yield { x: bx, y: by, count };
      }
    },
  };
}

/** The arrays one after another, in one array of the first one's type (or `empty` when there are none). */
export function concatArrays<T extends Float32Array | Int32Array>(parts: T[], empty?: T): T {
  if (parts.length === 0) {
    if (empty) return empty;
    throw new ArgumentError('concatArrays: no arrays to join and no empty value given.');
  }
  const out = new (parts[0]!.constructor as new (n: number) => T)(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The index of the largest value of each row of `values` ([rows, width] flat); ties go to the first. */
export function argmaxRows(values: ArrayLike<number>, width: number): Int32Array {
  const rows = values.length / width;
  const out = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    let best = 0;
    for (let c = 1; c < width; c++) if (values[i * width + c]! > values[i * width + best]!) best = c;
    out[i] = best;
  }
  return out;
}
