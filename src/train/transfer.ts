/**
 * The transfer-learning workflow of the Keras tutorial, as three functions:
 *
 *   const model = createTransferModel({ base: 'resnet50', weights: 'weights/resnet50-imagenet.safetensors', numClasses: 2 });
 *   await fit(model, train, { optimizer: new Adam(model.trainableParameters(), { lr: 1e-3 }), ... }); // the head
 *   const { optimizer } = fineTune(model, { unfreezeLast: 10, learningRate: 1e-5 });
 *   await fit(model, train, { optimizer, ... });                                                      // fine-tuning
 *   const { features } = await extractFeatures(model, data, 'conv5_block3_out');
 *
 * The model is one functional graph: the base's layers followed by the head's, as Keras builds
 * `Model(base.input, predictions)` from `base.output`, so `model.layers` lists both and the weight keys are
 * the base's Keras keys plus the head's. The base is frozen (its BatchNorms then run in inference mode) and
 * kept as `model.base`, whose `layers` are what "the last N layers" counts.
 */
import { existsSync } from 'node:fs';
import { ArgumentError, GraftError } from '../errors.js';
import { noGrad } from '../autograd/tape.js';
import { tensor } from '../tensor/create.js';
import { tidy } from '../tensor/scope.js';
import type { Shape } from '../tensor/tensor.js';
import type { Layer, SymbolicTensor } from '../nn/layer.js';
import { Model } from '../nn/model.js';
import { Dense } from '../nn/layers/core.js';
import { Dropout } from '../nn/layers/dropout.js';
import { GlobalAveragePooling2D } from '../nn/layers/pooling.js';
import { BatchNormalization } from '../nn/layers/normalization.js';
import { resnet50 } from '../models/resnet50.js';
import { vgg16 } from '../models/vgg16.js';
import { type InMemoryWeights, loadPretrained } from '../models/pretrained.js';
import type { Preprocessing } from '../data/image.js';
import { Adam, type ClipOptions, SGD } from './optimizers.js';
import { type BatchSource, concatArrays } from './batches.js';

export const DEFAULT_RESNET50_WEIGHTS = 'weights/resnet50-imagenet.safetensors';
export const FETCH_COMMAND = 'npx graft weights fetch resnet50';

export type BaseName = 'vgg16' | 'resnet50';

export interface TransferModelOptions {
  /** 'vgg16', 'resnet50', or a Model to use as the base (its output must be [H, W, C]). */
  base: BaseName | Model;
  /**
   * A safetensors file with the base's weights (as `graft weights fetch` / `convert` write them; its path, or the
   * parsed file in memory, as a browser has it), or null for randomly initialised weights. Default:
   * weights/resnet50-imagenet.safetensors for 'resnet50'; a 'vgg16'
   * base needs it named (no VGG16 weights can be fetched) or null. Ignored for a Model base, which is
   * used with the weights it has; passing it then is an error.
   */
  weights?: string | InMemoryWeights | null;
  numClasses: number;
  /** Units of each hidden Dense(relu) layer of the head. Default [512]. */
  head?: number[];
  /** Dropout rate after each hidden layer. Default 0.5. */
  dropout?: number;
  /** [height, width, 3] of the base's input. Default [224, 224, 3]. */
  inputShape?: [number, number, number];
  /** Seed of the head's initial weights and dropout masks. Default 0. */
  seed?: number;
}

/** A base plus a head, in one graph; `base` is the base as its own model (sharing the layers). */
export class TransferModel extends Model {
  constructor(
    readonly base: Model,
    output: SymbolicTensor,
    /** How the base expects its input images (from the weights file's metadata; 'caffe' for Keras's models). */
    readonly preprocessing: Preprocessing,
    readonly baseName: string,
  ) {
    super({ inputs: base.inputs, outputs: output, name: `${baseName}_transfer` });
  }

  /** The head's layers: everything after the base. */
  get headLayers(): Model['layers'] {
    return this.layers.filter((l) => !this.base.layers.includes(l));
  }
}

