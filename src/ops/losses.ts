/**
 * Loss functions on logits, each a fused kernel in both directions, with f64 references.
 *
 * softmaxCrossEntropy(logits [B, C], labels)  (shaders/cross_entropy.wgsl, cross_entropy_backward.wgsl)
 *   labels are either class indices, i32 [B], or target distributions, f32 [B, C] (one-hot or soft).
 *   With q = (1 − ε)·t + ε/C (ε = labelSmoothing, t the one-hot or given targets):
 *     loss_b = −Σ_c q_c · log_softmax(logits_b)_c          (log-sum-exp with the row max subtracted)
 *     d loss_b / d logits_b = softmax(logits_b)·Σq − q       (= softmax − onehot for plain class indices)
 *   The forward also writes each row's log-sum-exp and Σq, so the backward is a single elementwise pass.
 *   A class index outside [0, C) cannot be checked on the CPU (labels live on the GPU): the kernel makes
 *   that row's loss (hence a 'mean' or 'sum') and its gradient NaN.
 *
 * binaryCrossEntropyWithLogits(logits, targets)  (shaders/bce_with_logits.wgsl, …_backward.wgsl)
 *     loss_i = max(x_i, 0) − x_i·t_i + log(1 + exp(−|x_i|)),    d loss_i / d x_i = σ(x_i) − t_i
 *
 * Reductions: 'mean' (default) averages over rows (cross-entropy) or elements (BCE); 'sum' adds; 'none'
 * returns one loss per row or element. Only the logits get gradients; labels and targets are data.
 */
import { isGradEnabled, record } from '../autograd/tape.js';
import type { BackwardRule } from '../autograd/backward.js';
import { Uniforms } from '../gpu/uniforms.js';
import { type Shape, Tensor, shapeStr } from '../tensor/tensor.js';
import { ArgumentError, ShapeError } from '../errors.js';
import { expectDType, grid1d, launch, sameShape } from './kernel.js';

export type Reduction = 'mean' | 'sum' | 'none';

export interface CrossEntropyOptions {
  reduction?: Reduction;
  /** ε in [0, 1]: the targets become (1 − ε)·t + ε/C. Default 0. */
  labelSmoothing?: number;
}

export interface LossOptions {
  reduction?: Reduction;
}

export interface CrossEntropyAttrs {
  reduction: Reduction;
  labelSmoothing: number;
  /** true: labels are i32 class indices [B]; false: f32 targets [B, C]. */
  sparse: boolean;
}

declare module '../autograd/tape.js' {
  interface OpRegistry {
    softmaxCrossEntropy: CrossEntropyAttrs;
    binaryCrossEntropyWithLogits: { reduction: Reduction };
  }
}

const WG = 64;
const REDUCTIONS: readonly Reduction[] = ['mean', 'sum', 'none'];

/** Rejects unknown option names and checks `reduction`; never ignores an option silently. */
function readReduction(op: string, options: object, allowed: readonly string[]): Reduction {
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) throw new ArgumentError(`${op}: unknown option '${key}'; the options are ${allowed.join(', ')}.`);
  }
  const reduction = (options as { reduction?: unknown }).reduction ?? 'mean';
  if (!REDUCTIONS.includes(reduction as Reduction)) {
    throw new ArgumentError(`${op}: reduction must be 'mean', 'sum' or 'none'; got ${JSON.stringify(reduction)}.`);
  }
  return reduction as Reduction;
}

