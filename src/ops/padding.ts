/**
 * Keras's ZeroPadding2D: rows of zeros above and below an NHWC image and columns of zeros left and right.
 *
 * The forward pass is the `pad` kernel of shaders/shape.wgsl (x placed at an offset in a tensor of zeros,
 * which is also slice's gradient), and the gradient is the matching slice of g: the padding's positions
 * are constants, so they receive no gradient.
 *
 * `padding` takes Keras's three forms:
 *   p                           p rows on top and bottom, p columns left and right;
 *   [ph, pw]                    ph rows on top and bottom, pw columns left and right;
 *   [[top, bottom], [left, right]].
 */
import { record } from '../autograd/tape.js';
import type { BackwardRule } from '../autograd/backward.js';
import { Tensor } from '../tensor/tensor.js';
import { ArgumentError } from '../errors.js';
import { expectDType, expectRank } from './kernel.js';
import { padRaw, sliceRaw } from './shape.js';

export type ZeroPadding2dSpec = number | readonly [number, number] | readonly [readonly [number, number], readonly [number, number]];

export interface ZeroPadding2dAttrs {
  top: number;
  bottom: number;
  left: number;
  right: number;
}

declare module '../autograd/tape.js' {
  interface OpRegistry {
    zeroPadding2d: ZeroPadding2dAttrs;
  }
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/** Resolves Keras's padding forms to four non-negative counts. */
export function resolveZeroPadding(spec: ZeroPadding2dSpec): ZeroPadding2dAttrs {
  const bad = () =>
    new ArgumentError(
      `zeroPadding2d: padding must be a non-negative integer, a pair [rows, columns], or [[top, bottom], [left, right]] of them; got ${JSON.stringify(spec)}.`,
    );
  if (isCount(spec)) return { top: spec, bottom: spec, left: spec, right: spec };
  if (!Array.isArray(spec) || spec.length !== 2) throw bad();
  const [a, b] = spec as unknown[];
  if (isCount(a) && isCount(b)) return { top: a, bottom: a, left: b, right: b };
  const isPair = (v: unknown): v is [number, number] => Array.isArray(v) && v.length === 2 && v.every(isCount);
  if (isPair(a) && isPair(b)) return { top: a[0], bottom: a[1], left: b[0], right: b[1] };
  throw bad();
}

/** [N, H, W, C] → [N, top + H + bottom, left + W + right, C], the new positions zero. */
export function zeroPadding2d(x: Tensor, padding: ZeroPadding2dSpec = 1): Tensor {
  expectDType('zeroPadding2d', x, 'f32', 'f16', 'i32', 'u32');
  expectRank('zeroPadding2d', x, 4, 'input (NHWC)');
  const p = resolveZeroPadding(padding);
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const out = padRaw(x, [n, p.top + h + p.bottom, p.left + w + p.right, c], [0, p.top, p.left, 0]);
  return record('zeroPadding2d', p, [x], out);
}

export const zeroPadding2dBackward: BackwardRule<'zeroPadding2d'> = ({ attrs, inputs }, g) => [
  sliceRaw(g, [0, attrs.top, attrs.left, 0], inputs[0]!.shape),
];

/** Reference on a flat NHWC array. */
export function zeroPadding2dRef(x: ArrayLike<number>, shape: readonly number[], p: ZeroPadding2dAttrs): Float64Array {
  const [n, h, w, c] = shape as [number, number, number, number];
  const H = p.top + h + p.bottom;
  const W = p.left + w + p.right;
  const out = new Float64Array(n * H * W * c);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        for (let k = 0; k < c; k++) {
          out[((b * H + y + p.top) * W + xx + p.left) * c + k] = x[((b * h + y) * w + xx) * c + k]!;
        }
      }
    }
  }
  return out;
}