export function createTransferModel(options: TransferModelOptions): TransferModel {
  const { numClasses, head = [512], dropout = 0.5, inputShape = [224, 224, 3], seed = 0 } = options;
  if (!Number.isInteger(numClasses) || numClasses < 2) throw new ArgumentError(`createTransferModel: numClasses must be an integer ≥ 2, got ${numClasses}.`);
  if (!Array.isArray(head) || head.some((u) => !Number.isInteger(u) || u < 1)) throw new ArgumentError(`createTransferModel: head must be a list of positive layer widths, got ${JSON.stringify(head)}.`);
  if (!(dropout >= 0 && dropout < 1)) throw new ArgumentError(`createTransferModel: dropout must be in [0, 1), got ${dropout}.`);
  const { base, preprocessing, name } = buildBase(options, inputShape);
  if (base.outputs[0]!.shape.length !== 3) {
    throw new ArgumentError(`createTransferModel: the base's output must be a feature map [H, W, C], got [${base.outputs[0]!.shape.join(', ')}].`);
  }
  base.trainable = false; // frozen: no gradients, and BatchNorm in inference mode (the Keras rule)
  let x = new GlobalAveragePooling2D({ name: 'head_pool' }).apply(base.outputs[0]!);
  head.forEach((units, i) => {
    x = new Dense({ units, activation: 'relu', name: `head_dense${i + 1}`, seed: seed * 1000 + i }).apply(x);
    if (dropout > 0) x = new Dropout({ rate: dropout, name: `head_dropout${i + 1}`, seed: seed * 1000 + 500 + i }).apply(x);
  });
  x = new Dense({ units: numClasses, activation: 'softmax', name: 'head_predictions', seed: seed * 1000 + 999 }).apply(x);
  return new TransferModel(base, x, preprocessing, name);
}

function buildBase(options: TransferModelOptions, inputShape: [number, number, number]): { base: Model; preprocessing: Preprocessing; name: string } {
  const { base } = options;
  if (base instanceof Model) {
    if (options.weights !== undefined) throw new ArgumentError('createTransferModel: weights applies to a named base (vgg16, resnet50); a Model base is used with the weights it has.');
    return { base, preprocessing: 'none', name: base.name };
  }
  if (base !== 'vgg16' && base !== 'resnet50') throw new ArgumentError(`createTransferModel: base must be 'vgg16', 'resnet50' or a Model, got ${JSON.stringify(base)}.`);
  const weights = options.weights === undefined ? (base === 'resnet50' ? DEFAULT_RESNET50_WEIGHTS : undefined) : options.weights;
  if (weights === undefined) {
    throw new ArgumentError("createTransferModel: base 'vgg16' needs weights: a safetensors file from `graft weights convert vgg16.h5`, or null for random weights (no VGG16 weights can be fetched here).");
  }
  if (weights === null) {
    const model = base === 'resnet50' ? resnet50({ includeTop: false, inputShape }) : vgg16({ includeTop: false, inputShape });
    return { base: model, preprocessing: 'caffe', name: base };
  }
  if (typeof weights === 'string' && !existsSync(weights)) {
    throw new GraftError(`createTransferModel: weights file ${weights} not found.${base === 'resnet50' ? ` Fetch the ImageNet weights with: ${FETCH_COMMAND}` : ''}`);
  }
  const loaded = loadPretrained(weights, { includeTop: false, inputShape });
  if (!loaded.architecture.startsWith(base)) {
    loaded.model.dispose();
    throw new ArgumentError(`createTransferModel: ${typeof weights === 'string' ? weights : weights.name} holds ${loaded.architecture} weights, but base is '${base}'.`);
  }
  return { base: loaded.model, preprocessing: loaded.preprocessing, name: base };
}

export interface FineTuneOptions {
  /** How many of the base's last layers to unfreeze, counted in `base.layers` order as Keras counts them. */
  unfreezeLast: number;
  /** Default 1e-5. */
  learningRate?: number;
  /** Default 'adam'. */
  optimizer?: 'adam' | 'sgd';
  /** SGD's momentum. Default 0.9. */
  momentum?: number;
  /** Gradient clipping for the new optimizer (clipNorm, globalClipNorm, clipValue). Default none. */
  clip?: ClipOptions;
}

