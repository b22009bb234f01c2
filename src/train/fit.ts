/**
 * Keras-style training loops: `fit`, `evaluate` and `predict` over a model and a source of batches.
 *
 *   const history = await fit(model, arrayBatches(x, y, { batchSize: 32, shuffle: true, seed: 1, inputShape: [8] }), {
 *     optimizer: new Adam(model.trainableParameters(), { lr: 1e-3 }),
 *     loss: 'sparseCategoricalCrossentropy', epochs: 10, validation, callbacks: [new EarlyStopping({ patience: 2 })],
 *   });
 *
 * One training step is one synchronous `tidy`: zeroGrad, forward with `training: true`, loss, backward,
 * optimizer.step; every intermediate is freed when it returns. The step's loss (times the batch size) and its
 * number of correct predictions are added to two scalars that stay on the GPU, so an epoch reads back exactly
 * two numbers, once, at its end (as examples/mnist-mlp.ts does). Accuracy costs three small kernels per step
 * (row max, compare, sum) and one upload of a [B, C] one-hot target; no per-step readback.
 *
 * The loss and a final softmax. Cross-entropy computed as −log(p) from softmax probabilities loses everything
 * below f32's resolution: a confident wrong prediction has p ≈ 1e-30 or underflows to 0, −log(0) = ∞, and
 * clipping p to [ε, 1 − ε] (what Keras does) caps the loss and zeroes the gradient for exactly the examples
 * that most need it. Graft's `softmaxCrossEntropy` takes LOGITS and uses log-sum-exp, exact at any scale, and
 * its gradient softmax − target never overflows. So `fit` and `evaluate` call the model with `logits: true`:
 * a final softmax layer (Dense or Activation) leaves its softmax out, and the logits go to the fused loss; the
 * argmax used for accuracy is the same either way. A model whose output is not a softmax outputs logits.
 *
 * Frozen bases. `cacheFeatures` runs the model's constant part (a frozen base) once over the training and
 * validation data, keeps its output in host memory, and trains for every epoch on that (feature-cache.ts).
 *
 * Epochs are numbered from 0 as in Keras: `epochs` is the index to stop before, `initialEpoch` the first.
 */
import { ArgumentError, ShapeError } from '../errors.js';
import { noGrad } from '../autograd/tape.js';
import { tensor } from '../tensor/create.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { add, backward, clamp, equal, max, mul, mulScalar, softmax, softmaxCrossEntropy, sum } from '../ops/index.js';
import type { Layer, SymbolicTensor } from '../nn/layer.js';
import { Model } from '../nn/model.js';
import { Activation, type ActivationName, Dense } from '../nn/layers/core.js';
import type { Callback, Logs, TrainOptimizer } from './callbacks.js';
import { argmaxRows, type Batch, type BatchSource } from './batches.js';
import { FeatureCache } from './feature-cache.js';
import { allFinite, NonFiniteError } from './nonfinite.js';

export * from './batches.js';

// ---------------------------------------------------------------------------------------------------------
// The model's output: logits or probabilities

export type LossName = 'sparseCategoricalCrossentropy' | 'categoricalCrossentropy';
const LOSSES: readonly LossName[] = ['sparseCategoricalCrossentropy', 'categoricalCrossentropy'];

/** The layer that produces the model's output, looking inside nested models. */
export function outputLayer(model: Model): Layer {
  let layer: Layer = model.outputs[0]!.layer;
  while (layer instanceof Model) layer = layer.outputs[0]!.layer;
  return layer;
}

/** The activation applied by the model's last layer, or 'linear' when it is not a Dense or Activation layer. */
export function finalActivation(model: Model): ActivationName {
  const last = outputLayer(model);
  return last instanceof Dense || last instanceof Activation ? last.activation : 'linear';
}

