/**
 * 2-D convolution: y = act(conv(x, w) + bias), with x NHWC [N, H, W, Cin], w HWIO [KH, KW, Cin, Cout]
 * (the Keras layout), bias [Cout], y [N, OH, OW, Cout]:
 *
 *   y[n, oh, ow, co] = act(bias[co] + Σ_{kh, kw, ci} x[n, oh·sh − pt + kh, ow·sw − pl + kw, ci] · w[kh, kw, ci, co])
 *
 * where reads outside x (the padding) are zero. Padding 'valid' is none; 'same' follows TF/Keras exactly:
 * out = ⌈in / stride⌉, pad_total = max((out − 1)·stride + k − in, 0), pad_before = ⌊pad_total / 2⌋, and
 * the odd pixel goes after. Explicit padding is [[top, bottom], [left, right]].
 *
 * Backward, for z = conv(x, w) + bias and y = act(z), with gz = dL/dz (relu's mask taken from the saved y):
 *   dX[n, ih, iw, ci] = Σ_{kh, kw, co} gz[n, oh, ow, co] · w[kh, kw, ci, co]   over the (oh, ow) whose tap
 *                        (kh, kw) read (ih, iw): the transposed convolution of gz with w;
 *   dW[kh, kw, ci, co] = Σ_{n, oh, ow} x[n, oh·sh − pt + kh, ow·sw − pl + kw, ci] · gz[n, oh, ow, co]:
 *                        the correlation of x with gz;
 *   dBias[co]          = Σ_{n, oh, ow} gz[n, oh, ow, co].
 * The kernels for all three passes, and the choice between their versions, are in src/ops/conv-kernels.ts.
 */
import { record } from '../autograd/tape.js';
import type { BackwardRule } from '../autograd/backward.js';
import { type Shape, Tensor, shapeStr } from '../tensor/tensor.js';
import { ArgumentError, ShapeError } from '../errors.js';
import { floatStorage } from './kernel.js';
import { binaryRaw } from './elementwise.js';
import { reduceRaw } from './reduce.js';
import { type ConvActivation, type ConvGeometry, conv2dFilterGradRaw, conv2dForwardRaw, conv2dInputGradRaw } from './conv-kernels.js';

export {
  type ConvActivation, type ConvGeometry, type ConvPass, type ConvVersion, CONV_VERSIONS, convFlops, convKernelFor,
  conv2dFilterGradRaw, conv2dForwardRaw, conv2dInputGradRaw, forceConvVersion, isPointwise, withConvVersion,
} from './conv-kernels.js';

export type ConvPadding = 'valid' | 'same' | [[number, number], [number, number]];

export interface Conv2dOptions {
  /** One stride for both dims, or [sh, sw]. Default 1. */
  strides?: number | readonly [number, number];
  /** Default 'valid'. */
  padding?: ConvPadding;
  /** [Cout], added before the activation. */
  bias?: Tensor | null;
  /** The output's shape [N, OH, OW, Cout], added before the activation (a ResNet block's shortcut). */
  residual?: Tensor | null;
  /** Default 'none'. */
  activation?: ConvActivation;
  /** Only 1 is implemented; anything else throws. */
  dilation?: number | readonly [number, number];
  /** Only 1 is implemented; anything else throws. */
  groups?: number;
}

export interface Conv2dAttrs {
  geometry: ConvGeometry;
  activation: ConvActivation;
  hasBias: boolean;
  hasResidual: boolean;
}

declare module '../autograd/tape.js' {
  interface OpRegistry {
    conv2d: Conv2dAttrs;
  }
}

const OPTIONS = ['strides', 'padding', 'bias', 'residual', 'activation', 'dilation', 'groups'];

function pair(op: string, what: string, v: number | readonly number[] | undefined): [number, number] {
  const p = v === undefined ? [1, 1] : typeof v === 'number' ? [v, v] : [...v];
  if (p.length !== 2 || !p.every((s) => Number.isInteger(s) && s >= 1)) {
    throw new ArgumentError(`${op}: ${what} must be a positive integer or a pair [h, w] of them; got ${JSON.stringify(v)}.`);
  }
  return p as [number, number];
}