/**
 * Unfreezes the last `unfreezeLast` layers of the base (layers without weights, such as ReLU and Add, count,
 * as in Keras) and returns a fresh optimizer over everything now trainable: the head and those layers.
 * Every BatchNormalization of the base stays in inference mode (its γ and β train if unfrozen; its moving
 * statistics are left alone): Keras's advice for fine-tuning, because a small dataset's batch statistics
 * would wreck what the pretrained layers after them expect.
 */
export function fineTune(model: TransferModel, options: FineTuneOptions): { optimizer: Adam | SGD; unfrozen: string[] } {
  const { unfreezeLast, learningRate = 1e-5, optimizer = 'adam', momentum = 0.9, clip = {} } = options;
  const layers = baseLayers(model, unfreezeLast, 'fineTune');
  if (!(learningRate > 0) || !Number.isFinite(learningRate)) throw new ArgumentError(`fineTune: learningRate must be a finite number > 0, got ${learningRate}.`);
  const unfrozen = layers.slice(-unfreezeLast);
  for (const l of layers) {
    l.trainable = unfrozen.includes(l);
    if (l instanceof BatchNormalization) l.inferenceMode = true;
  }
  const params = model.trainableParameters();
  const opt = optimizer === 'adam' ? new Adam(params, { lr: learningRate, ...clip }) : optimizer === 'sgd' ? new SGD(params, { lr: learningRate, momentum, ...clip }) : null;
  if (!opt) throw new ArgumentError(`fineTune: optimizer must be 'adam' or 'sgd', got ${JSON.stringify(optimizer)}.`);
  return { optimizer: opt, unfrozen: unfrozen.map((l) => l.name) };
}

/** The base's layers after its input; checks that `last` counts some of them. */
function baseLayers(model: TransferModel, last: number, who: string): Layer[] {
  const layers = model.base.layers.filter((l) => l !== model.base.inputs[0]!.layer);
  if (!Number.isInteger(last) || last < 1 || last > layers.length) {
    throw new ArgumentError(`${who}: unfreezeLast must be an integer in [1, ${layers.length}] (the base's layers after its input), got ${last}.`);
  }
  return layers;
}

/**
 * Where the trainable part will begin once `fineTune(model, { unfreezeLast })` has run: the tensors to cache
 * so that ONE FeatureCache serves both head training and fine-tuning (the frozen layers between this cut and
 * the base's output then run every epoch of head training, a small price against a second caching pass).
 */
export function fineTuneFrontier(model: TransferModel, unfreezeLast: number): SymbolicTensor[] {
  const unfrozen = new Set(baseLayers(model, unfreezeLast, 'fineTuneFrontier').slice(-unfreezeLast));
  const head = new Set(model.headLayers);
  return model.constantFrontier((l) => unfrozen.has(l) || head.has(l) || l.trainableWeights.length > 0 || l.variesInTraining);
}

export interface Features {
  /** [count, ...shape] flat. */
  features: Float32Array;
  /** One example's feature shape, e.g. [7, 7, 2048]. */
  shape: Shape;
  /** The source's labels as they came: class indices or one-hot rows. */
  labels: Int32Array | Float32Array;
  count: number;
}

/** The output of layer `layerName` for every example of `data`, in inference mode. */
export async function extractFeatures(model: Model, data: BatchSource, layerName: string): Promise<Features> {
  const target = model.getLayer(layerName);
  if (target === model.inputs[0]!.layer) throw new ArgumentError(`extractFeatures: '${layerName}' is the model's input layer; name a layer after it.`);
  if (target.nodes.length !== 1) throw new ArgumentError(`extractFeatures: layer '${layerName}' is called ${target.nodes.length} times; name a layer with one call.`);
  const at = target.nodes[0]!.output;
  const input = model.inputs[0]!;
  const parts: Float32Array[] = [];
  const labels: Array<Int32Array | Float32Array> = [];
  let count = 0;
  for await (const b of data.batches(0)) {
    const out = noGrad(() => tidy(() => model.execute(new Map([[input, tensor(b.x, [b.count, ...input.shape])]]), [at], { training: false })[0]!));
    parts.push(await out.floats());
    out.dispose();
    labels.push(b.y);
    count += b.count;
  }
  return { features: concatArrays(parts, new Float32Array(0)), shape: at.shape, labels: concatArrays(labels, new Int32Array(0)), count };
}
