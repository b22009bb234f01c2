/**
 * Batch normalisation over the last (channel) axis, as Keras's `BatchNormalization(axis=-1)`: every other
 * axis is reduced, so an NHWC image batch has per-channel statistics over N·H·W values and a [N, C] batch
 * (after a dense layer) over N. The input is viewed as [rows, C] throughout.
 *
 *   x̂ = (x − μ) / sqrt(σ² + ε),   y = γ·x̂ + β   (then max(y, 0) with the fused ReLU epilogue)
 *
 * Two modes, as in Keras:
 *   training   μ and σ² are the batch's mean and biased variance (divide by n), and the running statistics
 *              are updated in place, Keras's way round:
 *                  moving = moving · momentum + batch · (1 − momentum)        (momentum 0.99 by default)
 *              The variance folded in is the biased one, as Keras 3 (and tf.keras with fused=False) does.
 *              PyTorch differs on both counts: its `momentum` is Keras's 1 − momentum, and it folds in the
 *              unbiased variance (n − 1); so does tf.keras's fused kernel (tensorflow/tensorflow#55545).
 *   inference  μ and σ² are the running statistics, and nothing is updated.
 *
 * ε is an option: Keras's default is 1e-3 (which the TF.js ResNet50 weights were saved with); Keras's own
 * ResNet50 uses 1.001e-5.
 *
 * Kernels (training: 2 dispatches forward, 2 backward; inference: 1 and 1 or 2):
 *   shaders/batchnorm_stats.wgsl            per-channel mean and variance, by the corrected two-pass
 *                                           algorithm (no E[x²] − E[x]² cancellation), plus the running
 *                                           update; v1 one invocation per channel, v2 one workgroup per
 *                                           block of channels with lanes striding over rows
 *   shaders/batchnorm.wgsl                  the normalise + scale/shift (+ ReLU) step, per element; with
 *                                           channels % 4 == 0 per vec4 of channels in a run of rows (entry
 *                                           main_vec4: the per-channel values loaded once per run)
 *   shaders/batchnorm_backward_reduce.wgsl  Σg and Σg·x̂ per channel (= dβ and dγ), v1 and v2 as above
 *   shaders/batchnorm_backward.wgsl         dx per element, or per vec4 in a run of rows as above
 *
 * Backward (the running statistics are never differentiated):
 *   dβ = Σ g,  dγ = Σ g·x̂                                  both modes
 *   dx = (γ/σ) · (g − mean(g) − x̂ · mean(g·x̂))              training (μ, σ depend on x)
 *   dx = g · γ / σ                                          inference (μ, σ are constants)
 * The forward saves x and the statistics it used, not x̂; the kernels recompute x̂. In inference mode the
 * running statistics are copied before they are saved, so a later training step that updates them in
 * place cannot change the gradient of an earlier inference step.
 */
import { isGradEnabled, record } from '../autograd/tape.js';
import type { BackwardRule } from '../autograd/backward.js';
import { Uniforms } from '../gpu/uniforms.js';
import { runtime } from '../gpu/runtime.js';
import { type Shape, Tensor, shapeStr, sizeOf } from '../tensor/tensor.js';
import { ArgumentError, ShapeError } from '../errors.js';
import type { Constants } from '../gpu/pipeline-cache.js';
import { expectDType, floatStorage, grid1d, launch } from './kernel.js';
import { markWritten } from '../tensor/write-generation.js';

export interface BatchNormOptions {
  /** Scale γ, shape [C]; omitted or null means 1 (Keras's scale=False). */
  gamma?: Tensor | null;
  /** Shift β, shape [C]; omitted or null means 0 (Keras's center=False). */
  beta?: Tensor | null;
  /** Running mean, shape [C]: read in inference mode, updated in place in training mode. */
  mean?: Tensor | null;
  /** Running variance, shape [C]: read in inference mode, updated in place in training mode. */
  variance?: Tensor | null;
  /** Added to the variance before the square root. Default 1e-3 (Keras's default). */
  epsilon?: number;
  /** true: batch statistics and a running update; false (default): the running statistics. */
  training?: boolean;
  /** Keras convention, in [0, 1]: the weight kept by the running statistics at each update. Default 0.99. */
  momentum?: number;
  /** Fuse max(y, 0) into the kernel (BN → ReLU, as ResNet has everywhere). Default false. */
  relu?: boolean;
}

export interface BatchNormAttrs {
  training: boolean;
  epsilon: number;
  relu: boolean;
  hasGamma: boolean;
  hasBeta: boolean;
}

declare module '../autograd/tape.js' {
  interface OpRegistry {
    batchNorm: BatchNormAttrs;
  }
}

