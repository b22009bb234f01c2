/**
 * BatchNormalization → ReLU as one kernel: a rewrite that `Model.execute` applies wherever a BatchNorm's
 * output is read by a ReLU Activation and by nothing else.
 *
 * Keras models (ResNet50's conv → BN → ReLU, the DANN LeNet's) write the ReLU as a layer of its own, so run
 * as written a training step makes four passes over the activations where two do: forward, the normalise
 * kernel then a ReLU kernel; backward, the ReLU's mask (relu backward) then batch norm's dx. The batchNorm
 * op has the ReLU as an epilogue (`relu: true`): forward it clamps before storing, backward its kernels
 * recompute the pre-activation in the forward kernel's arithmetic and mask the gradient themselves. So the
 * executor calls the BatchNorm with `fusedRelu` and skips the Activation; the result and the gradients are
 * the same bits (max(v, 0) > 0 exactly where v > 0). The tape holds one tensor fewer per pair (the ReLU's
 * saved output), though where the next layer keeps that same tensor for its own backward no memory is saved:
 * ResNet50's full fine-tuning step peaked at 1,110 MiB against 1,136 before.
 *
 * Frozen conv → BN (→ ReLU) chains are folded into the convolution instead where that pays (folding.ts);
 * this fusion covers the rest (training mode, and chains folding skips). Not fused: a BN whose output is a
 * requested target (feature extraction at that layer) or is read by anything besides the ReLU.
 * `withReluFusion(false, fn)` runs the graph as written (tests compare the two).
 */
import type { SymbolicTensor } from './layer.js';
import { Switch } from './switch.js';
import { type StepLike, readersOf } from './graph-readers.js';
import { BatchNormalization } from './layers/normalization.js';

const fusion = new Switch();

/** Runs `fn` with the fusion switched on or off, then restores the previous setting. */
export function withReluFusion<T>(on: boolean, fn: () => T): T {
  return fusion.with(on, fn);
}

/**
 * For each BatchNormalization step whose output only a ReLU step reads, that ReLU step. `keep` holds the
 * tensors that must be returned (never fused away).
 */
export function planReluFusions<S extends StepLike>(steps: readonly S[], keep: ReadonlySet<SymbolicTensor>): Map<S, S> {
  const fused = new Map<S, S>();
  if (!fusion.on) return fused;
  const { reluAfter } = readersOf(steps, keep);
  for (const s of steps) {
    if (!(s.layer instanceof BatchNormalization)) continue;
    const relu = reluAfter(s.layer.nodes[s.node]!.output);
    if (relu) fused.set(s, relu);
  }
  return fused;
}
