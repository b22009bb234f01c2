/**
 * A training run's settings (config.json in the run folder), read from `graft train`'s options and checked
 * once, and the final model file: the weights as safetensors with the config in the metadata, so that
 * `graft evaluate`, `graft predict --model` and `graft features --model` rebuild the same model from it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ArgumentError, GraftError, GraftFormatError } from '../errors.js';
import { type SafetensorsFile, serializeSafetensors } from '../weights/safetensors.js';
import { readSafetensorsFile, readSafetensorsHeaderFile, writeFileAtomic } from '../weights/files.js';
import { loadWeights, modelTensors } from '../weights/load.js';
import type { Preprocessing } from '../data/image.js';
import { type BaseName, createTransferModel, DEFAULT_RESNET50_WEIGHTS, FETCH_COMMAND, type TransferModel } from '../train/transfer.js';
import type { ParsedArgs } from './args.js';
import { type Precision, precisionNamed } from '../nn/precision.js';

export interface RunConfig {
  format: 'graft-run';
  data: string;
  valData: string | null;
  validationSplit: number;
  base: BaseName;
  /** The base's weights file, or null for random weights. */
  weights: string | null;
  imageSize: number;
  batchSize: number;
  epochs: number;
  lr: number;
  head: number[];
  dropout: number;
  fineTuneLayers: number;
  fineTuneEpochs: number;
  fineTuneLr: number;
  augment: string;
  /** Crop to the target aspect ratio before resizing, instead of distorting (--crop-to-aspect-ratio). */
  cropToAspectRatio?: boolean;
  cacheViews: number;
  /** Folder of feature caches shared between runs (--feature-cache), or null. */
  featureCache?: string | null;
  patience: number;
  /** Global gradient-norm clipping of both phases' optimizers, or null. */
  clipNorm: number | null;
  /** Skip steps whose loss or gradients are NaN/Inf (fit's onNonFinite: 'skip') instead of stopping. */
  skipNonFinite: boolean;
  seed: number;
  /** 'f16': the frozen base runs with f16 activations and weights (src/nn/precision.ts). Absent in older runs: f32. */
  precision?: Precision;
  /** Filled in once the data has been indexed. */
  classNames: string[] | null;
  preprocessing: Preprocessing | null;
}

function integer(name: string, v: unknown, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new ArgumentError(`graft train: --${name} must be an integer ≥ ${min}, got ${v}.`);
  return v;
}

function positive(name: string, v: unknown): number {
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw new ArgumentError(`graft train: --${name} must be a number > 0, got ${v}.`);
  return v;
}

export function runConfigFrom(args: ParsedArgs): RunConfig {
  const o = args.options;
  if (args.positionals.length) throw new ArgumentError(`graft train: unexpected argument '${args.positionals[0]}' (the data folder goes after --data).`);
  const data = o.data as string | undefined;
  if (!data) throw new ArgumentError('graft train: --data DIR is required (a folder with one sub-folder of images per class).');
  if (!existsSync(data)) throw new ArgumentError(`graft train: --data ${data}: no such folder.`);
  const base = o.base as string;
  if (base !== 'resnet50' && base !== 'vgg16') throw new ArgumentError(`graft train: --base must be resnet50 or vgg16, got '${base}'.`);
  let weights: string | null;
  if (o.weights === 'none') weights = null;
  else if (typeof o.weights === 'string') weights = o.weights;
  else if (base === 'resnet50') weights = DEFAULT_RESNET50_WEIGHTS;
  else throw new ArgumentError("graft train: --base vgg16 needs --weights FILE (from graft weights convert) or --weights none; no VGG16 weights can be fetched here.");
  if (weights !== null && !existsSync(weights)) {
    throw new GraftError(`graft train: weights file ${weights} not found.${base === 'resnet50' ? ` Fetch the ImageNet weights with: ${FETCH_COMMAND}` : ''}`);
  }
  const head = String(o.head).trim() === '' ? [] : String(o.head).split(',').map((s) => Number(s.trim()));
  if (head.some((u) => !Number.isInteger(u) || u < 1)) throw new ArgumentError(`graft train: --head must be comma-separated positive widths such as 512 or 512,256, got '${o.head}'.`);
  const split = o['validation-split'] as number;
  if (!(split > 0 && split < 1)) throw new ArgumentError(`graft train: --validation-split must be in (0, 1), got ${split}.`);
  const dropout = o.dropout as number;
  if (!(dropout >= 0 && dropout < 1)) throw new ArgumentError(`graft train: --dropout must be in [0, 1), got ${dropout}.`);
  return {
    format: 'graft-run',
    data,
    valData: (o['val-data'] as string | undefined) ?? null,
    validationSplit: split,
    base,
    weights,
    imageSize: integer('image-size', o['image-size'], 32),
    batchSize: integer('batch-size', o['batch-size'], 1),
    epochs: integer('epochs', o.epochs, 0),
    lr: positive('lr', o.lr),
    head,
    dropout,
    fineTuneLayers: integer('fine-tune-layers', o['fine-tune-layers'], 0),
    fineTuneEpochs: integer('fine-tune-epochs', o['fine-tune-epochs'], 0),
    fineTuneLr: positive('fine-tune-lr', o['fine-tune-lr']),
    augment: String(o.augment),
    cropToAspectRatio: o['crop-to-aspect-ratio'] === true,
    cacheViews: integer('cache-views', o['cache-views'], 0),
    featureCache: (o['feature-cache'] as string | undefined) ?? null,
    patience: integer('patience', o.patience, 0),
    clipNorm: o['clip-norm'] === undefined ? null : positive('clip-norm', o['clip-norm']),
    skipNonFinite: o['skip-nonfinite'] === true,
    seed: integer('seed', o.seed, 0),
    precision: precisionNamed(o.precision, 'graft train: --precision'),
    classNames: null,
    preprocessing: null,
  };
}

