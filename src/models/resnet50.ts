/**
 * ResNet50 (He et al., 2015), layer for layer as Keras's `keras.applications.ResNet50`, so that layer names
 * are the weight keys (`conv1_conv`, `conv2_block1_1_conv`, `conv2_block1_1_bn`, …, `predictions`).
 *
 * Two variants, because converted weights must run on the architecture they were trained on:
 *   v1    Keras: in a downsampling block the stride sits on the first 1×1 convolution;
 *   v1.5  torchvision: the stride sits on the 3×3 convolution, with torchvision's symmetric padding of 1.
 *
 * A block ("bottleneck") is 1×1 → 3×3 → 1×1 convolutions, each followed by BatchNorm, ReLU after the first
 * two; its input is added back (through a 1×1 projection when the shape changes) and the sum goes through ReLU.
 *
 * BatchNorm epsilon: Keras's ResNet50 uses 1.001e-5 and torchvision 1e-5; the TF.js conversion of the Keras
 * 2.2.4 weights that Graft fetches was saved with 0.001. Pass the epsilon the weights were trained with.
 */
import type { Shape } from '../tensor/tensor.js';
import { Model, input } from '../nn/model.js';
import type { SymbolicTensor } from '../nn/layer.js';
import { Activation, Add, Dense } from '../nn/layers/core.js';
import { Conv2D, ZeroPadding2D } from '../nn/layers/convolutional.js';
import { GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D } from '../nn/layers/pooling.js';
import { BatchNormalization } from '../nn/layers/normalization.js';
import { type ApplicationConfig, checkApplicationConfig } from './vgg16.js';
import { ArgumentError } from '../errors.js';

export interface ResNet50Config extends ApplicationConfig {
  /** 'v1' (Keras, default) or 'v1.5' (torchvision). */
  variant?: 'v1' | 'v1.5';
  /** BatchNorm epsilon. Default 1.001e-5 (Keras's ResNet50). */
  epsilon?: number;
}

interface BlockOptions {
  filters: number;
  stride: number;
  projection: boolean;
  name: string;
  variant: 'v1' | 'v1.5';
  epsilon: number;
}

/** Conv → BatchNorm (→ ReLU), named `<name>_conv`, `<name>_bn`, `<name>_relu` as Keras names them. */
function convBn(x: SymbolicTensor, name: string, epsilon: number, conv: ConstructorParameters<typeof Conv2D>[0], relu: boolean): SymbolicTensor {
  let y = new Conv2D({ ...conv, name: `${name}_conv` }).apply(x);
  y = new BatchNormalization({ epsilon, name: `${name}_bn` }).apply(y);
  return relu ? new Activation({ activation: 'relu', name: `${name}_relu` }).apply(y) : y;
}

/** Keras's `block1`: one bottleneck residual block. */
function bottleneck(x: SymbolicTensor, o: BlockOptions): SymbolicTensor {
  const shortcut = o.projection ? convBn(x, `${o.name}_0`, o.epsilon, { filters: 4 * o.filters, kernelSize: 1, strides: o.stride }, false) : x;
  // v1 strides the first 1×1; v1.5 strides the 3×3 (with torchvision's padding of 1 on every side).
  const s1 = o.variant === 'v1' ? o.stride : 1;
  const s2 = o.variant === 'v1' ? 1 : o.stride;
  let y = convBn(x, `${o.name}_1`, o.epsilon, { filters: o.filters, kernelSize: 1, strides: s1 }, true);
  const pad = o.variant === 'v1.5' && s2 > 1 ? ([[1, 1], [1, 1]] as [[number, number], [number, number]]) : 'same';
  y = convBn(y, `${o.name}_2`, o.epsilon, { filters: o.filters, kernelSize: 3, strides: s2, padding: pad }, true);
  y = convBn(y, `${o.name}_3`, o.epsilon, { filters: 4 * o.filters, kernelSize: 1 }, false);
  y = new Add({ name: `${o.name}_add` }).apply([shortcut, y]);
  return new Activation({ activation: 'relu', name: `${o.name}_out` }).apply(y);
}

/** Keras's `stack1`: `blocks` bottlenecks, the first with a projection shortcut and stride `stride1`. */
function stack(x: SymbolicTensor, filters: number, blocks: number, stride1: number, name: string, variant: 'v1' | 'v1.5', epsilon: number): SymbolicTensor {
  let y = bottleneck(x, { filters, stride: stride1, projection: true, name: `${name}_block1`, variant, epsilon });
  for (let i = 2; i <= blocks; i++) y = bottleneck(y, { filters, stride: 1, projection: false, name: `${name}_block${i}`, variant, epsilon });
  return y;
}

export function resnet50(config: ResNet50Config = {}): Model {
  const c = checkApplicationConfig('resnet50', config, 32);
  const variant = config.variant ?? 'v1';
  if (variant !== 'v1' && variant !== 'v1.5') throw new ArgumentError(`resnet50: variant must be 'v1' or 'v1.5', got ${JSON.stringify(config.variant)}.`);
  const epsilon = config.epsilon ?? 1.001e-5;
  const imgInput = input(c.inputShape as Shape, 'input_layer');
  let x = new ZeroPadding2D({ padding: [[3, 3], [3, 3]], name: 'conv1_pad' }).apply(imgInput);
  x = new Conv2D({ filters: 64, kernelSize: 7, strides: 2, name: 'conv1_conv' }).apply(x);
  x = new BatchNormalization({ epsilon, name: 'conv1_bn' }).apply(x);
  x = new Activation({ activation: 'relu', name: 'conv1_relu' }).apply(x);
  x = new ZeroPadding2D({ padding: [[1, 1], [1, 1]], name: 'pool1_pad' }).apply(x);
  x = new MaxPooling2D({ poolSize: 3, strides: 2, name: 'pool1_pool' }).apply(x);
  x = stack(x, 64, 3, 1, 'conv2', variant, epsilon);
  x = stack(x, 128, 4, 2, 'conv3', variant, epsilon);
  x = stack(x, 256, 6, 2, 'conv4', variant, epsilon);
  x = stack(x, 512, 3, 2, 'conv5', variant, epsilon);
  if (c.includeTop) {
    x = new GlobalAveragePooling2D({ name: 'avg_pool' }).apply(x);
    x = new Dense({ units: c.classes, activation: c.classifierActivation, name: 'predictions' }).apply(x);
  } else if (c.pooling === 'avg') {
    x = new GlobalAveragePooling2D({ name: 'avg_pool' }).apply(x);
  } else if (c.pooling === 'max') {
    x = new GlobalMaxPooling2D({ name: 'max_pool' }).apply(x);
  }
  return new Model({ inputs: imgInput, outputs: x, name: 'resnet50' });
}
