/**
 * Softmax and log-softmax along any axis (shaders/softmax.wgsl), their fused backward kernels
 * (shaders/softmax_backward.wgsl), and f64 references.
 *
 *   softmax(x)_k     = exp(x_k − m) / Σ_j exp(x_j − m),   m = max_j x_j
 *   logSoftmax(x)_k  = x_k − m − log Σ_j exp(x_j − m)
 *
 * Subtracting the row max m changes nothing mathematically and keeps exp from overflowing, so logits of
 * any magnitude work. Each direction is one dispatch. The softmax axis need not be the last one: a tensor
 * is viewed as [outer, n, inner] and each of the outer·inner rows is read with stride `inner`.
 *
 * Backward, with y the forward output and g the upstream gradient of one row:
 *   softmax:     dx = y ⊙ (g − Σ g⊙y)
 *   logSoftmax:  dx = g − softmax(x) · Σ g = g − exp(y) · Σ g
 * Both rules need only y, so the forward saves its output and not its input.
 */
import { record } from '../autograd/tape.js';
import type { BackwardRule } from '../autograd/backward.js';
import { Uniforms } from '../gpu/uniforms.js';
import { type Shape, Tensor, shapeStr, sizeOf } from '../tensor/tensor.js';
import { ArgumentError, ShapeError } from '../errors.js';
import { expectDType, grid1d, launch, normalizeAxes, sameShape } from './kernel.js';

export interface SoftmaxAttrs {
  /** The normalised (non-negative) axis. */
  axis: number;
}

declare module '../autograd/tape.js' {
  interface OpRegistry {
    softmax: SoftmaxAttrs;
    logSoftmax: SoftmaxAttrs;
  }
}

const WG = 64;
/**
 * When a workgroup takes a whole row (main_wg) instead of an invocation taking it (main). Lavapipe runs a
 * workgroup as 8-lane subgroups one after another and makes every barrier a switch between them, so the
 * tree reductions of main_wg only pay off when main would leave most of a subgroup idle. Measured on
 * lavapipe (forward, µs, main vs main_wg): [1, 100000] 2278 vs 562; [2, 1000] 84 vs 91;
 * [4, 16384] 476 vs 420; [8, 1000] 113 vs 212; [128, 1000] 867 vs 1908.
 */
const LONG_ROW = 1024;
const FEW_ROWS = 8;

/** The [outer, n, inner] view of `shape` around `axis`: rows = outer·inner rows of n elements each. */
export function rowLayout(shape: Shape, axis: number): { rows: number; n: number; inner: number } {
  const n = shape[axis]!;
  const inner = sizeOf(shape.slice(axis + 1));
  const outer = sizeOf(shape.slice(0, axis));
  return { rows: outer * inner, n, inner };
}

function resolveAxis(op: string, x: Tensor, axis: number): number {
  if (!Number.isInteger(axis)) throw new ArgumentError(`${op}: axis must be an integer; got ${axis}.`);
  if (x.rank === 0) throw new ShapeError(`${op}: input is a scalar (shape []); it needs at least one axis.`);
  return normalizeAxes(op, axis, x.rank)[0]!;
}

/** Uniforms and launch geometry shared by the forward and backward kernels. */
function rowKernel(shape: Shape, axis: number) {
  const { rows, n, inner } = rowLayout(shape, axis);
  const perWorkgroup = n >= LONG_ROW && rows < FEW_ROWS;
  return {
    uniforms: new Uniforms().u32(rows).u32(n).u32(inner).u32(0),
    entry: perWorkgroup ? 'main_wg' : 'main',
    workgroups: perWorkgroup ? grid1d(rows, 1) : grid1d(rows, WG),
  };
}

/** Runs the forward kernel without recording. */
export function softmaxRaw(x: Tensor, axis: number, log: boolean): Tensor {
  const op = log ? 'logSoftmax' : 'softmax';
  expectDType(op, x, 'f32');
  const y = Tensor.empty(x.shape, 'f32', op);
  if (y.size === 0) return y;
  const k = rowKernel(x.shape, axis);
  launch(op, {
    shader: 'softmax',
    entry: k.entry,
    constants: { LOG: log, WG },
    uniforms: k.uniforms,
    inputs: [x],
    outputs: [y],
    workgroups: k.workgroups,
    flops: 5 * x.size,
  });
  return y;
}

/** softmax along `axis` (default: the last). Each slice along `axis` sums to 1. */
export function softmax(x: Tensor, axis = -1): Tensor {
  const ax = resolveAxis('softmax', x, axis);
  const y = softmaxRaw(x, ax, false);
  return record('softmax', { axis: ax }, [x], y, [y]);
}

/** log(softmax(x)) along `axis` (default: the last), computed without forming softmax(x). */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  const ax = resolveAxis('logSoftmax', x, axis);
  const y = softmaxRaw(x, ax, true);
  return record('logSoftmax', { axis: ax }, [x], y, [y]);
}

/** dL/dx from the forward output y and dL/dy, in one dispatch. */
export function softmaxGradRaw(y: Tensor, g: Tensor, axis: number, log: boolean): Tensor {
  const op = log ? 'logSoftmax backward' : 'softmax backward';
  expectDType(op, g, 'f32');
  if (!sameShape(y.shape, g.shape)) throw new ShapeError(`${op}: gradient has shape ${shapeStr(g.shape)}; expected ${shapeStr(y.shape)}.`);
  const dx = Tensor.empty(y.shape, 'f32', op);
  if (dx.size === 0) return dx;
  const k = rowKernel(y.shape, axis);
  launch(op, {
    shader: 'softmax_backward',
    entry: k.entry,
    constants: { LOG: log, WG },
    uniforms: k.uniforms,
    inputs: [y, g],
    outputs: [dx],
    workgroups: k.workgroups,
    flops: 4 * y.size,
  });
  return dx;
}

export const softmaxBackward: BackwardRule<'softmax'> = ({ attrs, saved }, g) => [softmaxGradRaw(saved[0]!, g, attrs.axis, false)];
export const logSoftmaxBackward: BackwardRule<'logSoftmax'> = ({ attrs, saved }, g) => [softmaxGradRaw(saved[0]!, g, attrs.axis, true)];

// ---------------------------------------------------------------------------------------------------------
// Reference (f64)

/** softmax (or log-softmax) of flat row-major `x` of `shape` along `axis` (may be negative). */
export function softmaxRef(x: ArrayLike<number>, shape: Shape, axis: number, log = false): Float64Array {
  const ax = axis < 0 ? axis + shape.length : axis;
  const { rows, n, inner } = rowLayout(shape, ax);
  const out = new Float64Array(sizeOf(shape));
  for (let r = 0; r < rows; r++) {
    const base = Math.floor(r / inner) * n * inner + (r % inner);
    let m = -Infinity;
    for (let k = 0; k < n; k++) m = Math.max(m, x[base + k * inner]!);
    let s = 0;
    for (let k = 0; k < n; k++) s += Math.exp(x[base + k * inner]! - m);
    for (let k = 0; k < n; k++) {
      const i = base + k * inner;
      out[i] = log ? x[i]! - m - Math.log(s) : Math.exp(x[i]! - m) / s;
    }
  }
  return out;
}
