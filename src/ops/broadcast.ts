/**
 * NumPy broadcasting, shared by the GPU ops and their plain-TypeScript references.
 */
import { ShapeError } from '../errors.js';
import { type Shape, shapeStr } from '../tensor/tensor.js';
import { stridesOf } from './kernel.js';

/** The broadcast shape of a and b, aligned from the right. */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`${op}: shapes ${shapeStr(a)} and ${shapeStr(b)} cannot be broadcast together (dim ${i}: ${da} vs ${db}).`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides of `shape` seen through the broadcast to `out`: 0 along broadcast dimensions. */
export function broadcastStrides(shape: Shape, out: Shape): number[] {
  const own = stridesOf(shape);
  const offset = out.length - shape.length;
  return out.map((_, i) => {
    const j = i - offset;
    return j < 0 || shape[j] === 1 ? 0 : own[j]!;
  });
}

/** For reducing a broadcast gradient back to `shape`: the output axes that were broadcast. */
export function broadcastAxes(shape: Shape, out: Shape): number[] {
  const offset = out.length - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < out.length; i++) {
    const j = i - offset;
    if (j < 0 || (shape[j] === 1 && out[i] !== 1)) axes.push(i);
  }
  return axes;
}
