/**
 * 2-D pooling over NHWC images, with Keras's semantics: MaxPooling2D, AveragePooling2D,
 * GlobalMaxPooling2D and GlobalAveragePooling2D. Kernels in shaders/pooling.wgsl.
 *
 * Geometry (TensorFlow's rules, which Keras uses). For an input of height H, pool size k and stride s:
 *   'valid':  out = floor((H − k) / s) + 1, no padding (needs H ≥ k);
 *   'same':   out = ceil(H / s), padded by max((out − 1)·s + k − H, 0) rows in total, the smaller half
 *             (floor) on top and the rest at the bottom; likewise for columns.
 * Padding is never a value: max pooling ignores padded positions, and average pooling divides each window's
 * sum by its number of valid positions (TensorFlow's avg_pool; Keras's AveragePooling2D with 'same').
 *
 * Gradients:
 *   max:  each output's gradient goes to its window's arg-max, the first maximum in row-major window
 *         order on ties (as TensorFlow). The forward pass saves the arg-max (a u32 window offset
 *         ky·k_w + kx per output) when a gradient will be needed, so backward does not search again.
 *   avg:  each output's gradient is spread evenly over the valid positions of its window.
 * Windows overlap when the stride is below the pool size (ResNet's 3×3/2), so several outputs can send
 * gradient to one input. Both backward kernels therefore loop over input positions and gather from the
 * windows that contain them, which needs no atomics.
 *
 * Global pooling reduces all of H and W, giving [N, C]. The average is the `mean` reduction; the max is a
 * max pool whose window is the whole image, so its gradient also goes to the (first) arg-max.
 */
import { isGradEnabled, record } from '../autograd/tape.js';
import type { BackwardRule } from '../autograd/backward.js';
import { Uniforms } from '../gpu/uniforms.js';
import { type Shape, Tensor, shapeStr } from '../tensor/tensor.js';
import { ArgumentError, ShapeError } from '../errors.js';
import { expectRank, floatStorage, grid1d, launch, storageOf } from './kernel.js';
import { mean } from './reduce.js';
import { reshape } from './shape.js';

export type PoolPadding = 'valid' | 'same';

export interface Pool2dOptions {
  /** Window height and width, or one number for both. Default 2 (Keras). */
  poolSize?: number | readonly [number, number];
  /** Step between windows; defaults to poolSize (Keras). */
  strides?: number | readonly [number, number];
  /** Default 'valid' (Keras). */
  padding?: PoolPadding;
}

/** Everything a pooling kernel needs to know; also the recorded attributes of the pooling ops. */
export interface PoolGeometry {
  batch: number;
  height: number;
  width: number;
  channels: number;
  outHeight: number;
  outWidth: number;
  poolHeight: number;
  poolWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padLeft: number;
}

declare module '../autograd/tape.js' {
  interface OpRegistry {
    maxPool2d: PoolGeometry;
    avgPool2d: PoolGeometry;
  }
}

const WG = 64;
/**
 * Channels per invocation. Decoding a pixel's coordinates takes integer divisions, which lavapipe does one
 * lane at a time, so each invocation handles a run of channels. Measured on lavapipe, [4, 112, 112, 128]
 * with 2×2/2, best of 5 (the machine was shared, so ±30 %), for 1 / 2 / 4 / 8 channels per invocation:
 * max backward 142 / 99 / 74 / 70 ms, average backward 103 / 70 / 52 / 41 ms; the forward kernels took
 * 15–31 ms with no clear trend, and a same-size elementwise copy 25 ms.
 */
const RUN = 8;
const OPTIONS = ['poolSize', 'strides', 'padding'];

// ---------------------------------------------------------------------------------------------------------
// Geometry

function pair(op: string, name: string, v: number | readonly number[]): [number, number] {
  const p = typeof v === 'number' ? [v, v] : [...v];
  if (p.length !== 2 || !p.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new ArgumentError(`${op}: ${name} must be a positive integer or a pair [height, width] of them; got ${JSON.stringify(v)}.`);
  }
  return p as [number, number];
}

