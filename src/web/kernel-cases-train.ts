/**
 * The kernel explorer's training cases: the loss functions and their backward kernels, the optimizer
 * updates, and the non-finite check that guards a step. See kernel-cases.ts.
 *
 * A loss's backward case runs the unrecorded kernel that the loss's backward rule runs, on an upstream
 * gradient g it draws itself. The cross-entropy backward kernel reads each row's log-sum-exp, which the
 * forward kernel writes, so that case runs both and lists both shaders.
 *
 * The optimizer kernels update in place, so execute() first copies the starting state on the GPU (a buffer
 * copy, not a kernel): every run takes the same step from the same state, and the reference is that step.
 */
import { runtime } from '../gpu/runtime.js';
import { Tensor } from '../tensor/tensor.js';
import { tensor } from '../tensor/create.js';
import {
  type Reduction, binaryCrossEntropyWithLogits, binaryCrossEntropyWithLogitsGradRaw, binaryCrossEntropyWithLogitsRef, softmaxCrossEntropy,
  softmaxCrossEntropyGradRaw, softmaxCrossEntropyRaw, softmaxCrossEntropyRef,
} from '../ops/losses.js';
import { type AdamHyper, type SgdHyper, adamUpdate, adamUpdateRef, sgdUpdate, sgdUpdateRef } from '../ops/optimizer-updates.js';
import { concat } from '../ops/shape.js';
import { softmaxRef } from '../ops/softmax.js';
import { allFinite, allFiniteRef } from '../train/nonfinite.js';
import { type KernelCase, type Params, randomIn, randomValues } from './kernel-case.js';

const SIZE = { name: 'size', default: 4096, min: 1, max: 1 << 24, help: 'number of elements' } as const;
const REDUCTION = { name: 'reduction', default: 'mean', choices: ['mean', 'sum', 'none'] } as const;

/** A GPU copy of `t` (copyBufferToBuffer, in order with the dispatches around it). */
function copyOf(t: Tensor): Tensor {
  const c = Tensor.empty(t.shape, t.dtype, 'kernel case state');
  runtime().copy(t.buffer, 0, c.buffer, 0, t.byteLength);
  return c;
}

/** The tensors flattened and joined (buffer copies, no kernel), so one readback checks them all; disposes them. */
export function joinFlat(parts: Tensor[]): Tensor {
  const flat = parts.map((t) => t.view([t.size]));
  const out = concat(flat, 0);
  for (const t of [...flat, ...parts]) t.dispose();
  return out;
}

