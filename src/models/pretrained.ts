/**
 * A pretrained model from a safetensors file whose metadata says what it is (as `graft weights fetch` writes
 * them): the architecture, the BatchNorm epsilon, the preprocessing and the class labels travel with the
 * numbers, so loading needs nothing but the file.
 */
import { GraftFormatError } from '../errors.js';
import type { Model } from '../nn/model.js';
import { readSafetensorsFile } from '../weights/files.js';
import { loadWeights } from '../weights/load.js';
import type { SafetensorsFile } from '../weights/safetensors.js';
import type { Preprocessing } from '../data/image.js';
import { resnet50 } from './resnet50.js';
import { vgg16 } from './vgg16.js';

export interface Pretrained {
  model: Model;
  labels: string[];
  preprocessing: Preprocessing;
  architecture: string;
}

export interface PretrainedOptions {
  includeTop?: boolean;
  inputShape?: [number, number, number];
  pooling?: 'avg' | 'max' | null;
}

/** Weights already in memory (a browser's fetched or dropped file), parsed with `parseSafetensors(bytes, name, { widen: true })`. */
export interface InMemoryWeights {
  name: string;
  file: SafetensorsFile;
}

/** A pretrained model from a safetensors file's path (Node, Deno) or from weights in memory. */
export function loadPretrained(source: string | InMemoryWeights, options: PretrainedOptions = {}): Pretrained {
  const path = typeof source === 'string' ? source : source.name;
  const file = typeof source === 'string' ? readSafetensorsFile(source, { widen: true }) : source.file;
  const meta = file.metadata;
  const architecture = meta.architecture ?? '';
  // A file without the classifier (include_top 'false' in its metadata) builds the base only.
  const includeTop = options.includeTop ?? meta.include_top !== 'false';
  const classes = meta.num_classes === undefined ? 1000 : Number(meta.num_classes);
  if (!Number.isInteger(classes) || classes < 1) throw new GraftFormatError(`${path}: metadata 'num_classes' is ${JSON.stringify(meta.num_classes)}; expected a positive integer.`);
  const config = { includeTop, classes, inputShape: options.inputShape ?? ([224, 224, 3] as [number, number, number]), pooling: options.pooling ?? null };
  const epsilon = meta.batchnorm_epsilon === undefined ? undefined : Number(meta.batchnorm_epsilon);
  let model: Model;
  if (architecture === 'resnet50-v1' || architecture === 'resnet50-v1.5') {
    model = resnet50({ ...config, variant: architecture === 'resnet50-v1' ? 'v1' : 'v1.5', ...(epsilon === undefined ? {} : { epsilon }) });
  } else if (architecture === 'vgg16') {
    model = vgg16(config);
  } else {
    throw new GraftFormatError(`${path}: metadata 'architecture' is ${JSON.stringify(architecture)}; expected resnet50-v1, resnet50-v1.5 or vgg16.`);
  }
  const preprocessing = (meta.preprocessing ?? 'caffe') as Preprocessing;
  if (!['caffe', 'torch', 'none'].includes(preprocessing)) throw new GraftFormatError(`${path}: unknown preprocessing '${preprocessing}'.`);
  let labels: string[] = [];
  if (meta.labels) {
    try {
      labels = JSON.parse(meta.labels) as string[];
    } catch {
      throw new GraftFormatError(`${path}: metadata 'labels' is not a JSON array.`);
    }
  }
  try {
    loadWeights(model, file.tensors, path, { allowUnused: !includeTop });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, labels, preprocessing, architecture };
}

export interface Prediction {
  index: number;
  label: string;
  probability: number;
}

/** The `top` most probable classes of each row of `probabilities` ([batch × classes], flat). */
export function decodePredictions(probabilities: ArrayLike<number>, classes: number, labels: readonly string[], top = 5): Prediction[][] {
  const rows = probabilities.length / classes;
  const out: Prediction[][] = [];
  for (let r = 0; r < rows; r++) {
    const idx = Array.from({ length: classes }, (_, i) => i);
    idx.sort((a, b) => probabilities[r * classes + b]! - probabilities[r * classes + a]!);
    out.push(idx.slice(0, top).map((i) => ({ index: i, label: labels[i] ?? `class ${i}`, probability: probabilities[r * classes + i]! })));
  }
  return out;
}