function checkLoss(op: string, model: Model, loss: unknown): LossName {
  if (!LOSSES.includes(loss as LossName)) throw new ArgumentError(`${op}: unknown loss '${String(loss)}' (known: ${LOSSES.join(', ')}).`);
  const act = finalActivation(model);
  if (act !== 'softmax' && act !== 'linear') {
    throw new ArgumentError(`${op}: loss '${loss}' needs a model that outputs logits or a softmax; its last layer has activation '${act}'.`);
  }
  return loss as LossName;
}

/** Uploads a batch's model inputs (`x`) or cached features, checking every size against the model. */
function batchFeeds(op: string, model: Model, b: Batch): Map<SymbolicTensor, Tensor> {
  const given: Array<[SymbolicTensor, Float32Array]> = b.features ? [...b.features] : [[model.inputs[0]!, b.x]];
  return new Map(
    given.map(([sym, values]) => {
      const perExample = sym.shape.reduce((a, c) => a * c, 1);
      if (values.length !== b.count * perExample) {
        const what = b.features ? `cached features for ${sym}` : 'x';
        throw new ShapeError(`${op}: batch ${what} has ${values.length} values; expected count × [${sym.shape.join(', ')}] = ${b.count * perExample}.`);
      }
      return [sym, tensor(values, [b.count, ...sym.shape])];
    }),
  );
}

/** The model's logits for a batch: from its inputs, or from cached features (only the layers after them run). */
function logitsOf(model: Model, feeds: Map<SymbolicTensor, Tensor>, training: boolean): Tensor {
  return model.execute(feeds, model.outputs, { training, logits: true })[0]!;
}

/** The batch's labels on the GPU, plus a one-hot of the target class for accuracy. */
function batchTargets(op: string, model: Model, loss: LossName, b: Batch): { y: Tensor; target: Tensor } {
  const classes = model.outputs[0]!.shape[model.outputs[0]!.shape.length - 1]!;
  const hot = new Float32Array(b.count * classes);
  if (loss === 'sparseCategoricalCrossentropy') {
    if (!(b.y instanceof Int32Array) || b.y.length !== b.count) {
      throw new ArgumentError(`${op}: loss 'sparseCategoricalCrossentropy' needs y as an Int32Array of ${b.count} class indices, got ${b.y.constructor.name}(${b.y.length}).`);
    }
    for (let i = 0; i < b.count; i++) {
      const c = b.y[i]!;
      if (!(c >= 0 && c < classes)) throw new ArgumentError(`${op}: label ${c} (example ${i} of a batch) is outside [0, ${classes}); the model has ${classes} outputs.`);
      hot[i * classes + c] = 1;
    }
  } else {
    if (!(b.y instanceof Float32Array) || b.y.length !== b.count * classes) {
      throw new ArgumentError(`${op}: loss 'categoricalCrossentropy' needs y as a Float32Array of ${b.count}×${classes} one-hot rows, got ${b.y.constructor.name}(${b.y.length}).`);
    }
    // Accuracy compares argmaxes, as Keras's categorical accuracy does (soft targets included).
    argmaxRows(b.y, classes).forEach((best, i) => (hot[i * classes + best] = 1));
  }
  const y = loss === 'sparseCategoricalCrossentropy' ? tensor(b.y, [b.count], 'i32') : tensor(b.y, [b.count, classes]);
  return { y, target: tensor(hot, [b.count, classes]) };
}

/** Number of rows whose largest logit is at the target class, as a scalar on the GPU (a tie counts once). */
function correctCount(logits: Tensor, target: Tensor): Tensor {
  return noGrad(() => sum(clamp(sum(mul(equal(logits, max(logits, -1, true)), target), -1), 0, 1)));
}

/** Running sums kept on the GPU: loss × examples, and correct predictions. */
interface Totals {
  loss: Tensor;
  correct: Tensor;
}

function accumulate(prev: Totals | null, loss: Tensor, correct: Tensor): Totals {
  if (!prev) return { loss, correct };
  return noGrad(() => ({ loss: add(prev.loss, loss), correct: add(prev.correct, correct) }));
}

