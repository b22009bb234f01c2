/**
 * Messages between the trainer page (trainer.ts, the UI thread) and its worker (trainer-worker.ts), which
 * owns the GPU device, the model and the data. Training runs in the worker, so the page never blocks: it
 * only draws what the worker reports.
 */
import type { History } from '../train/fit.js';
import type { RunConfig } from '../cli/run-config.js';

/** The settings `graft train` takes that the page offers too (same names and meaning as config.json's). */
type SharedSettings = 'base' | 'imageSize' | 'batchSize' | 'epochs' | 'lr' | 'head' | 'dropout' | 'fineTuneLayers' | 'fineTuneEpochs' | 'fineTuneLr' | 'validationSplit' | 'cacheViews' | 'seed';

export interface TrainerSettings extends Pick<RunConfig, SharedSettings> {
  /** URL of the base's weights (safetensors, from `graft serve`'s /weights/), or null for random weights. */
  weightsUrl: string | null;
  /** Random left-right flips of the training images (graft train's --augment flip). */
  flip: boolean;
  /** Where the images came from, for the checkpoint's metadata (e.g. "bundled: hymenoptera-mini"). */
  dataName: string;
}

export interface DroppedImage {
  name: string;
  className: string;
  bytes: ArrayBuffer;
}

export type ToWorker =
  | { type: 'train'; settings: TrainerSettings; images: DroppedImage[] }
  | { type: 'predict'; images: { name: string; bytes: ArrayBuffer }[] }
  | { type: 'checkpoint' }
  /** A checkpoint (model.safetensors from this page or from `graft train`) to predict with and download again. */
  | { type: 'load'; name: string; bytes: ArrayBuffer };

export interface TrainerReport {
  accuracy: number;
  loss: number;
  classNames: string[];
  confusion: number[][];
  markdown: string;
  /** PNG bytes of the confusion matrix (the same plot `graft train` writes). */
  confusionPng: ArrayBuffer;
}

export type FromWorker =
  | { type: 'log'; text: string }
  | { type: 'progress'; phase: 'cache' | 'train' | 'validate'; epoch: number; totalEpochs: number; examples: number; total: number | null; loss: number | null; accuracy: number | null }
  | { type: 'epoch'; history: History; fineTuneFrom: number | null; historyPng: ArrayBuffer }
  /** The running loss and accuracy of the epoch in progress, step by step (at most about once a second). */
  | { type: 'steps'; epoch: number; png: ArrayBuffer }
  | { type: 'loaded'; name: string; classNames: string[]; base: string; imageSize: number }
  | { type: 'done'; report: TrainerReport; seconds: number }
  | { type: 'predictions'; results: { name: string; label: string; probabilities: number[] }[] }
  | { type: 'checkpoint'; name: string; bytes: ArrayBuffer }
  | { type: 'error'; message: string };