const WG = 64;
const OPTION_NAMES = new Set(['gamma', 'beta', 'mean', 'variance', 'epsilon', 'training', 'momentum', 'relu']);

/** The per-channel reduction kernels: v1 one invocation per channel, v2 one workgroup per channel block. */
export type BatchNormVersion = 'v1' | 'v2';
/**
 * When v2 runs: v1 has one invocation per channel, so with few channels and long columns it leaves a GPU
 * nearly idle. On lavapipe, which runs workgroups one after another and pays for every barrier, v1 is
 * as fast or faster everywhere; best of 3×10 statistics dispatches, v1 vs v2 (µs): [32, 512] 105 vs 435;
 * [1, 7, 7, 2048] 410 vs 1966; [8, 56, 56, 64] 5758 vs 7455; [64, 7, 7, 8] 124 vs 139;
 * [4, 32, 32, 3] 186 vs 334; [8, 16, 16, 1] 99 vs 85. So v2 is kept to the case it exists for.
 */
const V2_MAX_CHANNELS = 64;
const V2_MIN_ROWS = 2048;
let forced: BatchNormVersion | null = null;

/** Pins the reduction kernel version (tests, benchmarks); null restores the automatic choice. */
export function forceBatchNormVersion(version: BatchNormVersion | null): void {
  if (version !== null && version !== 'v1' && version !== 'v2') {
    throw new ArgumentError(`forceBatchNormVersion: unknown version '${String(version)}'; expected 'v1', 'v2' or null.`);
  }
  forced = version;
}

/** Entry point, constants and workgroups of a per-channel reduction over [rows, channels]. */
function reductionKernel(rows: number, channels: number): { entry: string; constants: Constants; workgroups: [number, number] } {
  const version = forced ?? (channels < V2_MAX_CHANNELS && rows >= V2_MIN_ROWS ? 'v2' : 'v1');
  if (version === 'v1') return { entry: 'main_v1', constants: { WG }, workgroups: grid1d(channels, WG) };
  const CB = channels >= 8 ? 8 : 1;
  return { entry: 'main_v2', constants: { WG, CB }, workgroups: grid1d(channels, CB) };
}

/**
 * Rows per invocation of the elementwise kernels' `main_vec4` entries. Measured on lavapipe (one process,
 * the variants interleaved, median of 7, ms), normalise / dx in training mode with the ReLU mask:
 * [36864, 32]: per element (`main`) 9.6 / 12.1, RUN 2 3.0 / 4.1, 4 1.9 / 2.9, 8 1.6 / 2.1, 16 1.2 / 1.7;
 * [25088, 256]: `main` 55 / 67, RUN 4 13.0 / 22.4, 8 10.2 / 14.6, 16 7.7 / 13.2.
 */
const RUN = 16;

/**
 * Entry point, constants and workgroups of an elementwise pass (normalise, dx) over [rows, channels]:
 * `main_vec4` (a vec4 of channels in RUN rows per invocation) where channels % 4 == 0, else `main`.
 */
function elementwiseKernel(rows: number, channels: number): { entry: string; constants: Constants; workgroups: [number, number] } {
  if (channels % 4 !== 0) return { entry: 'main', constants: {}, workgroups: grid1d(rows * channels, WG) };
  return { entry: 'main_vec4', constants: { RUN }, workgroups: grid1d((channels / 4) * Math.ceil(rows / RUN), WG) };
}

/** [rows, channels] of the [.., C] input. */
function layoutOf(x: Tensor): { rows: number; channels: number } {
  const channels = x.shape[x.rank - 1]!;
  return { rows: sizeOf(x.shape.slice(0, -1)), channels };
}

/** Batch mean and biased variance per channel; updates `running` in place when given. Not recorded. */
export function batchNormStatsRaw(
  x: Tensor,
  running: { mean: Tensor; variance: Tensor; momentum: number } | null = null,
): { mean: Tensor; variance: Tensor } {
  const { rows, channels } = layoutOf(x);
  const mean = Tensor.empty([channels], 'f32', 'batchNorm mean');
  const variance = Tensor.empty([channels], 'f32', 'batchNorm variance');
  // Without an update the two running bindings get placeholders: distinct ones, as WebGPU forbids two
  // writable bindings of one buffer.
  const slots = running ? [running.mean, running.variance] : [Tensor.empty([1], 'f32', 'placeholder'), Tensor.empty([1], 'f32', 'placeholder')];
  const momentum = running?.momentum ?? 1;
  const k = reductionKernel(rows, channels);
  launch('batchNorm statistics', {
    shader: 'batchnorm_stats',
    entry: k.entry,
    constants: { ...k.constants, UPDATE_RUNNING: running !== null },
    uniforms: new Uniforms().u32(rows).u32(channels).f32(momentum).f32(1 - momentum),
    inputs: [x],
    outputs: [mean, variance, ...slots],
    workgroups: k.workgroups,
    flops: 5 * x.size,
  });
  if (!running) for (const s of slots) s.dispose();
  else markWritten(running.mean, running.variance); // the moving statistics changed in place
  return { mean, variance };
}