async function readTotals(totals: Totals | null, examples: number): Promise<{ loss: number; accuracy: number }> {
  if (!totals) return { loss: NaN, accuracy: NaN };
  const loss = (await totals.loss.item()) / examples;
  const accuracy = (await totals.correct.item()) / examples;
  totals.loss.dispose();
  totals.correct.dispose();
  return { loss, accuracy };
}

// ---------------------------------------------------------------------------------------------------------
// fit / evaluate / predict

export interface History {
  epoch: number[];
  loss: number[];
  accuracy: number[];
  val_loss: number[];
  val_accuracy: number[];
}

export function emptyHistory(): History {
  return { epoch: [], loss: [], accuracy: [], val_loss: [], val_accuracy: [] };
}

/** Appends an epoch's logs to `history` (the val_* entries when the epoch was validated). */
export function recordEpoch(history: History, epoch: number, logs: Logs): void {
  history.epoch.push(epoch);
  history.loss.push(logs.loss!);
  history.accuracy.push(logs.accuracy!);
  if (logs.val_loss !== undefined) {
    history.val_loss.push(logs.val_loss);
    history.val_accuracy.push(logs.val_accuracy!);
  }
}

/** What `onProgress` hears: each step of the caching passes, of training and of validation. */
export interface ProgressEvent {
  phase: 'cache' | 'train' | 'validate';
  epoch: number;
  /**
   * Steps done in this phase of this epoch (for 'cache': of this view). Each phase starts with an event at
   * step 0 (nothing done yet), so that rates and ETAs are measured from the phase's real start.
   */
  step: number;
  /** Examples done in this phase of this epoch. */
  examples: number;
  /** Examples per epoch, when the source knows it. */
  total?: number;
  /**
   * 'train' only: the epoch's running mean loss and accuracy so far (one small GPU readback). Call it inside
   * `onProgress`, not later: the running totals it reads are replaced by the next step.
   */
  metrics?: () => Promise<{ loss: number; accuracy: number }>;
}

/**
 * `FeatureCache.build`'s `onBatch` as progress events of phase 'cache': `epoch` is the augmented view being
 * cached, or -1 for a validation set (one unaugmented pass).
 */
export function cacheProgress(onProgress: ((e: ProgressEvent) => void) | undefined, validation: boolean) {
  return (i: { view: number; step: number; examples: number; total?: number }): void =>
    onProgress?.({ phase: 'cache', epoch: validation ? -1 : i.view, step: i.step, examples: i.examples, ...(i.total === undefined ? {} : { total: i.total }) });
}

/** Caches built beforehand (FeatureCache.build), e.g. to share one between head training and fine-tuning. */
export interface PrebuiltCaches {
  train: FeatureCache;
  validation?: FeatureCache;
}

export interface FeatureCachingOptions {
  /** Passes over the training data to cache, each with its epoch's augmentation. Default 1. */
  views?: number;
  /** Seed of the per-epoch reshuffle of the cached examples. Default 0. */
  seed?: number;
}

export interface FitOptions {
  /** An SGD, Adam or AdamW over (at least) the model's trainable parameters. */
  optimizer: TrainOptimizer & { step(): void; zeroGrad(): void; gradients(): Tensor[] };
  loss: LossName;
  epochs: number;
  validation?: BatchSource;
  callbacks?: Callback[];
  /**
   * Cache the output of the model's frozen part (Model.constantFrontier) once, and train on it (see
   * feature-cache.ts). `true` is `{ views: 1 }`. Throws when nothing before the trainable layers is frozen.
   */
  cacheFeatures?: boolean | FeatureCachingOptions | PrebuiltCaches;
  onProgress?: (event: ProgressEvent) => void;
  initialEpoch?: number;
  /**
   * What a NaN or ±Inf loss does. 'stop' (default): the epoch's mean loss and the trainable weights are
   * checked when the epoch ends (no cost per step), and a non-finite one stops training with a
   * NonFiniteError, before the epoch's callbacks (those of earlier epochs ran, so their checkpoints are intact). 'skip': every step's loss and gradients are checked on
   * the GPU before the update and a bad step is skipped (the weights and optimizer state stay as they were);
   * this reads back one number per step. Skipped steps are counted in the logs as `skipped_steps`.
   */
  onNonFinite?: 'stop' | 'skip';
}