/** The f64 reference of `joinFlat`. */
export function joinRef(parts: ArrayLike<number>[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of parts) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Losses

const CROSS_ENTROPY_PARAMS = [
  { name: 'batch', default: 64, min: 1, max: 65536 },
  { name: 'classes', default: 1000, min: 1, max: 1 << 20 },
  { name: 'labels', default: 'indices', choices: ['indices', 'probabilities'], help: 'i32 class indices [batch], or f32 target distributions [batch × classes]' },
  REDUCTION,
  { name: 'labelSmoothing', default: 0, min: 0, max: 1 },
] as const;

/** Logits, labels (as uploaded and as numbers) and options of a cross-entropy case. */
function crossEntropyInputs(p: Params) {
  const [B, C] = [p.batch as number, p.classes as number];
  const sparse = p.labels === 'indices';
  const logits = randomIn(B * C, 26, -4, 4);
  const labels = sparse
    ? Int32Array.from(randomValues(B, 27), (v) => Math.min(C - 1, Math.floor(((v + 1) / 2) * C)))
    : Float32Array.from(softmaxRef(randomIn(B * C, 27, -2, 2), [B, C], 1));
  const options = { reduction: p.reduction as Reduction, labelSmoothing: p.labelSmoothing as number };
  const tLogits = tensor(logits, [B, C]), tLabels = sparse ? tensor(labels, [B], 'i32') : tensor(labels, [B, C]);
  return { B, C, sparse, logits, labels, options, tLogits, tLabels };
}

const crossEntropyCase: KernelCase = {
  id: 'cross-entropy',
  title: 'softmax cross-entropy of logits [batch × classes]',
  shaders: ['cross_entropy'],
  params: CROSS_ENTROPY_PARAMS,
  prepare(p) {
    const { B, C, sparse, logits, labels, options, tLogits, tLabels } = crossEntropyInputs(p);
    return {
      execute: () => softmaxCrossEntropy(tLogits, tLabels, options),
      reference: () => softmaxCrossEntropyRef(logits, labels, [B, C], { sparse, ...options }),
      tolerance: 1e-5,
      flops: 6 * B * C,
      describe: `logits [${B}×${C}], ${p.labels}, ${options.reduction}, label smoothing ${options.labelSmoothing}`,
      dispose: () => (tLogits.dispose(), tLabels.dispose()),
    };
  },
};

const crossEntropyBackwardCase: KernelCase = {
  id: 'cross-entropy-backward',
  title: 'softmax cross-entropy backward: d loss / d logits',
  // The backward kernel reads each row's log-sum-exp and Σq, which the forward kernel writes.
  shaders: ['cross_entropy', 'cross_entropy_backward'],
  params: CROSS_ENTROPY_PARAMS,
  prepare(p) {
    const { B, C, sparse, logits, labels, options, tLogits, tLabels } = crossEntropyInputs(p);
    const attrs = { ...options, sparse };
    const perRow = options.reduction === 'none';
    const g = randomIn(perRow ? B : 1, 28, 0.5, 1.5);
    const tg = tensor(g, perRow ? [B] : []);
    const reference = () => {
      // With q = (1 − ε)·t + ε/C:  d loss_b / d logits_b = (softmax(logits_b)·Σq − q) · scale · g_b
      const softmaxes = softmaxRef(logits, [B, C], 1);
      const dx = new Float64Array(B * C);
      const scale = options.reduction === 'mean' ? 1 / B : 1;
      for (let b = 0; b < B; b++) {
        const q = Array.from({ length: C }, (_, c) => {
          const t = sparse ? (labels[b] === c ? 1 : 0) : labels[b * C + c]!;
          return (1 - options.labelSmoothing) * t + options.labelSmoothing / C;
        });
        const sumQ = q.reduce((a, v) => a + v, 0);
        for (let c = 0; c < C; c++) dx[b * C + c] = (softmaxes[b * C + c]! * sumQ - q[c]!) * scale * g[perRow ? b : 0]!;
      }
      return dx;
    };
    return {
      execute: () => {
        const { loss, stats } = softmaxCrossEntropyRaw(tLogits, tLabels, attrs);
        const dx = softmaxCrossEntropyGradRaw(tLogits, tLabels, stats, tg, attrs);
        loss.dispose();
        stats.dispose();
        return dx;
      },
      reference,
      tolerance: 1e-6,
      flops: 11 * B * C,
      describe: `logits [${B}×${C}], ${p.labels}, ${options.reduction}, label smoothing ${options.labelSmoothing}`,
      dispose: () => (tLogits.dispose(), tLabels.dispose(), tg.dispose()),
    };
  },
};

const bceCase: KernelCase = {
  id: 'bce-with-logits',
  title: 'binary cross-entropy with logits',
  shaders: ['bce_with_logits'],
  params: [SIZE, REDUCTION],
  prepare(p) {
    const n = p.size as number, reduction = p.reduction as Reduction;
    const logits = randomIn(n, 29, -6, 6), targets = randomIn(n, 30, 0, 1);
    const tx = tensor(logits, [n]), tt = tensor(targets, [n]);
    return {
      execute: () => binaryCrossEntropyWithLogits(tx, tt, { reduction }),
      reference: () => binaryCrossEntropyWithLogitsRef(logits, targets, reduction),
      tolerance: 1e-5,
      flops: 6 * n,
      describe: `logits, targets [${n}], ${reduction}`,
      dispose: () => (tx.dispose(), tt.dispose()),
    };
  },
};

const bceBackwardCase: KernelCase = {
  id: 'bce-with-logits-backward',
  title: 'binary cross-entropy with logits, backward: (σ(x) − t) · scale · g',
  shaders: ['bce_with_logits_backward'],
  params: [SIZE, REDUCTION],
  prepare(p) {
    const n = p.size as number, reduction = p.reduction as Reduction;
    const logits = randomIn(n, 29, -6, 6), targets = randomIn(n, 30, 0, 1);
    const perElement = reduction === 'none';
    const g = randomIn(perElement ? n : 1, 31, 0.5, 1.5);
    const tx = tensor(logits, [n]), tt = tensor(targets, [n]), tg = tensor(g, perElement ? [n] : []);
    const scale = reduction === 'mean' ? 1 / n : 1;
    return {
      execute: () => binaryCrossEntropyWithLogitsGradRaw(tx, tt, tg, reduction),
      reference: () => Float64Array.from(logits, (x, i) => (1 / (1 + Math.exp(-x)) - targets[i]!) * scale * g[perElement ? i : 0]!),
      tolerance: 1e-6,
      flops: 5 * n,
      describe: `logits, targets [${n}], ${reduction}`,
      dispose: () => (tx.dispose(), tt.dispose(), tg.dispose()),
    };
  },
};

// ---------------------------------------------------------------------------------------------------------
// Optimizer updates and the non-finite check

const sgdCase: KernelCase = {
  id: 'sgd-update',
  title: 'SGD step, in place: p ← p − lr·(v or g), with momentum and weight decay',
  shaders: ['sgd_update'],
  params: [
    SIZE,
    { name: 'lr', default: 0.1, min: 0, max: 10 },
    { name: 'momentum', default: 0.9, min: 0, max: 0.999, help: '0: plain SGD, no velocity' },
    { name: 'nesterov', default: 'no', choices: ['no', 'yes'], help: 'needs momentum > 0' },
    { name: 'weightDecay', default: 0, min: 0, max: 1 },
  ],
  prepare(p) {
    const n = p.size as number;
    const h: SgdHyper = { lr: p.lr as number, momentum: p.momentum as number, nesterov: p.nesterov === 'yes', weightDecay: p.weightDecay as number };
    const param = randomValues(n, 41), grad = randomValues(n, 42), velocity = randomIn(n, 43, -0.1, 0.1);
    const tp = tensor(param, [n]), tg = tensor(grad, [n]), tv = tensor(velocity, [n]);
    const withVelocity = h.momentum !== 0;
    return {
      execute: () => {
        const p1 = copyOf(tp), v1 = withVelocity ? copyOf(tv) : null;
        sgdUpdate(p1, tg, v1, h);
        return joinFlat(v1 ? [p1, v1] : [p1]);
      },
      reference: () => {
        const p1 = Float64Array.from(param), v1 = withVelocity ? Float64Array.from(velocity) : null;
        sgdUpdateRef(p1, grad, v1, h);
        return joinRef(v1 ? [p1, v1] : [p1]);
      },
      tolerance: 1e-6,
      flops: (withVelocity ? 6 : 4) * n,
      describe: `p, g [${n}]; output p′${withVelocity ? ', v′' : ''} joined`,
      dispose: () => (tp.dispose(), tg.dispose(), tv.dispose()),
    };
  },
};

const adamCase: KernelCase = {
  id: 'adam-update',
  title: 'Adam / AdamW step, in place, on p and its moments m, v',
  shaders: ['adam_update'],
  params: [
    SIZE,
    { name: 'lr', default: 1e-3, min: 0, max: 1 },
    { name: 'beta1', default: 0.9, min: 0, max: 0.9999 },
    { name: 'beta2', default: 0.999, min: 0, max: 0.99999 },
    { name: 'epsilon', default: 1e-7, min: 1e-12, max: 1 },
    { name: 'weightDecay', default: 0.01, min: 0, max: 1 },
    { name: 'decoupled', default: 'no', choices: ['no', 'yes'], help: 'yes: AdamW (decay applied to p); no: L2 decay added to g' },
    { name: 'step', default: 10, min: 1, max: 1e9, help: 'the step count t in the bias corrections 1 − βᵗ' },
  ],
  prepare(p) {
    const n = p.size as number;
    const h: AdamHyper = {
      lr: p.lr as number, beta1: p.beta1 as number, beta2: p.beta2 as number, epsilon: p.epsilon as number,
      weightDecay: p.weightDecay as number, decoupled: p.decoupled === 'yes', step: p.step as number,
    };
    // Moments as after some steps: m around 0, v positive.
    const param = randomValues(n, 44), grad = randomValues(n, 45), m = randomIn(n, 46, -0.1, 0.1), v = randomIn(n, 47, 0, 0.01);
    const tp = tensor(param, [n]), tg = tensor(grad, [n]), tm = tensor(m, [n]), tv = tensor(v, [n]);
    return {
      execute: () => {
        const [p1, m1, v1] = [copyOf(tp), copyOf(tm), copyOf(tv)];
        adamUpdate(p1, tg, m1, v1, h);
        return joinFlat([p1, m1, v1]);
      },
      reference: () => {
        const [p1, m1, v1] = [Float64Array.from(param), Float64Array.from(m), Float64Array.from(v)];
        adamUpdateRef(p1, grad, m1, v1, h);
        return joinRef([p1, m1, v1]);
      },
      tolerance: 1e-6,
      flops: 16 * n,
      describe: `${h.decoupled ? 'AdamW' : 'Adam'} step ${h.step}: p, g, m, v [${n}]; output p′, m′, v′ joined`,
      dispose: () => (tp.dispose(), tg.dispose(), tm.dispose(), tv.dispose()),
    };
  },
};

const nonfiniteCase: KernelCase = {
  id: 'nonfinite',
  title: 'allFinite: 1 when no element is NaN or ±Inf, else 0',
  // The flag starts from `full` and ends as 1 − flag by `affine`: both unary kernels.
  shaders: ['nonfinite', 'unary'],
  params: [
    SIZE,
    { name: 'poison', default: 'nan', choices: ['none', 'nan', 'inf', '-inf'], help: 'the bad value planted in x' },
    { name: 'at', default: 1000, min: 0, max: 1 << 24, help: 'its index (clamped to size − 1)' },
  ],
  prepare(p) {
    const n = p.size as number, at = Math.min(p.at as number, n - 1);
    const x = randomValues(n, 25);
    const bad = { none: null, nan: NaN, inf: Infinity, '-inf': -Infinity }[p.poison as 'none' | 'nan' | 'inf' | '-inf'];
    if (bad !== null) x[at] = bad;
    const tx = tensor(x, [n]);
    return {
      execute: () => allFinite([tx]),
      reference: () => [allFiniteRef([x]) ? 1 : 0],
      tolerance: 0,
      flops: 0,
      describe: `x [${n}]${bad === null ? ', all finite' : ` with x[${at}] = ${bad}`}`,
      dispose: () => tx.dispose(),
    };
  },
};

export const TRAIN_CASES: readonly KernelCase[] = [
  crossEntropyCase, crossEntropyBackwardCase, bceCase, bceBackwardCase, sgdCase, adamCase, nonfiniteCase,
];
