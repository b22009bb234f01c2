/**
 * Messages between the trainer page (trainer.ts, the UI thread) and its worker (trainer-worker.ts), which
 * owns the GPU device, the model and the data. Training runs in the worker, so the page never blocks: it
 * only draws what the worker reports.
 */
import type { History } from '../train/fit.js';

export interface TrainerSettings {
  base: 'resnet50' | 'vgg16';
  /** URL of the base's weights (safetensors, from `graft serve`'s /weights/), or null for random weights. */
  weightsUrl: string | null;
  imageSize: number;
  batchSize: number;
  epochs: number;
  lr: number;
  head: number[];
  dropout: number;
  /** 0: no fine-tuning. */
  fineTuneLayers: number;
  fineTuneEpochs: number;
  fineTuneLr: number;
  validationSplit: number;
  /** Random left-right flips of the training images. */
  flip: boolean;
  /** Augmented views of the training set whose base features are cached. */
  cacheViews: number;
  seed: number;
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
