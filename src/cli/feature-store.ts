/**
 * `graft train --feature-cache DIR`: the frozen base's cached features, kept on disk between runs, so that
 * runs that differ only in what trains (head size, learning rates, epochs, fine-tuning schedule) compute
 * them once. A cache file is named by a SHA-256 of everything its values depend on: the files (path, size,
 * modification time), the base and its weights file, the image size, preprocessing, augmentation, seed and
 * number of views, and the cut (the frontier's layers). Anything else changes nothing in it.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { SymbolicTensor } from '../nn/layer.js';
import type { TransferModel } from '../train/transfer.js';
import { FeatureCache, type FeatureCacheOptions } from '../train/feature-cache.js';
import type { ImageDataset } from '../data/image-dataset.js';
import { readSafetensorsFile, writeSafetensorsFile } from '../weights/files.js';
import type { RunConfig } from './run-config.js';

const fileStamp = (path: string) => {
  const st = statSync(path);
  return [path, st.size, Math.round(st.mtimeMs)];
};

/** The cache file for this dataset, run settings and cut. */
export function featureCachePath(dir: string, role: 'train' | 'validation', data: ImageDataset, config: RunConfig, at: SymbolicTensor[], views: number): string {
  const key = {
    version: 1, role, files: data.files.map(fileStamp), classNames: data.classNames, base: config.base,
    weights: config.weights === null ? null : fileStamp(config.weights), imageSize: config.imageSize, crop: config.cropToAspectRatio === true, preprocessing: config.preprocessing,
    augment: role === 'train' ? config.augment : 'none', seed: config.seed, validationSplit: config.validationSplit, views,
    at: at.map((t) => [t.layer.name, t.nodeIndex]),
    // f16 features differ from f32 ones; f32 runs keep the key (and the caches) they had before precision existed.
    ...(config.precision === 'f16' ? { precision: 'f16' } : {}),
  };
  const hash = createHash('sha256').update(JSON.stringify(key)).digest('hex').slice(0, 24);
  return join(dir, `${config.base}-${role}-${hash}.safetensors`);
}

/** Loads the cache from `dir` when a matching file is there; otherwise builds it and saves it there. */
export async function cachedFeatures(
  dir: string | null, role: 'train' | 'validation', model: TransferModel, data: ImageDataset, config: RunConfig, options: FeatureCacheOptions & { at: SymbolicTensor[] },
  log: (line: string) => void,
): Promise<FeatureCache> {
  const views = options.views ?? 1;
  const path = dir ? featureCachePath(dir, role, data, config, options.at, views) : null;
  if (path && existsSync(path)) {
    log(`feature cache: reusing ${path}`);
    return FeatureCache.fromSafetensors(model, readSafetensorsFile(path), path, { shuffle: options.shuffle ?? true, seed: options.seed ?? 0, batchSize: config.batchSize });
  }
  const cache = await FeatureCache.build(model, data, options);
  if (dir && path) {
    mkdirSync(dir, { recursive: true });
    const { tensors, metadata } = cache.toSafetensors();
    writeSafetensorsFile(path, tensors, metadata);
    log(`feature cache: saved ${path}`);
  }
  return cache;
}
