/**
 * The kernel explorer's backward-pass cases: softmax backward, batch normalisation (forward, and backward
 * with its three kernels) and the two conv2d gradients, with their numbered versions. See kernel-cases.ts.
 *
 * A backward case runs the unrecorded kernels that the op's backward rule runs, on an upstream gradient g
 * it draws itself, so the explorer times exactly those dispatches. Where a backward kernel needs what the
 * forward computed (batch statistics), execute() runs that forward kernel too, and the case lists its shader.
 */
import type { Shape } from '../tensor/tensor.js';
import { tensor } from '../tensor/create.js';
import {
  type BatchNormAttrs, type BatchNormVersion, batchNorm, batchNormBackwardRef, batchNormGradSumsRaw, batchNormInputGradRaw, batchNormRef,
  batchNormStatsRaw, forceBatchNormVersion,
} from '../ops/batchnorm.js';
import { type ConvPadding, conv2dBackwardRef, conv2dGeometry } from '../ops/conv.js';
import { type ConvVersion, CONV_VERSIONS, conv2dFilterGradRaw, conv2dInputGradRaw, convFlops, withConvVersion } from '../ops/conv-kernels.js';
import { softmaxGradRaw, softmaxRef } from '../ops/softmax.js';
import { type KernelCase, type Params, randomIn, randomValues, TILE_PARAMS, withTiles } from './kernel-case.js';
import { joinFlat, joinRef } from './kernel-cases-train.js';

const softmaxBackwardCase: KernelCase = {
  id: 'softmax-backward',
  title: 'softmax backward: dx from y and dL/dy',
  shaders: ['softmax_backward'],
  params: [
    { name: 'rows', default: 64, min: 1, max: 65536 },
    { name: 'n', default: 1000, min: 1, max: 1 << 20, help: 'length of each softmax row' },
    { name: 'log', default: 'no', choices: ['no', 'yes'], help: 'log-softmax' },
  ],
  prepare(p) {
    const [rows, n] = [p.rows as number, p.n as number];
    const isLog = p.log === 'yes';
    // y is the forward output (computed here in f64, stored in f32); g the upstream gradient.
    const y = Float32Array.from(softmaxRef(randomIn(rows * n, 16, -4, 4), [rows, n], 1, isLog));
    const g = randomValues(rows * n, 17);
    const ty = tensor(y, [rows, n]), tg = tensor(g, [rows, n]);
    const reference = () => {
      // softmax: dx = y ⊙ (g − Σ g⊙y);  log-softmax: dx = g − exp(y) · Σ g   (sums along each row)
      const dx = new Float64Array(rows * n);
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let k = r * n; k < (r + 1) * n; k++) s += isLog ? g[k]! : g[k]! * y[k]!;
        for (let k = r * n; k < (r + 1) * n; k++) dx[k] = isLog ? g[k]! - Math.exp(y[k]!) * s : y[k]! * (g[k]! - s);
      }
      return dx;
    };
    return {
      execute: () => softmaxGradRaw(ty, tg, 1, isLog),
      reference,
      tolerance: 1e-5,
      flops: 4 * rows * n,
      describe: `d${isLog ? 'logSoftmax' : 'softmax'}: y, g [${rows}×${n}]`,
      dispose: () => (ty.dispose(), tg.dispose()),
    };
  },
};

// ---------------------------------------------------------------------------------------------------------
// Batch normalisation

/** Runs `fn` with the per-channel reduction kernels pinned to `version` (v1 or v2), then back to automatic. */
function withBatchNormVersion<T>(version: string, fn: () => T): T {
  forceBatchNormVersion(version as BatchNormVersion);
  try {
    return fn();
  } finally {
    forceBatchNormVersion(null);
  }
}

const BATCHNORM_PARAMS = [
  { name: 'batch', default: 8, min: 1, max: 256 },
  { name: 'height', default: 16, min: 1, max: 512 },
  { name: 'width', default: 16, min: 1, max: 512 },
  { name: 'channels', default: 32, min: 1, max: 4096 },
  { name: 'mode', default: 'training', choices: ['training', 'inference'], help: 'batch statistics, or the running ones' },
  { name: 'relu', default: 'no', choices: ['no', 'yes'], help: 'fused ReLU epilogue' },
] as const;