const FIT_KEYS = ['optimizer', 'loss', 'epochs', 'validation', 'callbacks', 'cacheFeatures', 'onProgress', 'initialEpoch', 'onNonFinite'];

export async function fit(model: Model, train: BatchSource, options: FitOptions): Promise<History> {
  for (const k of Object.keys(options)) if (!FIT_KEYS.includes(k)) throw new ArgumentError(`fit: unknown option '${k}'; the options are ${FIT_KEYS.join(', ')}.`);
  const { optimizer, epochs, callbacks = [], onProgress, initialEpoch = 0, onNonFinite = 'stop' } = options;
  if (onNonFinite !== 'stop' && onNonFinite !== 'skip') throw new ArgumentError(`fit: onNonFinite must be 'stop' or 'skip', got '${String(onNonFinite)}'.`);
  const loss = checkLoss('fit', model, options.loss);
  if (!Number.isInteger(epochs) || epochs < 0) throw new ArgumentError(`fit: epochs must be a non-negative integer, got ${epochs}.`);
  if (!Number.isInteger(initialEpoch) || initialEpoch < 0) throw new ArgumentError(`fit: initialEpoch must be a non-negative integer, got ${initialEpoch}.`);
  let validation = options.validation;
  const caching = options.cacheFeatures;
  if (caching && typeof caching === 'object' && 'train' in caching) {
    if (!(caching.train instanceof FeatureCache)) throw new ArgumentError('fit: cacheFeatures.train must be a FeatureCache.');
    caching.train.checkUsableWith(model);
    caching.validation?.checkUsableWith(model);
    if (validation && !caching.validation) throw new ArgumentError('fit: cacheFeatures has a train cache but no validation cache while validation data is given; cache both or neither.');
    train = caching.train;
    validation = caching.validation;
  } else if (caching && epochs > initialEpoch) {
    const { views = 1, seed = 0 } = caching === true ? {} : caching;
    train = await FeatureCache.build(model, train, { views, seed, onBatch: cacheProgress(onProgress, false) });
    if (validation) validation = await FeatureCache.build(model, validation, { shuffle: false, onBatch: cacheProgress(onProgress, true) });
  }
  const history = emptyHistory();
  const context = { model, optimizer };
  for (const c of callbacks) await c.onTrainBegin?.(context);
  try {
    for (let epoch = initialEpoch; epoch < epochs; epoch++) {
      for (const c of callbacks) await c.onEpochBegin?.(epoch, context);
      let totals: Totals | null = null;
      let examples = 0;
      let step = 0;
      onProgress?.({ phase: 'train', epoch, step, examples: 0, ...(train.size === undefined ? {} : { total: train.size }) });
      let skipped = 0;
      for await (const b of train.batches(epoch)) {
        const { lossTimesCount, correct, finite } = tidy(() => {
          const { y, target } = batchTargets('fit', model, loss, b);
          const feeds = batchFeeds('fit', model, b);
          optimizer.zeroGrad();
          const logits = logitsOf(model, feeds, true);
          const l = softmaxCrossEntropy(logits, y); // mean over the batch: the gradient of the mean loss
          backward(l);
          if (onNonFinite === 'stop') optimizer.step();
          const check = onNonFinite === 'skip' ? allFinite([l, ...optimizer.gradients()]) : null;
          return { lossTimesCount: noGrad(() => mulScalar(l, b.count)), correct: correctCount(logits, target), finite: check };
        });
        if (finite) {
          // 'skip': one readback, then the update only for a finite step; a bad step adds nothing to the totals.
          const ok = (await finite.item()) === 1;
          finite.dispose();
          if (!ok) {
            skipped++;
            optimizer.zeroGrad();
            lossTimesCount.dispose();
            correct.dispose();
            continue;
          }
          optimizer.step();
        }
        const prev: Totals | null = totals;
        totals = accumulate(prev, lossTimesCount, correct);
        if (prev) {
          prev.loss.dispose();
          prev.correct.dispose();
          lossTimesCount.dispose();
          correct.dispose();
        }
        examples += b.count;
        if (onProgress) {
          // Reading starts when metrics() is called, so later steps cannot change what it returns.
          const seen = totals, n = examples;
          const metrics = () => Promise.all([seen.loss.item(), seen.correct.item()]).then(([loss, correct]) => ({ loss: loss / n, accuracy: correct / n }));
          onProgress({ phase: 'train', epoch, step: ++step, examples, ...(train.size === undefined ? {} : { total: train.size }), metrics });
        }
      }
      optimizer.zeroGrad(); // free the last step's gradients: memory between epochs is the weights and state
      const logs: Logs = { ...(await readTotals(totals, examples)) };
      // The GPU runs behind the steps that record its work; this event, after the readback, times the whole epoch.
      onProgress?.({ phase: 'train', epoch, step, examples, ...(train.size === undefined ? {} : { total: train.size }) });
      if (onNonFinite === 'skip') logs.skipped_steps = skipped;
      else if (examples > 0) {
        // The loss alone can look finite while the weights are not: relu(NaN) may give 0 (WGSL's max is
        // free to), hiding NaN weights from the forward pass. So the trainable weights are checked too.
        const check = allFinite(model.trainableParameters());
        const weightsOk = (await check.item()) === 1;
        check.dispose();
        if (!Number.isFinite(logs.loss!) || !weightsOk) {
          const what = !Number.isFinite(logs.loss!) ? `the training loss of epoch ${epoch} is ${logs.loss}` : `after epoch ${epoch} the trainable weights hold NaN or infinite values`;
          throw new NonFiniteError(`fit: ${what}. Training stopped; checkpoints of earlier epochs are intact. Lower the learning rate, clip gradients (clipNorm), or pass onNonFinite: 'skip' (graft train --skip-nonfinite) to skip such steps.`);
        }
      }
      if (validation) {
        const v = await evaluate(model, validation, { loss, ...(onProgress ? { onProgress: (e: ProgressEvent) => onProgress({ ...e, epoch }) } : {}) });
        logs.val_loss = v.loss;
        logs.val_accuracy = v.accuracy;
      }
      recordEpoch(history, epoch, logs);
      let stop = false;
      for (const c of callbacks) if ((await c.onEpochEnd?.(epoch, logs, context)) === 'stop') stop = true;
      if (stop) break;
    }
  } finally {
    for (const c of callbacks) await c.onTrainEnd?.(context);
  }
  return history;
}

