/**
 * Recomputing batch-norm moving statistics from data: AdaBN (Li et al., "Revisiting batch normalization for
 * practical domain adaptation", ICLR workshops 2017).
 *
 * A BatchNormalization layer keeps an exponential moving average of the batch statistics it saw in training,
 * and normalises with it at inference. When training saw two domains in separate batches (each normalised by
 * its own statistics, as `graft adapt --batch-norm` does), that average mixes the two, and fits neither.
 * AdaBN's remedy is simple: before predicting on a domain, replace every layer's moving mean and variance by
 * that domain's statistics. Here they are the average over the given batches of each batch's statistics (the
 * cumulative average that PyTorch's swa_utils.update_bn also computes): for the k-th batch (k = 0, 1, …) the
 * update moving = moving·m + batch·(1 − m) runs with m = k/(k+1), so batch 0 overwrites the old statistics
 * and after K batches each has weight 1/K. Learned γ and β are untouched.
 */
import { noGrad } from '../autograd/tape.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { ArgumentError } from '../errors.js';
import type { Model } from './model.js';
import { BatchNormalization } from './layers/normalization.js';

/** The trainable BatchNormalization layers of `model`, nested models included. */
export function batchNormLayers(model: Model): BatchNormalization[] {
  const found: BatchNormalization[] = [];
  const stack = [...model.sublayers()];
  while (stack.length) {
    const l = stack.pop()!;
    if (l instanceof BatchNormalization) {
      if (l.variesInTraining) found.push(l);
    } else stack.push(...l.sublayers());
  }
  return found;
}

/**
 * Sets the moving statistics of every trainable BatchNormalization layer of `model` to the average batch
 * statistics of `batches` (each a tensor the function disposes after use). Returns the number of batches.
 */
export function recomputeBatchNormStatistics(model: Model, batches: Iterable<Tensor>): number {
  const layers = batchNormLayers(model);
  if (layers.length === 0) throw new ArgumentError(`recomputeBatchNormStatistics: ${model.name} has no trainable BatchNormalization layer.`);
  let k = 0;
  try {
    for (const x of batches) {
      for (const l of layers) l.momentumOverride = k / (k + 1);
      noGrad(() => tidy(() => void model.call(x, { training: true })));
      x.dispose();
      k++;
    }
  } finally {
    for (const l of layers) l.momentumOverride = null;
  }
  if (k === 0) throw new ArgumentError('recomputeBatchNormStatistics: no batches were given.');
  return k;
}
