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
 * its gradient softmax − target never overflows. So when the model ends in a softmax (a Dense or Activation
 * layer with activation 'softmax'), `fit` and `evaluate` run that final layer as linear for the duration of the
 * call (`withLogits`) and feed the logits to the fused loss; the model's weights, and the argmax used for
 * accuracy, are the same either way. A model whose output is not a softmax is taken to output logits.
 *
 * Epochs are numbered from 0 as in Keras: `epochs` is the index to stop before, `initialEpoch` the first.
 */
import { ArgumentError, ShapeError } from '../errors.js';
import { noGrad } from '../autograd/tape.js';
import { tensor } from '../tensor/create.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { add, backward, clamp, equal, max, mul, mulScalar, permutation, softmax, softmaxCrossEntropy, sum } from '../ops/index.js';
import { Layer } from '../nn/layer.js';
import { Model } from '../nn/model.js';
import { Activation, type ActivationName, Dense } from '../nn/layers/core.js';
import type { Callback, Logs, TrainOptimizer } from './callbacks.js';

// ---------------------------------------------------------------------------------------------------------
// Data

export interface Batch {
  /** [count, ...inputShape] flat, NHWC for images. */
  x: Float32Array;
  /** Class indices [count] (Int32Array) or one-hot rows [count, C] (Float32Array). */
  y: Int32Array | Float32Array;
  count: number;
}

export interface BatchSource {
  batches(epoch: number): AsyncIterable<Batch>;
}

export interface ArrayBatchesOptions {
  batchSize: number;
  /** Reshuffle every epoch (deterministically from `seed` and the epoch). Default false. */
  shuffle?: boolean;
  seed?: number;
  /** Shape of one example, batch excluded, e.g. [8] or [32, 32, 3]. */
  inputShape: readonly number[];
  /** Checks that class indices lie in [0, numClasses) or that one-hot rows have this width. */
  numClasses?: number;
}

/** Batches of in-memory arrays; the last batch of an epoch may be smaller (as in Keras). */
export function arrayBatches(x: Float32Array, y: Int32Array | Float32Array, options: ArrayBatchesOptions): BatchSource {
  const { batchSize, shuffle = false, seed = 0, inputShape, numClasses } = options;
  if (!Number.isInteger(batchSize) || batchSize <= 0) throw new ArgumentError(`arrayBatches: batchSize must be a positive integer, got ${batchSize}.`);
  const perExample = inputShape.reduce((a, b) => a * b, 1);
  const n = x.length / perExample;
  if (!Number.isInteger(n)) throw new ShapeError(`arrayBatches: x has ${x.length} values, not a multiple of the example size ${perExample} (inputShape [${inputShape.join(', ')}]).`);
  const width = y instanceof Int32Array ? 1 : y.length / n;
  if (!Number.isInteger(width) || (y instanceof Int32Array && y.length !== n)) {
    throw new ShapeError(`arrayBatches: ${n} examples but y has ${y.length} values (expected ${n} class indices or ${n} one-hot rows).`);
  }
  if (numClasses !== undefined) {
    if (y instanceof Float32Array && width !== numClasses) throw new ShapeError(`arrayBatches: one-hot rows have ${width} columns, expected numClasses = ${numClasses}.`);
    if (y instanceof Int32Array) {
      const bad = y.findIndex((c) => c < 0 || c >= numClasses);
      if (bad >= 0) throw new ArgumentError(`arrayBatches: label ${y[bad]} at index ${bad} is outside [0, ${numClasses}).`);
    }
  }
  return {
    async *batches(epoch: number) {
      const order = shuffle ? permutation(n, (seed * 100_003 + epoch) >>> 0) : null;
      for (let start = 0; start < n; start += batchSize) {
        const count = Math.min(batchSize, n - start);
        const bx = new Float32Array(count * perExample);
        const by = y instanceof Int32Array ? new Int32Array(count) : new Float32Array(count * width);
        for (let i = 0; i < count; i++) {
          const k = order ? order[start + i]! : start + i;
          bx.set(x.subarray(k * perExample, (k + 1) * perExample), i * perExample);
          by.set(y.subarray(k * width, (k + 1) * width), i * width);
        }
        yield { x: bx, y: by, count };
      }
    },
  };
}

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