/** One spatial dim: output size and padding before, by TensorFlow's rules. */
function outputAndPad(size: number, pool: number, stride: number, padding: PoolPadding): [number, number] {
  if (padding === 'valid') return [Math.floor((size - pool) / stride) + 1, 0];
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + pool - size, 0);
  return [out, Math.floor(total / 2)];
}

/** Validates the options against an NHWC input shape and works out the output's size and padding. */
export function poolGeometry(op: string, shape: Shape, options: Pool2dOptions = {}): PoolGeometry {
  for (const k of Object.keys(options)) {
    if (!OPTIONS.includes(k)) throw new ArgumentError(`${op}: unknown option '${k}'; expected ${OPTIONS.map((o) => `'${o}'`).join(', ')}.`);
  }
  const [poolHeight, poolWidth] = pair(op, 'poolSize', options.poolSize ?? 2);
  const [strideHeight, strideWidth] = options.strides === undefined ? [poolHeight, poolWidth] : pair(op, 'strides', options.strides);
  const padding = options.padding ?? 'valid';
  if (padding !== 'valid' && padding !== 'same') {
    throw new ArgumentError(`${op}: padding must be 'valid' or 'same'; got ${JSON.stringify(padding)}.`);
  }
  const [batch, height, width, channels] = shape as [number, number, number, number];
  if (padding === 'valid' && (height < poolHeight || width < poolWidth)) {
    throw new ShapeError(
      `${op}: with padding 'valid' the pool size [${poolHeight}, ${poolWidth}] must fit in the input's height and width; input has shape ${shapeStr(shape)} (NHWC).`,
    );
  }
  const [outHeight, padTop] = outputAndPad(height, poolHeight, strideHeight, padding);
  const [outWidth, padLeft] = outputAndPad(width, poolWidth, strideWidth, padding);
  return { batch, height, width, channels, outHeight, outWidth, poolHeight, poolWidth, strideHeight, strideWidth, padTop, padLeft };
}

function expectImage(op: string, x: Tensor): void {
  floatStorage(op, x);
  expectRank(op, x, 4, 'input (NHWC)');
}

const outShapeOf = (g: PoolGeometry) => [g.batch, g.outHeight, g.outWidth, g.channels];
const inShapeOf = (g: PoolGeometry) => [g.batch, g.height, g.width, g.channels];

// ---------------------------------------------------------------------------------------------------------
// Kernels, not recorded

/**
 * Runs one entry point of shaders/pooling.wgsl over `elements` elements of an NHWC tensor (the output's
 * for the forward entries, the input's for the backward ones). Each invocation takes a run of up to RUN
 * channels of one pixel, so it decodes its pixel's coordinates once for all of them.
 */
function run(op: string, entry: string, elements: number, g: PoolGeometry, inputs: Tensor[], outputs: Tensor[]): void {
  if (elements === 0) return;
  const runsPerPixel = Math.ceil(g.channels / RUN);
  const invocations = (elements / g.channels) * runsPerPixel;
  launch(op, {
    shader: 'pooling',
    entry,
    // The forward entries read x and write y as Elem; the backward ones (whose first input is the f32 gradient) are f32 only.
    storage: storageOf(inputs[0]!),
    constants: { WG, RUN },
    uniforms: new Uniforms()
      .u32(invocations).u32(g.channels).u32(g.height).u32(g.width)
      .u32(g.outHeight).u32(g.outWidth).u32(g.poolHeight).u32(g.poolWidth)
      .u32(g.strideHeight).u32(g.strideWidth).u32(g.padTop).u32(g.padLeft)
      .u32(runsPerPixel),
    inputs,
    outputs,
    workgroups: grid1d(invocations, WG),
    flops: elements * g.poolHeight * g.poolWidth,
  });
}