/** y = (x − mean)/sqrt(variance + ε)·γ + β (+ ReLU), with the given statistics. Not recorded. */
export function batchNormNormalizeRaw(x: Tensor, mean: Tensor, variance: Tensor, gamma: Tensor | null, beta: Tensor | null, epsilon: number, relu: boolean): Tensor {
  const storage = floatStorage('batchNorm', x, mean, variance, gamma, beta);
  const y = Tensor.empty(x.shape, storage, 'batchNorm');
  const placeholder = runtime().emptyBuffer;
  const { rows, channels } = layoutOf(x);
  const k = elementwiseKernel(rows, channels);
  launch('batchNorm', {
    shader: 'batchnorm',
    entry: k.entry,
    storage,
    constants: { WG, HAS_GAMMA: gamma !== null, HAS_BETA: beta !== null, RELU: relu, ...k.constants },
    uniforms: new Uniforms().u32(x.size).u32(channels).f32(epsilon).u32(0),
    inputs: [x, mean, variance, gamma ?? placeholder, beta ?? placeholder],
    outputs: [y],
    workgroups: k.workgroups,
    flops: 5 * x.size,
  });
  return y;
}

/** Checks every argument; returns the options with defaults filled in. */
function validate(x: Tensor, o: BatchNormOptions) {
  const op = 'batchNorm';
  for (const k of Object.keys(o)) if (!OPTION_NAMES.has(k)) throw new ArgumentError(`${op}: unknown option '${k}'; expected one of ${[...OPTION_NAMES].join(', ')}.`);
  const storage = floatStorage(op, x);
  if (storage === 'f16' && o.training) throw new ArgumentError(`${op}: training mode (batch statistics) runs in f32 only; x is f16.`);
  if (x.rank < 2) throw new ShapeError(`${op}: input has shape ${shapeStr(x.shape)}; expected rank ≥ 2 ([N, C] or NHWC), channels last.`);
  const channels = x.shape[x.rank - 1]!;
  for (const name of ['gamma', 'beta', 'mean', 'variance'] as const) {
    const t = o[name];
    if (!t) continue;
    expectDType(`${op} (${name})`, t, storage);
    if (t.rank !== 1 || t.shape[0] !== channels) {
      throw new ShapeError(`${op}: ${name} has shape ${shapeStr(t.shape)}; expected [${channels}], one value per channel of the input ${shapeStr(x.shape)}.`);
    }
  }
  const epsilon = o.epsilon ?? 1e-3;
  const momentum = o.momentum ?? 0.99;
  const training = o.training ?? false;
  if (!(epsilon > 0) || !Number.isFinite(epsilon)) throw new ArgumentError(`${op}: epsilon must be a finite number > 0; got ${epsilon}.`);
  if (!(momentum >= 0 && momentum <= 1)) throw new ArgumentError(`${op}: momentum must be in [0, 1] (Keras convention); got ${momentum}.`);
  if (!!o.mean !== !!o.variance) {
    throw new ArgumentError(`${op}: give both running statistics (mean and variance) or neither; got only ${o.mean ? 'mean' : 'variance'}.`);
  }
  if (!training && !o.mean) throw new ArgumentError(`${op}: inference mode (training: false) needs the running mean and variance.`);
  if (training && sizeOf(x.shape.slice(0, -1)) === 0) throw new ShapeError(`${op}: training mode needs at least one row to take statistics over; input is ${shapeStr(x.shape)}.`);
  return { epsilon, momentum, training, relu: o.relu ?? false, gamma: o.gamma ?? null, beta: o.beta ?? null };
}

/** A copy of a small tensor, made on the GPU in order with the surrounding dispatches. */
function snapshot(t: Tensor): Tensor {
  const c = Tensor.empty(t.shape, t.dtype, 'batchNorm saved statistics');
  runtime().copy(t.storage.buffer, 0, c.storage.buffer, 0, t.byteLength);
  return c;
}

/**
 * Batch normalisation of `x` ([.., C], channels last) over every axis but the last. Differentiable in
 * x, γ and β; see the file header for the two modes.
 */
