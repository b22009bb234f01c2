/**
 * f16 precision for the layers that do not train (`--precision f16`, `withPrecision('f16', fn)`).
 *
 * Graft computes in f32. With f16 precision, every layer call of a model that needs no gradient (a frozen
 * base, or any model run for inference) keeps its activations and its weights as f16: half the bytes to
 * store, read and write. The kernels widen each value to f32 as they load it, accumulate in f32 and round
 * the result to f16 once, when they store it (src/gpu/pipeline-cache.ts, "storage type"). On lavapipe this
 * is also faster: a CPU moves half the bytes, and the matmul recipe measured 24 GFLOP/s with f16 storage
 * against 19 with f32 (/work/shared/notes/lavapipe-kernels.md).
 *
 * What stays f32: layers that train (their weights, activations and gradients: an f16 copy of a weight
 * would lose small updates, and mixed-precision training with f32 master weights is not implemented), a
 * BatchNorm that normalises with batch statistics, softmax, and a model's outputs, which are converted back
 * to f32. `Model.execute` converts between the two at the boundaries, once per tensor.
 *
 * Weights. A layer call in f16 reads `weightLike(w, x)`: the weight itself when x is f32, else an f16 copy,
 * made once and kept (like a folded kernel, src/nn/folding.ts) until the weight is written in place
 * (src/tensor/write-generation.ts) or disposed. `halfCopies()` reports what they hold.
 *
 * Needs the device feature 'shader-f16'; asking for f16 without it throws, naming the adapter.
 */
import { ArgumentError } from '../errors.js';
import { runtime } from '../gpu/runtime.js';
import { noGrad } from '../autograd/tape.js';
import type { Tensor } from '../tensor/tensor.js';
import { WriteStamp } from '../tensor/write-generation.js';
import { cast } from '../ops/cast.js';

export type Precision = 'f32' | 'f16';
export const PRECISIONS: readonly Precision[] = ['f32', 'f16'];

let current: Precision = 'f32';

/** Checks a precision name (e.g. a command-line value) without asking the device (it may not be open yet). */
export function precisionNamed(p: unknown, what = 'precision'): Precision {
  if (p !== 'f32' && p !== 'f16') throw new ArgumentError(`${what} must be 'f32' or 'f16'; got '${String(p)}'.`);
  return p;
}

/** Checks a precision name and that the device can run it. */
export function checkPrecision(p: string, what = 'precision'): Precision {
  const named = precisionNamed(p, what);
  if (named === 'f16' && !runtime().gpu.features.f16) {
    const i = runtime().gpu.info;
    throw new ArgumentError(`${what} f16 needs the WebGPU feature 'shader-f16', which this adapter (${i.description || i.device || i.vendor || 'unknown'}) does not have; use f32.`);
  }
  return named;
}

/** Sets the precision for everything that follows (a command-line run); see `withPrecision` for a scope. */
export function setPrecision(precision: Precision): void {
  current = checkPrecision(precision);
}

/** Runs `fn` with layer calls that need no gradient in `precision`, then restores the previous setting. */
export function withPrecision<T>(precision: Precision, fn: () => T): T {
  const before = current;
  current = checkPrecision(precision);
  try {
    return fn();
  } finally {
    current = before;
  }
}

/** The same for an async `fn` (the setting holds until its promise settles). */
export async function withPrecisionAsync<T>(precision: Precision, fn: () => Promise<T>): Promise<T> {
  const before = current;
  current = checkPrecision(precision);
  try {
    return await fn();
  } finally {
    current = before;
  }
}

export function currentPrecision(): Precision {
  return current;
}

interface HalfCopy {
  stamp: WriteStamp;
  half: Tensor;
}

const copies = new Map<Tensor, HalfCopy>();

/** `w` in the dtype of `x`: w itself when they match, else w's cached f16 copy (x is f16). */
export function weightLike(w: Tensor, x: Tensor): Tensor {
  if (w.dtype === x.dtype) return w;
  if (x.dtype !== 'f16' || w.dtype !== 'f32') throw new ArgumentError(`weightLike: cannot bring ${w.dtype} weight '${w.name}' to ${x.dtype}.`);
  const hit = copies.get(w);
  if (hit && hit.stamp.current([w])) return hit.half;
  hit?.half.dispose();
  const half = noGrad(() => cast(w, 'f16')).keep();
  copies.set(w, { stamp: new WriteStamp([w]), half });
  return half;
}

/** Frees the f16 copy of `w`, if any (layers call it when they dispose their weights). */
export function releaseHalf(w: Tensor): void {
  const c = copies.get(w);
  if (!c) return;
  c.half.dispose();
  copies.delete(w);
}

/** Frees the copies of weights that were disposed (e.g. replaced by Weight.assign) or written since. */
export function sweepHalfCopies(): void {
  for (const [w, c] of copies) {
    if (!c.stamp.current([w])) releaseHalf(w);
  }
}

/** How many f16 weight copies are kept, and their bytes. */
export function halfCopies(): { count: number; bytes: number } {
  let bytes = 0;
  for (const c of copies.values()) bytes += c.half.byteLength;
  return { count: copies.size, bytes };
}
