/**
 * Folding a frozen BatchNormalization into the convolution before it: an inference-only rewrite that
 * `Model.execute` applies to Conv2D → BatchNormalization (→ ReLU) chains.
 *
 * A frozen BatchNorm is an affine map per channel, y = s·x + t with s = γ / √(σ² + ε) and t = β − μ·s (its
 * moving statistics, as Keras runs a frozen BN). After a convolution with kernel w and bias b,
 *
 *     s·(conv(x, w) + b) + t  =  conv(x, w·s) + (b·s + t),
 *
 * so one convolution with a scaled kernel and a new bias, and the ReLU that follows in its fused epilogue,
 * replace three passes over the activations (conv, BN, ReLU). In ResNet50's inference the BN and ReLU
 * passes are about 17 % of the step on lavapipe (bench/RESULTS.md). The folded kernel and bias are kept per
 * convolution (memory: one more copy of each folded kernel) and recomputed after an in-place write to any of
 * the weights they come from (write-generation.ts: uploads, optimizer steps, moving-statistics updates,
 * restored snapshots), so they cannot go stale. A folded kernel costs its size in memory and a pass to compute; it saves two passes
 * over the convolution's output each call. So a chain is folded only where that output (for this batch) is
 * at least as large as the kernel: in ResNet50 at 224, batch 8, that is 37 of the 53 BatchNorms; the other 16
 * (conv5's wide 1×1 layers on 7×7 maps) would cost 71 MiB more for 2 % of the step.
 *
 * The end of a ResNet block, conv → BN → Add(shortcut) → ReLU, goes further: the shortcut is added in the
 * same kernel's epilogue before the ReLU (conv2d's `residual`), which saves two more passes over the block's
 * output, the residual add and its ReLU (about 17 % of an f16 ResNet50 forward pass, bench/RESULTS.md). This
 * needs the shortcut when the convolution runs: in ResNet50's identity blocks it is the block's input, computed
 * long before; in the 4 projection blocks the shortcut's own convolution comes after the main path's last one
 * in the execution order (both are the same distance from the output), so there the folded convolution is
 * run as soon as the shortcut exists instead (`delayed`).
 *
 * Only chains where nothing trains are folded: the Conv2D and the BatchNormalization both frozen
 * (`trainable = false`), the convolution without an activation of its own, the convolution's output read
 * by the BN alone and the BN's by the ReLU alone (or the ReLU skipped), and no intermediate asked for.
 * The result equals the unfolded computation up to float rounding; `withBatchNormFolding(false, fn)` runs
 * the plain graph (tests compare the two).
 */
import { tidy } from '../tensor/scope.js';
import { WriteStamp } from '../tensor/write-generation.js';
import { noGrad } from '../autograd/tape.js';
import type { Tensor } from '../tensor/tensor.js';
import { add, affine, mul, reciprocal, sqrt } from '../ops/elementwise.js';
import { conv2d } from '../ops/conv.js';
import type { SymbolicTensor } from './layer.js';
import { Conv2D } from './layers/convolutional.js';
import { Add } from './layers/core.js';
import { BatchNormalization } from './layers/normalization.js';
import { releaseHalf, weightLike } from './precision.js';
import { Switch } from './switch.js';
import { type StepLike, readersOf } from './graph-readers.js';

const folding = new Switch();

/** Runs `fn` with folding switched on or off, then restores the previous setting. */
export function withBatchNormFolding<T>(on: boolean, fn: () => T): T {
  return folding.with(on, fn);
}


export interface FoldedChain<S extends StepLike> {
  conv: Conv2D;
  bn: BatchNormalization;
  relu: boolean;
  /** The steps the folded convolution replaces (the BN and, if folded, the Add and the ReLU). */
  replaced: S[];
  /** The convolution's own output (never computed when folded). */
  convOutput: SymbolicTensor;
  /** The symbolic tensor the folded convolution produces (the BN's output, the Add's, or the ReLU's). */
  output: SymbolicTensor;
  /** The Add's other input (a ResNet block's shortcut), added in the convolution's epilogue; or null. */
  residual: SymbolicTensor | null;
  /**
   * True when the residual is computed after the convolution in the execution order (a projection
   * shortcut): the folded convolution then runs as soon as the residual exists, instead of at its own step.
   */
  delayed: boolean;
}

/**
 * The foldable chains among `steps` (the layer calls of one `execute`), keyed by their convolution's step.
 * `keep` holds the tensors the caller wants back: they are never folded away.
 */