/** Max pooling; with `withArgmax`, also each output's window offset ky·poolWidth + kx of its maximum. */
export function maxPool2dRaw(x: Tensor, g: PoolGeometry, withArgmax: boolean): { y: Tensor; argmax: Tensor | null } {
  const y = Tensor.empty(outShapeOf(g), x.dtype, 'maxPool2d');
  const argmax = withArgmax ? Tensor.empty(y.shape, 'u32', 'maxPool2d argmax') : null;
  run('maxPool2d', argmax ? 'max_forward_argmax' : 'max_forward', y.size, g, [x], argmax ? [y, argmax] : [y]);
  return { y, argmax };
}

/** Whether the windows tile the input exactly, so each input lies in exactly one window (see pooling.wgsl). */
export function windowsTile(g: PoolGeometry): boolean {
  return g.strideHeight === g.poolHeight && g.strideWidth === g.poolWidth && g.padTop === 0 && g.padLeft === 0 &&
    g.outHeight * g.strideHeight === g.height && g.outWidth * g.strideWidth === g.width;
}

/**
 * dx for max pooling from the upstream gradient and the saved arg-max: a scatter over the output's windows
 * where they tile the input, else a gather over the input's pixels.
 */
export function maxPool2dBackwardRaw(grad: Tensor, argmax: Tensor, g: PoolGeometry): Tensor {
  const dx = Tensor.empty(inShapeOf(g), 'f32', 'maxPool2d backward');
  if (windowsTile(g)) run('maxPool2d backward', 'max_backward_tiled', grad.size, g, [grad, argmax], [dx]);
  else run('maxPool2d backward', 'max_backward', dx.size, g, [grad, argmax], [dx]);
  return dx;
}

export function avgPool2dRaw(x: Tensor, g: PoolGeometry): Tensor {
  const y = Tensor.empty(outShapeOf(g), x.dtype, 'avgPool2d');
  run('avgPool2d', 'avg_forward', y.size, g, [x], [y]);
  return y;
}

export function avgPool2dBackwardRaw(grad: Tensor, g: PoolGeometry): Tensor {
  const dx = Tensor.empty(inShapeOf(g), 'f32', 'avgPool2d backward');
  run('avgPool2d backward', 'avg_backward', dx.size, g, [grad], [dx]);
  return dx;
}

// ---------------------------------------------------------------------------------------------------------
// Public ops and their chain rules

/** Keras's MaxPooling2D on an NHWC tensor. */
export function maxPool2d(x: Tensor, options: Pool2dOptions = {}): Tensor {
  expectImage('maxPool2d', x);
  const g = poolGeometry('maxPool2d', x.shape, options);
  // The arg-max is only worth writing when backward will read it.
  const { y, argmax } = maxPool2dRaw(x, g, isGradEnabled() && x.requiresGrad);
  if (!argmax) return y;
  record('maxPool2d', g, [x], y, [argmax]);
  argmax.dispose(); // the tape holds its own reference
  return y;
}

export const maxPool2dBackward: BackwardRule<'maxPool2d'> = ({ attrs, saved }, grad) => [maxPool2dBackwardRaw(grad, saved[0]!, attrs)];

/** Keras's AveragePooling2D on an NHWC tensor ('same' divides by the number of valid positions). */
export function avgPool2d(x: Tensor, options: Pool2dOptions = {}): Tensor {
  expectImage('avgPool2d', x);
  const g = poolGeometry('avgPool2d', x.shape, options);
  return record('avgPool2d', g, [x], avgPool2dRaw(x, g));
}

export const avgPool2dBackward: BackwardRule<'avgPool2d'> = ({ attrs }, grad) => [avgPool2dBackwardRaw(grad, attrs)];

function expectSpatial(op: string, x: Tensor): void {
  expectImage(op, x);
  if (x.shape[1] === 0 || x.shape[2] === 0) {
    throw new ShapeError(`${op}: input has shape ${shapeStr(x.shape)} (NHWC); height and width must be at least 1.`);
  }
}