/** The preprocessing a base's weights expect: from the file's metadata, or Keras's 'caffe' for random weights. */
export function preprocessingOf(weights: string | null): Preprocessing {
  if (weights === null) return 'caffe';
  const p = readSafetensorsHeaderFile(weights).metadata?.preprocessing ?? 'caffe';
  if (p !== 'caffe' && p !== 'torch' && p !== 'none') throw new GraftFormatError(`${weights}: unknown preprocessing '${p}' in its metadata.`);
  return p;
}

/** The run's model with random weights (for loading a checkpoint or the final weights into). */
export function buildRunModel(config: RunConfig, weights: string | null = config.weights): TransferModel {
  if (!config.classNames) throw new GraftFormatError('run config: classNames is missing (the run never indexed its data).');
  return createTransferModel({
    base: config.base, weights, numClasses: config.classNames.length, head: config.head, dropout: config.dropout,
    inputShape: [config.imageSize, config.imageSize, 3], seed: config.seed,
  });
}

/** The final model file's bytes: every weight, and the run's config in the metadata (what `runModelFromSafetensors` reads). */
export async function runModelBytes(model: TransferModel, config: RunConfig): Promise<Uint8Array> {
  return serializeSafetensors(await modelTensors(model), { format: 'graft-transfer-model', config: JSON.stringify(config) });
}

export async function saveFinalModel(path: string, model: TransferModel, config: RunConfig): Promise<void> {
  writeFileAtomic(path, await runModelBytes(model, config));
}

/** A trained model from a run folder (its model.safetensors) or from such a file directly. */
export function loadRunModel(path: string): { model: TransferModel; config: RunConfig; file: string } {
  const file = existsSync(join(path, 'model.safetensors')) ? join(path, 'model.safetensors') : path;
  if (!existsSync(file)) throw new GraftError(`no trained model at ${path} (expected a run folder with model.safetensors, or the file itself).`);
  return { ...runModelFromSafetensors(readSafetensorsFile(file, { widen: true }), file), file };
}

/**
 * A trained model from a parsed model.safetensors (as `graft train` or the browser trainer writes it; `source`
 * names it in errors): the config in its metadata rebuilds the architecture, then every weight is loaded.
 */
export function runModelFromSafetensors(st: SafetensorsFile, source: string): { model: TransferModel; config: RunConfig } {
  if (st.metadata.format !== 'graft-transfer-model' || !st.metadata.config) {
    throw new GraftFormatError(`${source} is not a model written by graft train (metadata format '${st.metadata.format ?? ''}').`);
  }
  const config = JSON.parse(st.metadata.config) as RunConfig;
  const model = buildRunModel(config, null);
  try {
    loadWeights(model, st.tensors, source);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, config };
}