/** TF/Keras 'same': out = ⌈in / stride⌉ and the padding that makes it, the odd pixel after. */
export function samePadding(inSize: number, k: number, stride: number): [number, number] {
  const out = Math.ceil(inSize / stride);
  const total = Math.max((out - 1) * stride + k - inSize, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/**
 * Checks the shapes and options of a convolution and resolves them into its geometry. Throws ShapeError
 * (naming both shapes) for shapes that do not fit, ArgumentError for bad or unimplemented options.
 */
export function conv2dGeometry(op: string, xShape: Shape, wShape: Shape, options: Conv2dOptions = {}): ConvGeometry {
  for (const k of Object.keys(options)) {
    if (!OPTIONS.includes(k)) throw new ArgumentError(`${op}: unknown option '${k}'; supported options are ${OPTIONS.join(', ')}.`);
  }
  const shapes = `x is ${shapeStr(xShape)}, w is ${shapeStr(wShape)}`;
  const [dh, dw] = pair(op, 'dilation', options.dilation);
  if (dh !== 1 || dw !== 1) throw new ArgumentError(`${op}: dilation ${JSON.stringify(options.dilation)} is not implemented; only dilation 1 is supported.`);
  const groups = options.groups ?? 1;
  if (groups !== 1) throw new ArgumentError(`${op}: groups ${JSON.stringify(groups)} is not implemented; only groups 1 (a full convolution) is supported.`);
  if (xShape.length !== 4) throw new ShapeError(`${op}: x must have rank 4, NHWC [N, H, W, Cin]; ${shapes}.`);
  if (wShape.length !== 4) throw new ShapeError(`${op}: w must have rank 4, HWIO [KH, KW, Cin, Cout]; ${shapes}.`);
  const [N, H, W, C] = xShape as [number, number, number, number];
  const [KH, KW, wC, F] = wShape as [number, number, number, number];
  if (wC !== C) throw new ShapeError(`${op}: x has ${C} input channels but w (HWIO) expects ${wC}; ${shapes}.`);
  if (KH < 1 || KW < 1) throw new ShapeError(`${op}: the kernel must be at least 1×1; ${shapes}.`);
  const [sh, sw] = pair(op, 'strides', options.strides);
  const padding = options.padding ?? 'valid';
  let pt: number, pb: number, pl: number, pr: number;
  if (padding === 'valid') {
    [pt, pb, pl, pr] = [0, 0, 0, 0];
  } else if (padding === 'same') {
    [pt, pb] = samePadding(H, KH, sh);
    [pl, pr] = samePadding(W, KW, sw);
  } else if (Array.isArray(padding) && padding.length === 2 && padding.every((p) => Array.isArray(p) && p.length === 2 && p.every((v) => Number.isInteger(v) && v >= 0))) {
    [[pt, pb], [pl, pr]] = padding;
  } else {
    throw new ArgumentError(`${op}: padding must be 'valid', 'same' or [[top, bottom], [left, right]] of non-negative integers; got ${JSON.stringify(padding)}.`);
  }
  const [ph, pw] = [H + pt + pb, W + pl + pr];
  if (KH > ph || KW > pw) {
    throw new ShapeError(`${op}: the ${KH}×${KW} kernel is larger than the padded input (${ph}×${pw}, padding [[${pt}, ${pb}], [${pl}, ${pr}]]); ${shapes}.`);
  }
  const OH = Math.floor((ph - KH) / sh) + 1;
  const OW = Math.floor((pw - KW) / sw) + 1;
  return { N, H, W, C, KH, KW, F, OH, OW, sh, sw, pt, pb, pl, pr };
}

function checkActivation(op: string, activation: unknown): ConvActivation {
  if (activation === undefined) return 'none';
  if (activation !== 'none' && activation !== 'relu') throw new ArgumentError(`${op}: unknown activation '${String(activation)}'; expected 'none' or 'relu'.`);
  return activation;
}

/** act(conv(x, w) + bias): x NHWC [N, H, W, Cin], w HWIO [KH, KW, Cin, Cout]; returns [N, OH, OW, Cout]. */
export function conv2d(x: Tensor, w: Tensor, options: Conv2dOptions = {}): Tensor {
  const g = conv2dGeometry('conv2d', x.shape, w.shape, options);
  const bias = options.bias ?? null;
  const activation = checkActivation('conv2d', options.activation);
  const residual = options.residual ?? null;
  floatStorage('conv2d', x, w, bias, residual);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== g.F)) {
    throw new ShapeError(`conv2d: bias must have shape [${g.F}] (w's output channels); bias is ${shapeStr(bias.shape)}, x is ${shapeStr(x.shape)}, w is ${shapeStr(w.shape)}.`);
  }
  const outShape = [g.N, g.OH, g.OW, g.F];
  if (residual && (residual.rank !== 4 || residual.shape.some((d, i) => d !== outShape[i]))) {
    throw new ShapeError(`conv2d: residual must have the output's shape ${shapeStr(outShape)}; residual is ${shapeStr(residual.shape)}, x is ${shapeStr(x.shape)}, w is ${shapeStr(w.shape)}.`);
  }
  const y = conv2dForwardRaw(x, w, bias, activation, g, residual);
  const inputs = [x, w, ...(bias ? [bias] : []), ...(residual ? [residual] : [])];
  return record('conv2d', { geometry: g, activation, hasBias: bias !== null, hasResidual: residual !== null }, inputs, y, activation === 'relu' ? [x, w, y] : [x, w]);
}