export interface EvaluateOptions {
  loss: LossName;
  onProgress?: (event: ProgressEvent) => void;
}

export async function evaluate(model: Model, data: BatchSource, options: EvaluateOptions): Promise<{ loss: number; accuracy: number }> {
  const loss = checkLoss('evaluate', model, options.loss);
  let totals: Totals | null = null;
  let examples = 0;
  let stepIndex = 0;
  options.onProgress?.({ phase: 'validate', epoch: 0, step: 0, examples: 0, ...(data.size === undefined ? {} : { total: data.size }) });
  for await (const b of data.batches(0)) {
    const step = noGrad(() =>
      tidy(() => {
        const { y, target } = batchTargets('evaluate', model, loss, b);
        const logits = logitsOf(model, batchFeeds('evaluate', model, b), false);
        return { lossSum: softmaxCrossEntropy(logits, y, { reduction: 'sum' }), correct: correctCount(logits, target) };
      }),
    );
    const prev: Totals | null = totals;
    totals = accumulate(prev, step.lossSum, step.correct);
    if (prev) {
      prev.loss.dispose();
      prev.correct.dispose();
      step.lossSum.dispose();
      step.correct.dispose();
    }
    examples += b.count;
    options.onProgress?.({ phase: 'validate', epoch: 0, step: ++stepIndex, examples, ...(data.size === undefined ? {} : { total: data.size }) });
  }
  const result = await readTotals(totals, examples);
  options.onProgress?.({ phase: 'validate', epoch: 0, step: stepIndex, examples, ...(data.size === undefined ? {} : { total: data.size }) });
  return result;
}