/** Inputs of a batch-norm case: x NHWC, γ, β, running statistics and the upstream gradient g. */
function batchNormInputs(p: Params) {
  const shape = ['batch', 'height', 'width', 'channels'].map((k) => p[k] as number);
  const C = shape[3]!, n = shape.reduce((a, b) => a * b, 1);
  const data = {
    x: randomIn(n, 32, -2, 2), g: randomValues(n, 33),
    gamma: randomIn(C, 34, 0.5, 1.5), beta: randomIn(C, 35, -0.5, 0.5),
    mean: randomIn(C, 36, -0.5, 0.5), variance: randomIn(C, 37, 0.5, 1.5),
  };
  const t = {
    x: tensor(data.x, shape), g: tensor(data.g, shape),
    gamma: tensor(data.gamma, [C]), beta: tensor(data.beta, [C]), mean: tensor(data.mean, [C]), variance: tensor(data.variance, [C]),
  };
  const training = p.mode === 'training', relu = p.relu === 'yes', epsilon = 1e-3;
  const refOptions = { gamma: data.gamma, beta: data.beta, mean: data.mean, variance: data.variance, epsilon, training, relu };
  const describe = `x [${shape.join('×')}], ${p.mode}${relu ? ', relu' : ''}`;
  return { shape, data, t, training, relu, epsilon, refOptions, describe, dispose: () => Object.values(t).forEach((v) => v.dispose()) };
}

const batchNormCase: KernelCase = {
  id: 'batchnorm',
  title: 'batch normalisation over the channel axis, forward',
  shaders: ['batchnorm_stats', 'batchnorm'],
  params: BATCHNORM_PARAMS,
  // The per-channel statistics kernel (training mode): v1 one invocation per channel, v2 a workgroup per block.
  versions: ['v1', 'v2'],
  prepare(p, version) {
    const { shape, data, t, training, relu, epsilon, refOptions, describe, dispose } = batchNormInputs(p);
    // In training the running statistics are left out: updating them in place would change them every run.
    const running = training ? {} : { mean: t.mean, variance: t.variance };
    const run = () => batchNorm(t.x, { gamma: t.gamma, beta: t.beta, ...running, training, relu, epsilon });
    return {
      execute: () => (version ? withBatchNormVersion(version, run) : run()),
      reference: () => batchNormRef(data.x, shape, refOptions).y,
      tolerance: 1e-5,
      flops: (training ? 10 : 5) * data.x.length,
      describe,
      dispose,
    };
  },
};

const batchNormBackwardCase: KernelCase = {
  id: 'batchnorm-backward',
  title: 'batch normalisation backward: [dx, dγ, dβ]',
  shaders: ['batchnorm_stats', 'batchnorm_backward_reduce', 'batchnorm_backward'],
  params: BATCHNORM_PARAMS,
  versions: ['v1', 'v2'],
  prepare(p, version) {
    const { shape, data, t, training, relu, epsilon, refOptions, describe, dispose } = batchNormInputs(p);
    const attrs: BatchNormAttrs = { training, epsilon, relu, hasGamma: true, hasBeta: true };
    const run = () => {
      // Training normalised with the batch statistics, which the backward kernels read (as the tape saves them).
      const stats = training ? batchNormStatsRaw(t.x) : { mean: t.mean, variance: t.variance };
      const c = { x: t.x, g: t.g, gamma: t.gamma, beta: t.beta, attrs, ...stats };
      const sums = batchNormGradSumsRaw(c);
      const dx = batchNormInputGradRaw(c, sums);
      if (training) (stats.mean.dispose(), stats.variance.dispose());
      return joinFlat([dx, sums.sumGXhat, sums.sumG]);
    };
    return {
      execute: () => (version ? withBatchNormVersion(version, run) : run()),
      reference: () => {
        const { dx, dgamma, dbeta } = batchNormBackwardRef(data.x, shape, data.g, refOptions);
        return joinRef([dx, dgamma, dbeta]);
      },
      // dγ and dβ are sums over all rows, whose f32 rounding grows with their number.
      tolerance: Math.max(1e-5, 2e-6 * Math.sqrt(data.x.length / shape[3]!)),
      flops: (training ? 19 : 14) * data.x.length,
      describe: `${describe}; output dx, dγ, dβ joined`,
      dispose,
    };
  },
};

// ---------------------------------------------------------------------------------------------------------
// Conv2d backward

const CONV_PARAMS = [
  { name: 'batch', default: 2, min: 1, max: 64 },
  { name: 'height', default: 16, min: 1, max: 512 },
  { name: 'width', default: 16, min: 1, max: 512 },
  { name: 'inChannels', default: 16, min: 1, max: 1024 },
  { name: 'outChannels', default: 32, min: 1, max: 1024 },
  { name: 'kernel', default: 3, min: 1, max: 11, help: 'square kernel size' },
  { name: 'stride', default: 1, choices: [1, 2] },
  { name: 'padding', default: 'same', choices: ['same', 'valid'] },
  ...TILE_PARAMS,
] as const;

