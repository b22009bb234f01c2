/**
 * Graft's side of bench/models.ts: a transfer model (ResNet50 or VGG16 base with random weights, plus the
 * head GlobalAveragePooling → Dense(512, relu) → Dropout(0.5) → Dense(2, softmax)) set up for each mode,
 * its step functions, and the analytic FLOP count of the mode.
 *
 * Modes, applied in this order to one model (each re-sets what it needs):
 *   forward  inference of base + head (noGrad, BatchNorm with moving statistics);
 *   frozen   createTransferModel's state: the base frozen, the head trained (Adam). With a frozen base the
 *            tape records nothing for it, so backward runs through the head only;
 *   last     fineTune(model, { unfreezeLast }): ResNet50's last residual block (10 layers), VGG16's block5
 *            (3 convolutions + pool, 4 layers), plus the head; BatchNorm stays in inference mode;
 *   full     every layer trainable, BatchNorm in training mode (batch statistics).
 * A step is what fit() does per batch: one tidy with zeroGrad, forward (training), softmax cross-entropy on
 * the logits, backward, optimizer.step — then `await runtime().sync()` so the time includes the GPU work.
 *
 * FLOPs: a convolution is 2·N·OH·OW·F·KH·KW·C, a dense layer 2·N·in·out (multiply-adds × 2); other layers
 * are not counted. A training step counts the forward pass of the whole model plus 2× the forward FLOPs of
 * every layer with trainable weights (its dX and dW), i.e. ≈ 3× forward for the trained part.
 */
import { noGrad } from '../../src/autograd/tape.js';
import { runtime } from '../../src/gpu/runtime.js';
import { Conv2D } from '../../src/nn/layers/convolutional.js';
import { Dense } from '../../src/nn/layers/core.js';
import { BatchNormalization } from '../../src/nn/layers/normalization.js';
import { resnet50 } from '../../src/models/resnet50.js';
import { vgg16 } from '../../src/models/vgg16.js';
import { backward, softmaxCrossEntropy } from '../../src/ops/index.js';
import { tensor } from '../../src/tensor/create.js';
import { tidy } from '../../src/tensor/scope.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { Adam } from '../../src/train/optimizers.js';
import { createTransferModel, fineTune, type TransferModel } from '../../src/train/transfer.js';
import { randomData } from './data.js';

export const MODEL_NAMES = ['resnet50', 'vgg16'] as const;
export type BenchModel = (typeof MODEL_NAMES)[number];
export const MODES = ['forward', 'frozen', 'last', 'full'] as const;
export type Mode = (typeof MODES)[number];

/** fineTune's unfreezeLast for the 'last' mode: ResNet50's conv5_block3 (10 layers), VGG16's block5 (4). */
export const UNFREEZE_LAST: Record<BenchModel, number> = { resnet50: 10, vgg16: 4 };

export interface GraftBench {
  model: TransferModel;
  /** Sets the model up for `mode`; returns the step (which awaits the GPU) and the mode's FLOPs per step. */
  prepare(mode: Mode): { step: () => Promise<void>; flops: number; trainedLayers: number };
  dispose(): void;
}

function layerFlops(model: TransferModel, batch: number, counts: (layerTrainable: boolean) => number): number {
  let total = 0;
  for (const l of model.layers) {
    const node = l.nodes[0];
    if (!node || !(l instanceof Conv2D || l instanceof Dense)) continue;
    const inShape = node.inputs[0]!.shape;
    const outShape = node.output.shape;
    const fwd = l instanceof Conv2D
      ? 2 * batch * outShape.reduce((a, b) => a * b, 1) * l.kernelSize[0] * l.kernelSize[1] * inShape[inShape.length - 1]!
      : 2 * batch * inShape[inShape.length - 1]! * l.units;
    total += fwd * counts(l.trainableWeights.length > 0);
  }
  return total;
}

export function graftBench(name: BenchModel, size: number, batch: number): GraftBench {
  const base = name === 'resnet50' ? resnet50({ includeTop: false, inputShape: [size, size, 3] }) : vgg16({ includeTop: false, inputShape: [size, size, 3] });
  const model = createTransferModel({ base, numClasses: 2 });
  const x = tensor(randomData(batch * size * size * 3, 11), [batch, size, size, 3]).keep();
  const labels = tensor(Int32Array.from({ length: batch }, (_, i) => i % 2), [batch], 'i32').keep();
  const feeds = new Map([[model.inputs[0]!, x]]);
  let optimizer: Adam | null = null;
  const rt = runtime();

  const trainStep = (opt: Adam) => async () => {
    tidy(() => {
      opt.zeroGrad();
      const logits = model.execute(feeds, model.outputs, { training: true, logits: true })[0]!;
      backward(softmaxCrossEntropy(logits, labels));
      opt.step();
    });
    await rt.sync();
  };

  return {
    model,
    prepare(mode) {
      optimizer?.zeroGrad();
      optimizer?.dispose();
      optimizer = null;
      if (mode === 'forward') {
        const flops = layerFlops(model, batch, () => 1);
        const step = async () => {
          const y: Tensor = noGrad(() => tidy(() => model.execute(feeds, model.outputs, { training: false })[0]!));
          await rt.sync();
          y.dispose();
        };
        return { step, flops, trainedLayers: 0 };
      }
      if (mode === 'frozen') {
        model.base.trainable = false; // as createTransferModel leaves it
        optimizer = new Adam(model.trainableParameters(), { lr: 1e-3 });
      } else if (mode === 'last') {
        model.base.trainable = false;
        optimizer = fineTune(model, { unfreezeLast: UNFREEZE_LAST[name], learningRate: 1e-5 }).optimizer as Adam;
      } else {
        model.base.trainable = true;
        model.trainable = true;
        for (const l of model.layers) if (l instanceof BatchNormalization) l.inferenceMode = false;
        optimizer = new Adam(model.trainableParameters(), { lr: 1e-5 });
      }
      const flops = layerFlops(model, batch, (trained) => (trained ? 3 : 1));
      const trainedLayers = model.layers.filter((l) => l.trainableWeights.length > 0 && (l instanceof Conv2D || l instanceof Dense)).length;
      return { step: trainStep(optimizer), flops, trainedLayers };
    },
    dispose() {
      optimizer?.zeroGrad();
      optimizer?.dispose();
      x.dispose();
      labels.dispose();
      model.dispose();
    },
  };
}