export function batchNorm(x: Tensor, options: BatchNormOptions = {}): Tensor {
  const { epsilon, momentum, training, relu, gamma, beta } = validate(x, options);
  if (x.size === 0) return Tensor.empty(x.shape, x.dtype, 'batchNorm');
  const inputs = [x, ...(gamma ? [gamma] : []), ...(beta ? [beta] : [])];
  const recording = isGradEnabled() && inputs.some((t) => t.requiresGrad);
  let mean: Tensor, variance: Tensor;
  if (training) {
    const running = options.mean && options.variance ? { mean: options.mean, variance: options.variance, momentum } : null;
    ({ mean, variance } = batchNormStatsRaw(x, running));
  } else {
    mean = recording ? snapshot(options.mean!) : options.mean!;
    variance = recording ? snapshot(options.variance!) : options.variance!;
  }
  const y = batchNormNormalizeRaw(x, mean, variance, gamma, beta, epsilon, relu);
  const attrs: BatchNormAttrs = { training, epsilon, relu, hasGamma: gamma !== null, hasBeta: beta !== null };
  record('batchNorm', attrs, inputs, y, [x, mean, variance, ...inputs.slice(1)]);
  if (training || recording) {
    mean.dispose(); // the tape holds its own references to what it saved
    variance.dispose();
  }
  return y;
}

// ---------------------------------------------------------------------------------------------------------
// Backward

interface GradContext {
  x: Tensor;
  g: Tensor;
  mean: Tensor;
  variance: Tensor;
  gamma: Tensor | null;
  beta: Tensor | null;
  attrs: BatchNormAttrs;
}

/** Per-channel Σg (= dβ) and Σg·x̂ (= dγ), with g masked by the fused ReLU. Not recorded. */
export function batchNormGradSumsRaw(c: GradContext): { sumG: Tensor; sumGXhat: Tensor } {
  const { rows, channels } = layoutOf(c.x);
  const sumGXhat = Tensor.empty([channels], 'f32', 'batchNorm dgamma');
  const sumG = Tensor.empty([channels], 'f32', 'batchNorm dbeta');
  const k = reductionKernel(rows, channels);
  const placeholder = runtime().emptyBuffer;
  launch('batchNorm backward sums', {
    shader: 'batchnorm_backward_reduce',
    entry: k.entry,
    constants: { ...k.constants, HAS_GAMMA: c.gamma !== null, HAS_BETA: c.beta !== null, RELU: c.attrs.relu },
    uniforms: new Uniforms().u32(rows).u32(channels).f32(c.attrs.epsilon).u32(0),
    inputs: [c.x, c.g, c.mean, c.variance, c.gamma ?? placeholder, c.beta ?? placeholder],
    outputs: [sumGXhat, sumG],
    workgroups: k.workgroups,
    flops: 6 * c.x.size,
  });
  return { sumG, sumGXhat };
}

/** dL/dx; `sums` (from batchNormGradSumsRaw) is needed in training mode only. Not recorded. */
export function batchNormInputGradRaw(c: GradContext, sums: { sumG: Tensor; sumGXhat: Tensor } | null): Tensor {
  const { rows, channels } = layoutOf(c.x);
  if (c.attrs.training && !sums) throw new ArgumentError('batchNorm backward: training mode needs the per-channel gradient sums.');
  const dx = Tensor.empty(c.x.shape, 'f32', 'batchNorm dx');
  const placeholder = runtime().emptyBuffer;
  const use = (t: Tensor | null | undefined) => (c.attrs.training && t ? t : placeholder);
  const k = elementwiseKernel(rows, channels);
  launch('batchNorm backward', {
    shader: 'batchnorm_backward',
    entry: k.entry,
    constants: { WG, TRAINING: c.attrs.training, HAS_GAMMA: c.gamma !== null, HAS_BETA: c.beta !== null, RELU: c.attrs.relu, ...k.constants },
    uniforms: new Uniforms().u32(c.x.size).u32(channels).f32(c.attrs.epsilon).f32(1 / rows),
    inputs: [c.x, c.g, c.mean, c.variance, c.gamma ?? placeholder, c.beta ?? placeholder, use(sums?.sumGXhat), use(sums?.sumG)],
    outputs: [dx],
    workgroups: k.workgroups,
    flops: 8 * c.x.size,
  });
  return dx;
}