/** x, w and dy of a conv2d backward case, with the geometry. */
function convInputs(p: Params) {
  const [n, h, w, c, f, k] = ['batch', 'height', 'width', 'inChannels', 'outChannels', 'kernel'].map((name) => p[name] as number) as [number, number, number, number, number, number];
  const options = { strides: p.stride as number, padding: p.padding as ConvPadding };
  const xShape: Shape = [n, h, w, c], wShape: Shape = [k, k, c, f];
  const geo = conv2dGeometry('conv2d', xShape, wShape, options);
  const x = randomValues(n * h * w * c, 38), wt = randomValues(k * k * c * f, 39);
  const dy = randomValues(n * geo.OH * geo.OW * f, 40);
  const backwardRef = () => conv2dBackwardRef(x, xShape, wt, wShape, dy, options);
  const describe = `x [${xShape.join('×')}], w [${wShape.join('×')}], dy [${n}×${geo.OH}×${geo.OW}×${f}], stride ${options.strides}, ${options.padding}`;
  return { geo, x, wt, dy, xShape, wShape, backwardRef, describe };
}

const conv2dInputGradCase: KernelCase = {
  id: 'conv2d-input-grad',
  title: 'conv2d backward, dX: the transposed convolution of dy with w',
  // v2 (and v3 when Cout % 4 != 0) transpose w first: shape.wgsl on a CPU adapter, transpose.wgsl on a GPU.
  // 'matmul' runs a 1×1, stride-1, unpadded dX as dy · wᵀ; other shapes fall back to v3 (or v2). 'winograd'
  // runs a 3×3 stride-1 dX as the forward pass of dy with the filter turned (transforms around a batched matmul).
  // 'col2im' runs dy · wᵀ into columns (matmul) and gathers them into dX (conv2d_col2im) where they fit 64 MiB.
  shaders: ['conv2d_v1', 'conv2d_v2', 'conv2d_v3', 'conv2d_winograd', 'conv2d_col2im', 'shape', 'transpose', 'matmul_v2', 'matmul_v3'],
  params: CONV_PARAMS,
  versions: CONV_VERSIONS,
  prepare(p, version) {
    const { geo, wt, dy, xShape, wShape, backwardRef, describe } = convInputs(p);
    const tw = tensor(wt, wShape), tdy = tensor(dy, [geo.N, geo.OH, geo.OW, geo.F]);
    const run = () => conv2dInputGradRaw(tdy, tw, geo);
    return {
      execute: () => withTiles(p, () => (version ? withConvVersion(version as ConvVersion, run) : run())),
      reference: () => backwardRef().dx,
      tolerance: 1e-4 * Math.sqrt(geo.KH * geo.KW * geo.F),
      flops: convFlops(geo),
      describe: `${describe} → dx [${xShape.join('×')}]`,
      dispose: () => (tw.dispose(), tdy.dispose()),
    };
  },
};

const conv2dFilterGradCase: KernelCase = {
  id: 'conv2d-filter-grad',
  title: 'conv2d backward, dW: the correlation of x with dy',
  // v2 and v3 split the sum over pixels into ranges when there are many, then add the parts (reduce.wgsl).
  // dW has no matmul path: 'matmul' runs v3 (or v2). 'winograd' runs a 3×3 stride-1 dW as the adjoint transforms
  // around a batched matmul (Vᵀ · dM).
  shaders: ['conv2d_v1', 'conv2d_filter_grad_v2', 'conv2d_filter_grad_v3', 'reduce', 'conv2d_winograd', 'matmul_v2', 'matmul_v3'],
  params: CONV_PARAMS,
  versions: CONV_VERSIONS.filter((v) => v !== 'col2im'), // col2im computes dX only
  prepare(p, version) {
    const { geo, x, dy, xShape, wShape, backwardRef, describe } = convInputs(p);
    const tx = tensor(x, xShape), tdy = tensor(dy, [geo.N, geo.OH, geo.OW, geo.F]);
    const run = () => conv2dFilterGradRaw(tx, tdy, geo);
    return {
      execute: () => withTiles(p, () => (version ? withConvVersion(version as ConvVersion, run) : run())),
      reference: () => backwardRef().dw,
      tolerance: 1e-4 * Math.sqrt(geo.N * geo.OH * geo.OW),
      flops: convFlops(geo),
      describe: `${describe} → dw [${wShape.join('×')}]`,
      dispose: () => (tx.dispose(), tdy.dispose()),
    };
  },
};

export const BACKWARD_CASES: readonly KernelCase[] = [
  softmaxBackwardCase, batchNormCase, batchNormBackwardCase, conv2dInputGradCase, conv2dFilterGradCase,
];
