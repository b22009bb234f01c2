/**
 * VGG16 (Simonyan & Zisserman, 2014), layer for layer as Keras's `keras.applications.VGG16`, so that layer
 * names are the weight keys of Keras's files (`block1_conv1/kernel`, …, `fc1/kernel`, `predictions/bias`).
 *
 * Five blocks of 3×3 'same' convolutions with ReLU, each ending in 2×2/2 max pooling; then either the
 * classifier (Flatten, fc1 and fc2 of 4096 units, predictions) or, without the top, an optional global pooling.
 * Preprocessing is Keras's "caffe" mode: RGB → BGR and ImageNet channel means subtracted, no scaling.
 */
import { ArgumentError } from '../errors.js';
import type { Shape } from '../tensor/tensor.js';
import { Model, input } from '../nn/model.js';
import type { SymbolicTensor } from '../nn/layer.js';
import { Dense, Flatten } from '../nn/layers/core.js';
import { Conv2D } from '../nn/layers/convolutional.js';
import { GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D } from '../nn/layers/pooling.js';

export interface ApplicationConfig {
  /** Include the fully connected classifier (then the input must be 224×224×3, as Keras requires). */
  includeTop?: boolean;
  /** Input shape without the batch, HWC. Default [224, 224, 3]. */
  inputShape?: Shape;
  /** Without the top: 'avg' or 'max' global pooling of the last feature map, or none (the 4-D map). */
  pooling?: 'avg' | 'max' | null;
  /** Classes of the top classifier. Default 1000 (ImageNet). */
  classes?: number;
  /** Activation of the top classifier. Default 'softmax'. */
  classifierActivation?: 'softmax' | 'linear';
}

export function checkApplicationConfig(model: string, c: ApplicationConfig, minSize: number): Required<Omit<ApplicationConfig, 'pooling'>> & { pooling: 'avg' | 'max' | null } {
  const includeTop = c.includeTop ?? true;
  const inputShape = c.inputShape ?? [224, 224, 3];
  if (inputShape.length !== 3 || inputShape[2] !== 3 || inputShape[0]! < minSize || inputShape[1]! < minSize) {
    throw new ArgumentError(`${model}: inputShape must be [H, W, 3] with H, W ≥ ${minSize}, got [${inputShape.join(', ')}].`);
  }
  if (includeTop && (inputShape[0] !== 224 || inputShape[1] !== 224)) {
    throw new ArgumentError(`${model}: with includeTop the input must be [224, 224, 3] (the classifier's weights fix it), got [${inputShape.join(', ')}].`);
  }
  const classes = c.classes ?? 1000;
  if (!Number.isInteger(classes) || classes < 1) throw new ArgumentError(`${model}: classes must be a positive integer, got ${c.classes}.`);
  const pooling = c.pooling ?? null;
  if (pooling !== null && pooling !== 'avg' && pooling !== 'max') throw new ArgumentError(`${model}: pooling must be 'avg', 'max' or null, got ${JSON.stringify(c.pooling)}.`);
  return { includeTop, inputShape, classes, pooling, classifierActivation: c.classifierActivation ?? 'softmax' };
}

export function vgg16(config: ApplicationConfig = {}): Model {
  const c = checkApplicationConfig('vgg16', config, 32);
  const imgInput = input(c.inputShape, 'input_layer');
  let x: SymbolicTensor = imgInput;
  const blocks: Array<[number, number]> = [[64, 2], [128, 2], [256, 3], [512, 3], [512, 3]];
  blocks.forEach(([filters, convs], b) => {
    for (let i = 1; i <= convs; i++) {
      x = new Conv2D({ filters, kernelSize: 3, activation: 'relu', padding: 'same', name: `block${b + 1}_conv${i}` }).apply(x);
    }
    x = new MaxPooling2D({ poolSize: 2, strides: 2, name: `block${b + 1}_pool` }).apply(x);
  });
  if (c.includeTop) {
    x = new Flatten({ name: 'flatten' }).apply(x);
    x = new Dense({ units: 4096, activation: 'relu', name: 'fc1' }).apply(x);
    x = new Dense({ units: 4096, activation: 'relu', name: 'fc2' }).apply(x);
    x = new Dense({ units: c.classes, activation: c.classifierActivation, name: 'predictions' }).apply(x);
  } else if (c.pooling === 'avg') {
    x = new GlobalAveragePooling2D({ name: 'global_average_pooling2d' }).apply(x);
  } else if (c.pooling === 'max') {
    x = new GlobalMaxPooling2D({ name: 'global_max_pooling2d' }).apply(x);
  }
  return new Model({ inputs: imgInput, outputs: x, name: 'vgg16' });
}