export const batchNormBackward: BackwardRule<'batchNorm'> = ({ attrs, saved, needsGrad }, g) => {
  const [x, mean, variance, ...params] = saved as Tensor[];
  const gamma = attrs.hasGamma ? params[0]! : null;
  const beta = attrs.hasBeta ? params[attrs.hasGamma ? 1 : 0]! : null;
  const c: GradContext = { x: x!, g, mean: mean!, variance: variance!, gamma, beta, attrs };
  const wantGamma = attrs.hasGamma && needsGrad[1]!;
  const wantBeta = attrs.hasBeta && needsGrad[attrs.hasGamma ? 2 : 1]!;
  const needSums = wantGamma || wantBeta || (needsGrad[0]! && attrs.training);
  const sums = needSums ? batchNormGradSumsRaw(c) : null;
  const dx = needsGrad[0] ? batchNormInputGradRaw(c, sums) : null;
  return [dx, ...(attrs.hasGamma ? [wantGamma ? sums!.sumGXhat : null] : []), ...(attrs.hasBeta ? [wantBeta ? sums!.sumG : null] : [])];
};

// ---------------------------------------------------------------------------------------------------------
// Plain-TypeScript references (f64), used by the tests.

export interface BatchNormRefOptions {
  gamma?: ArrayLike<number> | null;
  beta?: ArrayLike<number> | null;
  /** Running statistics: used in inference mode. */
  mean?: ArrayLike<number> | null;
  variance?: ArrayLike<number> | null;
  epsilon: number;
  training: boolean;
  relu?: boolean;
}

/** Per-channel mean and biased variance of a [rows, C] array, by the two-pass formula in f64. */
export function batchStatsRef(x: ArrayLike<number>, shape: Shape): { mean: Float64Array; variance: Float64Array } {
  const C = shape[shape.length - 1]!;
  const rows = sizeOf(shape) / C;
  const mean = new Float64Array(C);
  const variance = new Float64Array(C);
  for (let i = 0; i < rows * C; i++) mean[i % C] += x[i]! / rows;
  for (let i = 0; i < rows * C; i++) variance[i % C] += (x[i]! - mean[i % C]!) ** 2 / rows;
  return { mean, variance };
}

/** Forward in either mode; returns y and the statistics it normalised with. */
export function batchNormRef(x: ArrayLike<number>, shape: Shape, o: BatchNormRefOptions): { y: Float64Array; mean: Float64Array; variance: Float64Array } {
  const C = shape[shape.length - 1]!;
  const stats = o.training ? batchStatsRef(x, shape) : { mean: Float64Array.from(o.mean!), variance: Float64Array.from(o.variance!) };
  const y = new Float64Array(sizeOf(shape));
  for (let i = 0; i < y.length; i++) {
    const c = i % C;
    const v = ((x[i]! - stats.mean[c]!) / Math.sqrt(stats.variance[c]! + o.epsilon)) * (o.gamma ? o.gamma[c]! : 1) + (o.beta ? o.beta[c]! : 0);
    y[i] = o.relu ? Math.max(v, 0) : v;
  }
  return { y, ...stats };
}

/** Keras's running update, in place: moving = moving·momentum + batch·(1 − momentum). */
export function runningUpdateRef(moving: { mean: Float64Array; variance: Float64Array }, batch: { mean: ArrayLike<number>; variance: ArrayLike<number> }, momentum: number): void {
  for (let c = 0; c < moving.mean.length; c++) {
    moving.mean[c] = moving.mean[c]! * momentum + batch.mean[c]! * (1 - momentum);
    moving.variance[c] = moving.variance[c]! * momentum + batch.variance[c]! * (1 - momentum);
  }
}

/** The analytic gradients of the header's formulas, in f64 (checked against finite differences in tests). */
export function batchNormBackwardRef(x: ArrayLike<number>, shape: Shape, g: ArrayLike<number>, o: BatchNormRefOptions): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const C = shape[shape.length - 1]!;
  const rows = sizeOf(shape) / C;
  const { y, mean, variance } = batchNormRef(x, shape, o);
  const invStd = variance.map((v) => 1 / Math.sqrt(v + o.epsilon));
  const xhat = Float64Array.from({ length: y.length }, (_, i) => (x[i]! - mean[i % C]!) * invStd[i % C]!);
  const gEff = Float64Array.from({ length: y.length }, (_, i) => (o.relu && !(y[i]! > 0) ? 0 : g[i]!));
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  for (let i = 0; i < y.length; i++) {
    dbeta[i % C] += gEff[i]!;
    dgamma[i % C] += gEff[i]! * xhat[i]!;
  }
  const dx = new Float64Array(y.length);
  for (let i = 0; i < y.length; i++) {
    const c = i % C;
    const centred = o.training ? gEff[i]! - (dbeta[c]! + xhat[i]! * dgamma[c]!) / rows : gEff[i]!;
    dx[i] = centred * invStd[c]! * (o.gamma ? o.gamma[c]! : 1);
  }
  return { dx, dgamma, dbeta };
}