export interface Predictions {
  /** [count, C] flat: class probabilities (see `predict`). */
  probabilities: Float32Array;
  /** The source's labels as class indices (the argmax of one-hot rows). */
  labels: Int32Array;
  count: number;
  classes: number;
  /**
   * Mean cross-entropy of the labels, computed from the logits as `evaluate` computes it (so one pass gives
   * a report's loss and its predictions); null when the output is neither a softmax nor linear, or the
   * labels are neither class indices nor one-hot rows.
   */
  loss: number | null;
}

/**
 * The model's outputs for every example with the source's labels beside them, for reports and confusion
 * matrices. A model ending in a softmax gives its probabilities; a model with a linear output (logits) gets
 * a softmax applied; any other output is returned as it is.
 */
export async function predictLabelled(model: Model, data: BatchSource, onProgress?: (event: ProgressEvent) => void): Promise<Predictions> {
  const classes = model.outputs[0]!.shape[model.outputs[0]!.shape.length - 1]!;
  const parts: Float32Array[] = [];
  const labels: number[] = [];
  const activation = finalActivation(model);
  const fromLogits = activation === 'linear' || activation === 'softmax';
  let lossSum: number | null = fromLogits ? 0 : null;
  let examples = 0;
  let step = 0;
  onProgress?.({ phase: 'validate', epoch: 0, step, examples: 0, ...(data.size === undefined ? {} : { total: data.size }) });
  for await (const b of data.batches(0)) {
    const lossName: LossName | null = b.y instanceof Int32Array ? 'sparseCategoricalCrossentropy' : b.y.length === b.count * classes ? 'categoricalCrossentropy' : null;
    const out = noGrad(() =>
      tidy(() => {
        const feeds = batchFeeds('predict', model, b);
        if (!fromLogits) return { p: model.execute(feeds, model.outputs, { training: false })[0]!, lossSum: null };
        const logits = logitsOf(model, feeds, false);
        const sum = lossName === null ? null : softmaxCrossEntropy(logits, batchTargets('predict', model, lossName, b).y, { reduction: 'sum' });
        return { p: softmax(logits, -1), lossSum: sum };
      }),
    );
    parts.push(await out.p.floats());
    if (lossSum !== null) lossSum = out.lossSum ? lossSum + (await out.lossSum.item()) : null;
    out.p.dispose();
    out.lossSum?.dispose();
    const width = b.y.length / b.count;
    labels.push(...(width === 1 ? Array.from(b.y) : argmaxRows(b.y, width)));
    examples += b.count;
    onProgress?.({ phase: 'validate', epoch: 0, step: ++step, examples, ...(data.size === undefined ? {} : { total: data.size }) });
  }
  const probabilities = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    probabilities.set(p, at);
    at += p.length;
  }
  return { probabilities, labels: Int32Array.from(labels), count: examples, classes, loss: lossSum === null || examples === 0 ? null : lossSum / examples };
}

/** The model's outputs for every example, [N, C] flat (see `predictLabelled`). */
export async function predict(model: Model, data: BatchSource): Promise<Float32Array> {
  return (await predictLabelled(model, data)).probabilities;
}