/** Keras's GlobalAveragePooling2D: [N, H, W, C] → [N, C], the mean over H and W. */
export function globalAveragePool2d(x: Tensor): Tensor {
  expectSpatial('globalAveragePool2d', x);
  return mean(x, [1, 2]);
}

/** Keras's GlobalMaxPooling2D: [N, H, W, C] → [N, C]; the gradient goes to each channel's first maximum. */
export function globalMaxPool2d(x: Tensor): Tensor {
  expectSpatial('globalMaxPool2d', x);
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const pooled = maxPool2d(x, { poolSize: [h, w] });
  const out = reshape(pooled, [n, c]);
  pooled.dispose(); // `out` and the tape keep what they need
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Plain-TypeScript references (f64) on flat NHWC arrays, used by the tests.

/** Calls `visit(o, i, k)` for every output element o, valid input element i in its window, and window offset k. */
function forEachWindowElement(g: PoolGeometry, visit: (o: number, i: number, k: number) => void): void {
  const { channels: C } = g;
  for (let b = 0; b < g.batch; b++) {
    for (let oh = 0; oh < g.outHeight; oh++) {
      for (let ow = 0; ow < g.outWidth; ow++) {
        for (let c = 0; c < C; c++) {
          const o = ((b * g.outHeight + oh) * g.outWidth + ow) * C + c;
          for (let ky = 0; ky < g.poolHeight; ky++) {
            for (let kx = 0; kx < g.poolWidth; kx++) {
              const iy = oh * g.strideHeight - g.padTop + ky;
              const ix = ow * g.strideWidth - g.padLeft + kx;
              if (iy < 0 || iy >= g.height || ix < 0 || ix >= g.width) continue;
              visit(o, ((b * g.height + iy) * g.width + ix) * C + c, ky * g.poolWidth + kx);
            }
          }
        }
      }
    }
  }
}

const outSize = (g: PoolGeometry) => g.batch * g.outHeight * g.outWidth * g.channels;
const inSize = (g: PoolGeometry) => g.batch * g.height * g.width * g.channels;

/** Max pooling, with each output's arg-max as a window offset (first maximum on ties). */
export function maxPool2dRef(x: ArrayLike<number>, g: PoolGeometry): { data: Float64Array; argmax: Uint32Array; source: Int32Array } {
  const data = new Float64Array(outSize(g)).fill(-Infinity);
  const argmax = new Uint32Array(data.length);
  const source = new Int32Array(data.length).fill(-1); // flat input index of the arg-max
  forEachWindowElement(g, (o, i, k) => {
    if (source[o] === -1 || x[i]! > data[o]!) {
      data[o] = x[i]!;
      argmax[o] = k;
      source[o] = i;
    }
  });
  return { data, argmax, source };
}

/** The count-of-valid-positions average of each window. */
export function avgPool2dRef(x: ArrayLike<number>, g: PoolGeometry): Float64Array {
  const sums = new Float64Array(outSize(g));
  const counts = new Float64Array(sums.length);
  forEachWindowElement(g, (o, i) => {
    sums[o]! += x[i]!;
    counts[o]!++;
  });
  return sums.map((s, o) => s / counts[o]!);
}

/** Max-pool backward as a scatter: each output's gradient to its arg-max's input element. */
export function maxPool2dBackwardRef(grad: ArrayLike<number>, source: Int32Array, g: PoolGeometry): Float64Array {
  const dx = new Float64Array(inSize(g));
  for (let o = 0; o < source.length; o++) dx[source[o]!]! += grad[o]!;
  return dx;
}

/** Average-pool backward as a scatter: each output's gradient split evenly over its valid positions. */
export function avgPool2dBackwardRef(grad: ArrayLike<number>, g: PoolGeometry): Float64Array {
  const counts = new Float64Array(outSize(g));
  forEachWindowElement(g, (o) => counts[o]!++);
  const dx = new Float64Array(inSize(g));
  forEachWindowElement(g, (o, i) => (dx[i]! += grad[o]! / counts[o]!));
  return dx;
}
