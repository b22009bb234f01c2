/**
 * The one table of backward rules, keyed by op. Its type has a key for every op that any file in src/ops
 * declares in `OpRegistry`, so adding an op without a rule here is a compile error.
 */
import { type BackwardTable, type EngineOps, runBackward } from '../autograd/backward.js';
import type { Tensor } from '../tensor/tensor.js';
import { add, binaryBackward, broadcastToBackward, ones, unaryBackward } from './elementwise.js';
import { reduceBackward } from './reduce.js';
import { denseBackward, matmulBackward } from './matmul.js';
import { logSoftmaxBackward, softmaxBackward } from './softmax.js';
import { binaryCrossEntropyWithLogitsBackward, softmaxCrossEntropyBackward } from './losses.js';
import { concatBackward, reshapeBackward, sliceBackward, transposeBackward } from './shape.js';
import { castBackward } from './cast.js';
import { avgPool2dBackward, maxPool2dBackward } from './pooling.js';
import { zeroPadding2dBackward } from './padding.js';
import { dropoutBackward } from './dropout.js';
import { gradientReversalBackward } from './gradient-reversal.js';
import { batchNormBackward } from './batchnorm.js';
import { conv2dBackward } from './conv.js';

export const backwardRules: BackwardTable = {
  unary: unaryBackward,
  binary: binaryBackward,
  broadcastTo: broadcastToBackward,
  reduce: reduceBackward,
  matmul: matmulBackward,
  dense: denseBackward,
  softmax: softmaxBackward,
  logSoftmax: logSoftmaxBackward,
  softmaxCrossEntropy: softmaxCrossEntropyBackward,
  binaryCrossEntropyWithLogits: binaryCrossEntropyWithLogitsBackward,
  reshape: reshapeBackward,
  transpose: transposeBackward,
  slice: sliceBackward,
  concat: concatBackward,
  cast: castBackward,
  maxPool2d: maxPool2dBackward,
  avgPool2d: avgPool2dBackward,
  zeroPadding2d: zeroPadding2dBackward,
  dropout: dropoutBackward,
  gradientReversal: gradientReversalBackward,
  conv2d: conv2dBackward,
  batchNorm: batchNormBackward,
};

const engineOps: EngineOps = { onesLike: (shape) => ones(shape), add };

/**
 * Computes d(root)/d(leaf) for every leaf tensor that requires grad, accumulating into `leaf.grad`.
 * The graph's saved tensors are freed afterwards.
 */
export function backward(root: Tensor, seed?: Tensor): void {
  runBackward(root, backwardRules, engineOps, seed);
}