/**
 * Runs `model.call` with its final softmax (if any) switched off, so the result is the logits. The switch is
 * safe because the call is synchronous and restored in `finally`; the activation field is readonly only to
 * users.
 */
export function withLogits(model: Model, x: Tensor, training: boolean): Tensor {
  const last = outputLayer(model);
  if (!((last instanceof Dense || last instanceof Activation) && last.activation === 'softmax')) return model.call(x, { training });
  const mutable = last as unknown as { activation: ActivationName };
  mutable.activation = 'linear';
  try {
    return model.call(x, { training });
  } finally {
    mutable.activation = 'softmax';
  }
}

function checkLoss(op: string, model: Model, loss: unknown): LossName {
  if (!LOSSES.includes(loss as LossName)) throw new ArgumentError(`${op}: unknown loss '${String(loss)}' (known: ${LOSSES.join(', ')}).`);
  const act = finalActivation(model);
  if (act !== 'softmax' && act !== 'linear') {
    throw new ArgumentError(`${op}: loss '${loss}' needs a model that outputs logits or a softmax; its last layer has activation '${act}'.`);
  }
  return loss as LossName;
}

/** What one batch looks like on the GPU, plus a one-hot of the target class for accuracy. */
function batchTensors(op: string, model: Model, loss: LossName, b: Batch): { x: Tensor; y: Tensor; target: Tensor } {
  const inputShape = model.inputs[0]!.shape;
  const classes = model.outputs[0]!.shape[model.outputs[0]!.shape.length - 1]!;
  const perExample = inputShape.reduce((a, c) => a * c, 1);
  if (b.x.length !== b.count * perExample) {
    throw new ShapeError(`${op}: batch x has ${b.x.length} values; expected count × [${inputShape.join(', ')}] = ${b.count * perExample}.`);
  }
  const hot = new Float32Array(b.count * classes);
  if (loss === 'sparseCategoricalCrossentropy') {
    if (!(b.y instanceof Int32Array) || b.y.length !== b.count) {
      throw new ArgumentError(`${op}: loss 'sparseCategoricalCrossentropy' needs y as an Int32Array of ${b.count} class indices, got ${b.y.constructor.name}(${b.y.length}).`);
    }
    for (let i = 0; i < b.count; i++) hot[i * classes + b.y[i]!] = 1;
  } else {
    if (!(b.y instanceof Float32Array) || b.y.length !== b.count * classes) {
      throw new ArgumentError(`${op}: loss 'categoricalCrossentropy' needs y as a Float32Array of ${b.count}×${classes} one-hot rows, got ${b.y.constructor.name}(${b.y.length}).`);
    }
    // Accuracy compares argmaxes, as Keras's categorical accuracy does (soft targets included).
    for (let i = 0; i < b.count; i++) {
      let best = 0;
      for (let c = 1; c < classes; c++) if (b.y[i * classes + c]! > b.y[i * classes + best]!) best = c;
      hot[i * classes + best] = 1;
    }
  }
  const x = tensor(b.x, [b.count, ...inputShape]);
  const y = loss === 'sparseCategoricalCrossentropy' ? tensor(b.y, [b.count], 'i32') : tensor(b.y, [b.count, classes]);
  return { x, y, target: tensor(hot, [b.count, classes]) };
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

export interface FitOptions {
  /** An SGD, Adam or AdamW over (at least) the model's trainable parameters. */
  optimizer: TrainOptimizer & { step(): void; zeroGrad(): void };
  loss: LossName;
  epochs: number;
  validation?: BatchSource;
  callbacks?: Callback[];
  /** Called after each step (no readback: the loss is not available here). */
  onBatch?: (info: { epoch: number; batch: number; count: number }) => void;
  initialEpoch?: number;
}

const FIT_KEYS = ['optimizer', 'loss', 'epochs', 'validation', 'callbacks', 'onBatch', 'initialEpoch'];

export async function fit(model: Model, train: BatchSource, options: FitOptions): Promise<History> {
  for (const k of Object.keys(options)) if (!FIT_KEYS.includes(k)) throw new ArgumentError(`fit: unknown option '${k}'; the options are ${FIT_KEYS.join(', ')}.`);
  const { optimizer, epochs, validation, callbacks = [], onBatch, initialEpoch = 0 } = options;
  const loss = checkLoss('fit', model, options.loss);
  if (!Number.isInteger(epochs) || epochs < 0) throw new ArgumentError(`fit: epochs must be a non-negative integer, got ${epochs}.`);
  if (!Number.isInteger(initialEpoch) || initialEpoch < 0) throw new ArgumentError(`fit: initialEpoch must be a non-negative integer, got ${initialEpoch}.`);
  const history: History = { epoch: [], loss: [], accuracy: [], val_loss: [], val_accuracy: [] };
  const context = { model, optimizer };
  for (const c of callbacks) await c.onTrainBegin?.(context);
  try {
    for (let epoch = initialEpoch; epoch < epochs; epoch++) {
      for (const c of callbacks) await c.onEpochBegin?.(epoch, context);
      let totals: Totals | null = null;
      let examples = 0;
      let step = 0;
      for await (const b of train.batches(epoch)) {
        const { lossTimesCount, correct } = tidy(() => {
          const t = batchTensors('fit', model, loss, b);
          optimizer.zeroGrad();
          const logits = withLogits(model, t.x, true);
          const l = softmaxCrossEntropy(logits, t.y); // mean over the batch: the gradient of the mean loss
          backward(l);
          optimizer.step();
          return { lossTimesCount: noGrad(() => mulScalar(l, b.count)), correct: correctCount(logits, t.target) };
        });
        const prev: Totals | null = totals;
        totals = accumulate(prev, lossTimesCount, correct);
        if (prev) {
          prev.loss.dispose();
          prev.correct.dispose();
          lossTimesCount.dispose();
          correct.dispose();
        }
        examples += b.count;
        onBatch?.({ epoch, batch: step++, count: b.count });
      }
      optimizer.zeroGrad(); // free the last step's gradients: memory between epochs is the weights and state
      const logs: Logs = { ...(await readTotals(totals, examples)) };
      if (validation) {
        const v = await evaluate(model, validation, { loss });
        logs.val_loss = v.loss;
        logs.val_accuracy = v.accuracy;
      }
      history.epoch.push(epoch);
      history.loss.push(logs.loss!);
      history.accuracy.push(logs.accuracy!);
      if (validation) {
        history.val_loss.push(logs.val_loss!);
        history.val_accuracy.push(logs.val_accuracy!);
      }
      let stop = false;
      for (const c of callbacks) if ((await c.onEpochEnd?.(epoch, logs, context)) === 'stop') stop = true;
      if (stop) break;
    }
  } finally {
    for (const c of callbacks) await c.onTrainEnd?.(context);
  }
  return history;
}

export async function evaluate(model: Model, data: BatchSource, options: { loss: LossName }): Promise<{ loss: number; accuracy: number }> {
  const loss = checkLoss('evaluate', model, options.loss);
  let totals: Totals | null = null;
  let examples = 0;
  for await (const b of data.batches(0)) {
    const step = noGrad(() =>
      tidy(() => {
        const t = batchTensors('evaluate', model, loss, b);
        const logits = withLogits(model, t.x, false);
        return { lossSum: softmaxCrossEntropy(logits, t.y, { reduction: 'sum' }), correct: correctCount(logits, t.target) };
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
  }
  return readTotals(totals, examples);
}

/**
 * The model's outputs for every example, [N, C] flat. A model ending in a softmax gives its probabilities; a
 * model with a linear output (logits) gets a softmax applied; any other output is returned as it is.
 */
export async function predict(model: Model, data: BatchSource): Promise<Float32Array> {
  const inputShape = model.inputs[0]!.shape;
  const parts: Float32Array[] = [];
  const linear = finalActivation(model) === 'linear';
  for await (const b of data.batches(0)) {
    const out = noGrad(() =>
      tidy(() => {
        const y = model.call(tensor(b.x, [b.count, ...inputShape]), { training: false });
        return linear ? softmax(y, -1) : y;
      }),
    );
    parts.push(await out.floats());
    out.dispose();
  }
  const result = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    result.set(p, at);
    at += p.length;
  }
  return result;
}