function rejectGradTarget(op: string, t: Tensor, what: string): void {
  if (isGradEnabled() && t.requiresGrad) {
    throw new ArgumentError(`${op}: ${what} require grad, but only the logits are differentiated; pass detach(${what}).`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Softmax cross-entropy

/** Checks shapes and dtypes; returns B, C and whether the labels are class indices. */
function crossEntropyShapes(logits: Tensor, labels: Tensor): { rows: number; classes: number; sparse: boolean } {
  const op = 'softmaxCrossEntropy';
  labels.assertAlive(op);
  expectDType(op, logits, 'f32');
  if (logits.rank !== 2) throw new ShapeError(`${op}: logits have shape ${shapeStr(logits.shape)}; expected rank 2, [batch, classes].`);
  const [rows, classes] = logits.shape as [number, number];
  if (classes === 0) throw new ShapeError(`${op}: logits have shape ${shapeStr(logits.shape)}; expected at least one class.`);
  const sparse = labels.rank === 1;
  if (sparse ? labels.shape[0] !== rows : !sameShape(labels.shape, logits.shape)) {
    throw new ShapeError(
      `${op}: labels have shape ${shapeStr(labels.shape)} but logits have shape ${shapeStr(logits.shape)}; ` +
        `expected [${rows}] (i32 class indices) or [${rows}, ${classes}] (f32 targets).`,
    );
  }
  if (sparse && labels.dtype !== 'i32') {
    throw new ShapeError(`${op}: labels of shape ${shapeStr(labels.shape)} are class indices and must be i32; got ${labels.dtype}. ` +
      `For one-hot or probability targets pass f32 labels of shape [${rows}, ${classes}].`);
  }
  if (!sparse && labels.dtype !== 'f32') {
    throw new ShapeError(`${op}: labels of shape ${shapeStr(labels.shape)} are target distributions and must be f32; got ${labels.dtype}. ` +
      `For class indices pass i32 labels of shape [${rows}].`);
  }
  return { rows, classes, sparse };
}

/** Runs the forward kernel without recording: the loss and the per-row stats [B, 2] = (lse, Σq). */
export function softmaxCrossEntropyRaw(logits: Tensor, labels: Tensor, attrs: CrossEntropyAttrs): { loss: Tensor; stats: Tensor } {
  const { rows, classes, sparse } = crossEntropyShapes(logits, labels);
  const perRow = attrs.reduction === 'none';
  const loss = Tensor.empty(perRow ? [rows] : [], 'f32', 'softmaxCrossEntropy');
  const stats = Tensor.empty([rows, 2], 'f32', 'softmaxCrossEntropy stats');
  launch('softmaxCrossEntropy', {
    shader: 'cross_entropy',
    entry: perRow ? 'per_row' : 'total',
    constants: { SPARSE: sparse, WG },
    uniforms: new Uniforms().u32(rows).u32(classes).f32(attrs.reduction === 'mean' ? 1 / rows : 1).f32(attrs.labelSmoothing),
    inputs: [logits, labels],
    outputs: [loss, stats],
    workgroups: perRow ? grid1d(rows, WG) : [1],
    flops: 6 * logits.size,
  });
  return { loss, stats };
}

/**
 * Softmax cross-entropy between logits [B, C] and labels: i32 class indices [B], or f32 targets [B, C]
 * (one-hot or probabilities). Returns a scalar ('mean', 'sum') or one loss per row ('none').
 * An out-of-range class index gives NaN for its row (see the file header).
 */
export function softmaxCrossEntropy(logits: Tensor, labels: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const op = 'softmaxCrossEntropy';
  const reduction = readReduction(op, options, ['reduction', 'labelSmoothing']);
  const labelSmoothing = options.labelSmoothing ?? 0;
  if (typeof labelSmoothing !== 'number' || !(labelSmoothing >= 0 && labelSmoothing <= 1)) {
    throw new ArgumentError(`${op}: labelSmoothing must be a number in [0, 1]; got ${labelSmoothing}.`);
  }
  const { sparse } = crossEntropyShapes(logits, labels);
  rejectGradTarget(op, labels, 'labels');
  const attrs: CrossEntropyAttrs = { reduction, labelSmoothing, sparse };
  const { loss, stats } = softmaxCrossEntropyRaw(logits, labels, attrs);
  record(op, attrs, [logits], loss, [logits, labels, stats]);
  stats.dispose(); // the tape holds its own reference when it recorded
  return loss;
}

/** d loss / d logits in one dispatch, from the forward's per-row stats. */
export function softmaxCrossEntropyGradRaw(logits: Tensor, labels: Tensor, stats: Tensor, g: Tensor, attrs: CrossEntropyAttrs): Tensor {
  const [rows, classes] = logits.shape as [number, number];
  const dx = Tensor.empty(logits.shape, 'f32', 'softmaxCrossEntropy backward');
  launch('softmaxCrossEntropy backward', {
    shader: 'cross_entropy_backward',
    constants: { SPARSE: attrs.sparse, WG },
    uniforms: new Uniforms()
      .u32(rows).u32(classes).f32(attrs.reduction === 'mean' ? 1 / rows : 1).f32(attrs.labelSmoothing)
      .u32(attrs.reduction === 'none' ? 1 : 0),
    inputs: [logits, labels, stats, g],
    outputs: [dx],
    workgroups: grid1d(logits.size, WG),
    flops: 5 * logits.size,
  });
  return dx;
}

export const softmaxCrossEntropyBackward: BackwardRule<'softmaxCrossEntropy'> = ({ attrs, saved }, g) => {
  const [logits, labels, stats] = saved as [Tensor, Tensor, Tensor];
  return [softmaxCrossEntropyGradRaw(logits, labels, stats, g, attrs)];
};

// ---------------------------------------------------------------------------------------------------------
// Binary cross-entropy with logits

function bceShapes(logits: Tensor, targets: Tensor): void {
  const op = 'binaryCrossEntropyWithLogits';
  expectDType(op, logits, 'f32');
  targets.assertAlive(op);
  if (targets.dtype !== 'f32') throw new ShapeError(`${op}: targets have dtype ${targets.dtype}; expected f32 values in [0, 1].`);
  if (!sameShape(logits.shape, targets.shape)) {
    throw new ShapeError(`${op}: targets have shape ${shapeStr(targets.shape)} but logits have shape ${shapeStr(logits.shape)}; they must match.`);
  }
}

export function binaryCrossEntropyWithLogitsRaw(logits: Tensor, targets: Tensor, reduction: Reduction): Tensor {
  bceShapes(logits, targets);
  const n = logits.size;
  const perElement = reduction === 'none';
  const loss = Tensor.empty(perElement ? logits.shape : [], 'f32', 'binaryCrossEntropyWithLogits');
  if (perElement && n === 0) return loss;
  launch('binaryCrossEntropyWithLogits', {
    shader: 'bce_with_logits',
    entry: perElement ? 'per_element' : 'total',
    constants: { WG },
    uniforms: new Uniforms().u32(n).f32(reduction === 'mean' ? 1 / n : 1).u32(0).u32(0),
    inputs: [logits, targets],
    outputs: [loss],
    workgroups: perElement ? grid1d(n, WG) : [1],
    flops: 6 * n,
  });
  return loss;
}

/**
 * Binary cross-entropy between logits and f32 targets of the same shape (targets in [0, 1]), computed
 * from the logits directly. Returns a scalar ('mean' over all elements, 'sum') or the elementwise losses.
 */
export function binaryCrossEntropyWithLogits(logits: Tensor, targets: Tensor, options: LossOptions = {}): Tensor {
  const op = 'binaryCrossEntropyWithLogits';
  const reduction = readReduction(op, options, ['reduction']);
  bceShapes(logits, targets);
  rejectGradTarget(op, targets, 'targets');
  const loss = binaryCrossEntropyWithLogitsRaw(logits, targets, reduction);
  return record(op, { reduction }, [logits], loss, [logits, targets]);
}

export function binaryCrossEntropyWithLogitsGradRaw(logits: Tensor, targets: Tensor, g: Tensor, reduction: Reduction): Tensor {
  const n = logits.size;
  const dx = Tensor.empty(logits.shape, 'f32', 'binaryCrossEntropyWithLogits backward');
  if (n === 0) return dx;
  launch('binaryCrossEntropyWithLogits backward', {
    shader: 'bce_with_logits_backward',
    constants: { WG },
    uniforms: new Uniforms().u32(n).f32(reduction === 'mean' ? 1 / n : 1).u32(reduction === 'none' ? 1 : 0).u32(0),
    inputs: [logits, targets, g],
    outputs: [dx],
    workgroups: grid1d(n, WG),
    flops: 5 * n,
  });
  return dx;
}

export const binaryCrossEntropyWithLogitsBackward: BackwardRule<'binaryCrossEntropyWithLogits'> = ({ attrs, saved }, g) => {
  const [logits, targets] = saved as [Tensor, Tensor];
  return [binaryCrossEntropyWithLogitsGradRaw(logits, targets, g, attrs.reduction)];
};

// ---------------------------------------------------------------------------------------------------------
// References (f64)

function reduceRef(perItem: Float64Array, reduction: Reduction): Float64Array {
  if (reduction === 'none') return perItem;
  const total = perItem.reduce((a, b) => a + b, 0);
  return Float64Array.of(reduction === 'mean' ? total / perItem.length : total);
}

/**
 * Softmax cross-entropy of logits [rows, classes]. `labels` holds class indices (length rows) when
 * `sparse`, else targets (length rows·classes). An out-of-range class index gives NaN for its row.
 */
export function softmaxCrossEntropyRef(
  logits: ArrayLike<number>, labels: ArrayLike<number>, shape: Shape,
  { sparse, reduction = 'mean', labelSmoothing = 0 }: { sparse: boolean; reduction?: Reduction; labelSmoothing?: number },
): Float64Array {
  const [rows, classes] = shape as [number, number];
  const perRow = new Float64Array(rows);
  for (let b = 0; b < rows; b++) {
    const row = Array.from({ length: classes }, (_, c) => logits[b * classes + c]!);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    const label = labels[b]!;
    if (sparse && !(Number.isInteger(label) && label >= 0 && label < classes)) {
      perRow[b] = NaN;
      continue;
    }
    let loss = 0;
    for (let c = 0; c < classes; c++) {
      const t = sparse ? (c === label ? 1 : 0) : labels[b * classes + c]!;
      const q = (1 - labelSmoothing) * t + labelSmoothing / classes;
      loss += q * (lse - row[c]!);
    }
    perRow[b] = loss;
  }
  return reduceRef(perRow, reduction);
}

export function binaryCrossEntropyWithLogitsRef(logits: ArrayLike<number>, targets: ArrayLike<number>, reduction: Reduction = 'mean'): Float64Array {
  const n = logits.length;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = logits[i]!;
    out[i] = Math.max(x, 0) - x * targets[i]! + Math.log1p(Math.exp(-Math.abs(x)));
  }
  return reduceRef(out, reduction);
}