export function planFolds<S extends StepLike>(steps: readonly S[], keep: ReadonlySet<SymbolicTensor>): Map<S, FoldedChain<S>> {
  const plans = new Map<S, FoldedChain<S>>();
  if (!folding.on) return plans;
  const { onlyReader, reluAfter } = readersOf(steps, keep);
  // Where each tensor is computed: a residual computed later than the convolution delays it until then.
  const producedAt = new Map<SymbolicTensor, number>();
  steps.forEach((s, i) => producedAt.set(s.layer.nodes[s.node]!.output, i));
  const claimed = new Set<S>();
  for (const [at, s] of steps.entries()) {
    const conv = s.layer;
    if (!(conv instanceof Conv2D) || conv.trainable || conv.activation !== 'linear') continue;
    const bnStep = onlyReader(conv.nodes[s.node]!.output);
    const bn = bnStep?.layer;
    if (!bnStep || !(bn instanceof BatchNormalization) || bn.trainable || bn.nodes[bnStep.node]!.inputs.length !== 1) continue;
    let output = bn.nodes[bnStep.node]!.output;
    const replaced = [bnStep];
    let residual: SymbolicTensor | null = null;
    let delayed = false;
    const addStep = onlyReader(output);
    // An Add is fused into one chain only (in a projection block both branches end in a folded BN).
    if (addStep && addStep.layer instanceof Add && !claimed.has(addStep)) {
      // conv → BN → Add(shortcut) (→ ReLU): the end of a ResNet block, one kernel. The shortcut cannot depend
      // on the chain (the BN's output has no other reader), so if it comes later the convolution waits for it.
      const addInputs = addStep.layer.nodes[addStep.node]!.inputs;
      const other = addInputs.length === 2 ? addInputs.find((t) => t !== output) : undefined;
      if (other) {
        residual = other;
        delayed = (producedAt.get(other) ?? -1) > at;
        claimed.add(addStep);
        replaced.push(addStep);
        output = addStep.layer.nodes[addStep.node]!.output;
      }
    }
    const reluStep = reluAfter(output);
    const relu = reluStep !== null;
    if (reluStep) {
      replaced.push(reluStep);
      output = reluStep.layer.nodes[reluStep.node]!.output;
    }
    plans.set(s, { conv, bn, relu, replaced, convOutput: conv.nodes[s.node]!.output, output, residual, delayed });
  }
  return plans;
}

/** Whether folding pays for this batch: the convolution's output is at least as large as its kernel (see above). */
export function foldingPays(chain: FoldedChain<StepLike>, batch: number): boolean {
  const out = chain.convOutput.shape.reduce((a, b) => a * b, 1) * batch;
  return out >= chain.conv.kernel!.value.size;
}

/** The folded kernel and bias of a convolution, and the weights they were computed from. */
interface FoldedWeights {
  stamp: WriteStamp;
  kernel: Tensor;
  bias: Tensor;
}

// Kept per convolution until one of its sources is replaced or written in place (write-generation.ts), or the layer is disposed.
const cache = new Map<Conv2D, FoldedWeights>();

/** Frees the folded weights cached for `conv` (Conv2D.dispose calls it). */
export function releaseFolded(conv: Conv2D): void {
  const f = cache.get(conv);
  if (!f) return;
  releaseHalf(f.kernel);
  releaseHalf(f.bias);
  f.kernel.dispose();
  f.bias.dispose();
  cache.delete(conv);
}

/** Kernel w·s and bias b·s + (β − μ·s), from the current weights. */
function fold(conv: Conv2D, bn: BatchNormalization): { kernel: Tensor; bias: Tensor } {
  return noGrad(() =>
    tidy(() => {
      const inverseStd = reciprocal(sqrt(affine(bn.movingVariance!.value, 1, bn.epsilon)));
      const scale = bn.gamma ? mul(bn.gamma.value, inverseStd) : inverseStd;
      const meanShift = affine(mul(bn.movingMean!.value, scale), -1, 0);
      const shift = bn.beta ? add(bn.beta.value, meanShift) : meanShift;
      const bias = conv.bias ? add(mul(conv.bias.value, scale), shift) : shift;
      return { kernel: mul(conv.kernel!.value, scale).keep(), bias: bias.keep() };
    }),
  );
}

/** The chain's output in one convolution: the folded kernel and bias, the residual and the ReLU in the epilogue. */
export function runFolded(chain: FoldedChain<StepLike>, x: Tensor, residual: Tensor | null = null): Tensor {
  const { conv, bn } = chain;
  const sources = [conv.kernel!.value, conv.bias?.value ?? null, bn.gamma?.value ?? null, bn.beta?.value ?? null, bn.movingMean!.value, bn.movingVariance!.value];
  let f = cache.get(conv);
  if (!f || !f.stamp.current(sources)) {
    releaseFolded(conv);
    f = { stamp: new WriteStamp(sources), ...fold(conv, bn) };
    cache.set(conv, f);
  }
  // With f16 activations (src/nn/precision.ts) the folded kernel and bias are read as f16 too.
  return conv2d(x, weightLike(f.kernel, x), { strides: conv.strides, padding: conv.padding, bias: weightLike(f.bias, x), residual, activation: chain.relu ? 'relu' : 'none' });
}