export const conv2dBackward: BackwardRule<'conv2d'> = ({ attrs, saved, needsGrad }, g) => {
  const [x, w, y] = saved as [Tensor, Tensor, Tensor | undefined];
  const gz = attrs.activation === 'relu' ? binaryRaw('reluGrad', g, y!) : g;
  const dx = needsGrad[0] ? conv2dInputGradRaw(gz, w, attrs.geometry) : null;
  const dw = needsGrad[1] ? conv2dFilterGradRaw(x, gz, attrs.geometry) : null;
  const grads = [dx, dw];
  if (attrs.hasBias) grads.push(needsGrad[2] ? reduceRaw('sum', gz, [0, 1, 2], false) : null);
  // The residual is added before the activation: its gradient is gz (a new handle on it).
  if (attrs.hasResidual) grads.push(needsGrad[grads.length] ? gz.view(gz.shape) : null);
  return grads;
};

// ---------------------------------------------------------------------------------------------------------
// Plain-TypeScript reference (f64), used by the tests.

export interface Conv2dRefOptions extends Omit<Conv2dOptions, 'bias' | 'residual'> {
  bias?: ArrayLike<number> | null;
  residual?: ArrayLike<number> | null;
}

/** act(conv(x, w) + bias) on flat row-major arrays, with the same shape rules as `conv2d`. */
export function conv2dRef(x: ArrayLike<number>, xShape: Shape, w: ArrayLike<number>, wShape: Shape, options: Conv2dRefOptions = {}): { data: Float64Array; shape: number[] } {
  const { bias, residual, ...rest } = options;
  const g = conv2dGeometry('conv2dRef', xShape, wShape, rest);
  const activation = checkActivation('conv2dRef', options.activation);
  const { N, H, W, C, KH, KW, F, OH, OW, sh, sw, pt, pl } = g;
  const out = new Float64Array(N * OH * OW * F);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const o = ((n * OH + oh) * OW + ow) * F;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sh - pt + kh;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sw - pl + kw;
            if (iw < 0 || iw >= W) continue;
            for (let ci = 0; ci < C; ci++) {
              const xv = x[((n * H + ih) * W + iw) * C + ci]!;
              const wo = ((kh * KW + kw) * C + ci) * F;
              for (let co = 0; co < F; co++) out[o + co] = out[o + co]! + xv * w[wo + co]!;
            }
          }
        }
        for (let co = 0; co < F; co++) {
          let v = out[o + co]! + (bias ? bias[co]! : 0) + (residual ? residual[o + co]! : 0);
          if (activation === 'relu') v = Math.max(v, 0);
          out[o + co] = v;
        }
      }
    }
  }
  return { data: out, shape: [N, OH, OW, F] };
}

/**
 * dX and dW of L = Σ y·gy for y = conv(x, w) (no bias or activation: gy is dL/dz) on flat arrays, by the
 * forward's loops with the multiply-add scattered back. The tests check it against finite differences of
 * `conv2dRef`, then use it where finite differences would be slow (model-sized channel counts).
 */
export function conv2dBackwardRef(x: ArrayLike<number>, xShape: Shape, w: ArrayLike<number>, wShape: Shape, gy: ArrayLike<number>, options: Omit<Conv2dRefOptions, 'bias' | 'residual' | 'activation'> = {}): { dx: Float64Array; dw: Float64Array } {
  const { N, H, W, C, KH, KW, F, OH, OW, sh, sw, pt, pl } = conv2dGeometry('conv2dBackwardRef', xShape, wShape, options);
  const dx = new Float64Array(N * H * W * C);
  const dw = new Float64Array(KH * KW * C * F);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const o = ((n * OH + oh) * OW + ow) * F;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sh - pt + kh;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sw - pl + kw;
            if (iw < 0 || iw >= W) continue;
            for (let ci = 0; ci < C; ci++) {
              const xi = ((n * H + ih) * W + iw) * C + ci;
              const wo = ((kh * KW + kw) * C + ci) * F;
              let s = 0;
              for (let co = 0; co < F; co++) {
                s += gy[o + co]! * w[wo + co]!;
                dw[wo + co] = dw[wo + co]! + gy[o + co]! * x[xi]!;
              }
              dx[xi] = dx[xi]! + s;
            }
          }
        }
      }
    }
  }
  return { dx, dw };
}
