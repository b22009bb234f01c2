/**
 * Callbacks for `fit` (src/train/fit.ts), after Keras: EarlyStopping, LearningRateScheduler, ModelCheckpoint.
 *
 * `fit` calls onTrainBegin, then per epoch onEpochBegin and onEpochEnd (with the epoch's logs: loss, accuracy,
 * val_loss, val_accuracy), then onTrainEnd (also when training stops early or throws). An onEpochEnd that
 * returns 'stop' ends training after that epoch. The logs object is shared by the callbacks of one epoch.
 *
 * Weight snapshots (EarlyStopping's restoreBestWeights) stay on the GPU: each weight is copied with
 * copyBufferToBuffer into a kept tensor when the monitored value improves, and copied back INTO the model's
 * existing weight tensors, so an optimizer holding those tensors keeps working.
 */
import { ArgumentError } from '../errors.js';
import { runtime } from '../gpu/runtime.js';
import { Tensor } from '../tensor/tensor.js';
import type { Model } from '../nn/model.js';
import { writeFileAtomic, writeSafetensorsFile } from '../weights/files.js';
import type { SafetensorsTensor } from '../weights/safetensors.js';
import type { OptimizerStateDict } from './optimizers.js';
import { markWritten } from '../tensor/write-generation.js';

export type Logs = Partial<Record<'loss' | 'accuracy' | 'val_loss' | 'val_accuracy', number>> & Record<string, number | undefined>;

/** The optimizer as callbacks see it: its rate can be set, its state read for checkpoints. */
export interface TrainOptimizer {
  readonly kind: string;
  learningRate: number;
  stateDict(): Promise<OptimizerStateDict>;
}

export interface TrainContext {
  model: Model;
  optimizer: TrainOptimizer;
}

type MaybePromise<T> = T | Promise<T>;

export interface Callback {
  onTrainBegin?(context: TrainContext): MaybePromise<void>;
  onEpochBegin?(epoch: number, context: TrainContext): MaybePromise<void>;
  onEpochEnd?(epoch: number, logs: Logs, context: TrainContext): MaybePromise<'stop' | void>;
  onTrainEnd?(context: TrainContext): MaybePromise<void>;
}

type Mode = 'auto' | 'min' | 'max';

/** Keras's rule for mode 'auto': accuracies are maximised, everything else minimised. */
function resolveMode(who: string, mode: Mode, monitor: string): 'min' | 'max' {
  if (mode !== 'auto' && mode !== 'min' && mode !== 'max') throw new ArgumentError(`${who}: mode must be 'auto', 'min' or 'max', got '${mode}'.`);
  if (mode !== 'auto') return mode;
  return monitor.includes('acc') ? 'max' : 'min';
}

function monitored(who: string, monitor: string, logs: Logs): number {
  const v = logs[monitor];
  if (typeof v !== 'number') {
    throw new ArgumentError(`${who}: monitor '${monitor}' is not in the epoch logs (available: ${Object.keys(logs).join(', ')}); pass validation data to fit for val_* metrics.`);
  }
  return v;
}

/** GPU copies of every weight of a model (trainable or not), in `model.weights` order. */
export class WeightSnapshot {
  private copies: Tensor[] = [];

  take(model: Model): void {
    const weights = model.weights;
    if (this.copies.length !== weights.length) {
      this.dispose();
      this.copies = weights.map((w) => Tensor.empty(w.value.shape, w.value.dtype, `snapshot ${w.key}`).keep());
    }
    weights.forEach((w, i) => runtime().copy(w.value.buffer, 0, this.copies[i]!.buffer, 0, w.value.byteLength));
  }

  /** Writes the snapshot into the model's existing weight tensors. */
  restore(model: Model): void {
    const weights = model.weights;
    if (weights.length !== this.copies.length) throw new ArgumentError(`WeightSnapshot.restore: the model has ${weights.length} weights, the snapshot ${this.copies.length}.`);
    weights.forEach((w, i) => runtime().copy(this.copies[i]!.buffer, 0, w.value.buffer, 0, w.value.byteLength));
    markWritten(...weights.map((w) => w.value));
  }

  get empty(): boolean {
    return this.copies.length === 0;
  }

  dispose(): void {
    for (const t of this.copies) t.dispose();
    this.copies = [];
  }
}

export interface EarlyStoppingOptions {
  monitor?: string;
  /** Training stops after this many epochs in a row without improvement (0 acts as 1, as in Keras). Default 0. */
  patience?: number;
  /** An improvement must exceed this. Default 0. */
  minDelta?: number;
  mode?: Mode;
  /** On stop or at the end of training, put back the weights of the best epoch. Default false. */
  restoreBestWeights?: boolean;
}

export class EarlyStopping implements Callback {
  readonly monitor: string;
  readonly patience: number;
  readonly minDelta: number;
  readonly mode: 'min' | 'max';
  readonly restoreBestWeights: boolean;
  best = NaN;
  bestEpoch = -1;
  /** The epoch after which training stopped, or -1. */
  stoppedEpoch = -1;
  private wait = 0;
  private readonly snapshot = new WeightSnapshot();

  constructor(options: EarlyStoppingOptions = {}) {
    this.monitor = options.monitor ?? 'val_loss';
    this.patience = options.patience ?? 0;
    this.minDelta = Math.abs(options.minDelta ?? 0);
    this.mode = resolveMode('EarlyStopping', options.mode ?? 'auto', this.monitor);
    this.restoreBestWeights = options.restoreBestWeights ?? false;
    if (!Number.isInteger(this.patience) || this.patience < 0) throw new ArgumentError(`EarlyStopping: patience must be a non-negative integer, got ${options.patience}.`);
  }

  onTrainBegin(): void {
    this.best = NaN;
    this.bestEpoch = -1;
    this.stoppedEpoch = -1;
    this.wait = 0;
  }

  private improves(v: number): boolean {
    if (Number.isNaN(this.best)) return !Number.isNaN(v);
    return this.mode === 'min' ? v < this.best - this.minDelta : v > this.best + this.minDelta;
  }

  onEpochEnd(epoch: number, logs: Logs, { model }: TrainContext): 'stop' | void {
    const v = monitored('EarlyStopping', this.monitor, logs);
    if (this.improves(v)) {
      this.best = v;
      this.bestEpoch = epoch;
      this.wait = 0;
      if (this.restoreBestWeights) this.snapshot.take(model);
      return;
    }
    // Keras's count: `patience` non-improving epochs end training, the last of them included (so 0 and 1
    // both stop at the first epoch that does not improve).
    this.wait++;
    if (this.wait >= Math.max(this.patience, 1)) {
      this.stoppedEpoch = epoch;
      return 'stop';
    }
  }

  onTrainEnd({ model }: TrainContext): void {
    if (this.restoreBestWeights && !this.snapshot.empty) this.snapshot.restore(model);
    this.snapshot.dispose();
  }
}

/** Sets the optimizer's learning rate at the start of each epoch to `schedule(epoch, currentRate)`. */
export class LearningRateScheduler implements Callback {
  constructor(private readonly schedule: (epoch: number, lr: number) => number) {
    if (typeof schedule !== 'function') throw new ArgumentError('LearningRateScheduler: schedule must be a function (epoch, lr) => lr.');
  }

  onEpochBegin(epoch: number, { optimizer }: TrainContext): void {
    const lr = this.schedule(epoch, optimizer.learningRate);
    if (typeof lr !== 'number' || !Number.isFinite(lr) || lr <= 0) throw new ArgumentError(`LearningRateScheduler: schedule(${epoch}, lr) returned ${lr}; expected a finite number > 0.`);
    optimizer.learningRate = lr;
  }

  onEpochEnd(_epoch: number, logs: Logs, { optimizer }: TrainContext): void {
    logs.lr = optimizer.learningRate;
  }
}

export interface ModelCheckpointOptions {
  /** Path of the weights file; `{epoch}` is replaced by the epoch number. The manifest goes beside it as .json. */
  path: string;
  /** Needed with saveBestOnly. Default 'val_loss'. */
  monitor?: string;
  /** Write only when the monitored value improves. Default false (write every epoch). */
  saveBestOnly?: boolean;
  mode?: Mode;
  /** Also write the optimizer's state (moments, step counts) to `<path>.optimizer.safetensors`. Default true. */
  saveOptimizerState?: boolean;
  /**
   * 'all' (default) writes every weight. 'trainable' writes only the weights of layers that have trainable
   * weights (their moving statistics included): with a frozen ResNet50 base that is the head's 1 M
   * parameters instead of 24.6 M, and restoring it needs the model rebuilt from the base's weights first.
   */
  weights?: 'all' | 'trainable';
}

/** The manifest path for a weights path: `ckpt.safetensors` → `ckpt.json`. */
export function manifestPath(weightsPath: string): string {
  return weightsPath.replace(/\.safetensors$/, '') + '.json';
}

/**
 * Writes the model's weights (safetensors, keyed by Keras weight keys, written atomically) and a JSON manifest:
 * epoch, logs, monitor and best value, optimizer kind and learning rate, and the optimizer state file if any.
 */
export class ModelCheckpoint implements Callback {
  readonly path: string;
  readonly monitor: string;
  readonly saveBestOnly: boolean;
  readonly mode: 'min' | 'max';
  readonly saveOptimizerState: boolean;
  readonly weights: 'all' | 'trainable';
  best = NaN;
  /** Paths written so far, in order. */
  readonly written: string[] = [];

  constructor(options: ModelCheckpointOptions) {
    if (typeof options?.path !== 'string' || options.path === '') throw new ArgumentError('ModelCheckpoint: path must be a non-empty string.');
    this.path = options.path;
    this.monitor = options.monitor ?? 'val_loss';
    this.saveBestOnly = options.saveBestOnly ?? false;
    this.mode = resolveMode('ModelCheckpoint', options.mode ?? 'auto', this.monitor);
    this.saveOptimizerState = options.saveOptimizerState ?? true;
    this.weights = options.weights ?? 'all';
    if (this.weights !== 'all' && this.weights !== 'trainable') throw new ArgumentError(`ModelCheckpoint: weights must be 'all' or 'trainable', got '${String(this.weights)}'.`);
  }

  async onEpochEnd(epoch: number, logs: Logs, { model, optimizer }: TrainContext): Promise<void> {
    if (this.saveBestOnly) {
      const v = monitored('ModelCheckpoint', this.monitor, logs);
      const better = Number.isNaN(this.best) || (this.mode === 'min' ? v < this.best : v > this.best);
      if (!better) return;
      this.best = v;
    }
    const path = this.path.replaceAll('{epoch}', String(epoch));
    const tensors = new Map<string, SafetensorsTensor>();
    const layers = new Set(model.trainableWeights.map((w) => w.layer));
    const saved = this.weights === 'all' ? model.weights : model.weights.filter((w) => layers.has(w.layer));
    // Everything is read back from the GPU before the first file is written, so a device lost during the
    // readbacks leaves no partial checkpoint (weights without their optimizer state or manifest).
    for (const w of saved) tensors.set(w.key, { dtype: 'F32', shape: [...w.value.shape], data: await w.value.floats() });
    const dict = this.saveOptimizerState ? await optimizer.stateDict() : null;
    writeSafetensorsFile(path, tensors, { format: 'graft-checkpoint', epoch: String(epoch) });
    let optimizerFile: string | null = null;
    let optimizerMeta: unknown = null;
    if (dict) {
      const buffers = new Map<string, SafetensorsTensor>();
      for (const s of dict.state) for (const [name, b] of Object.entries(s.buffers)) buffers.set(`${s.param}/${name}`, { dtype: 'F32', shape: b.shape, data: b.data });
      optimizerFile = path.replace(/\.safetensors$/, '') + '.optimizer.safetensors';
      writeSafetensorsFile(optimizerFile, buffers);
      optimizerMeta = { groups: dict.groups, steps: dict.state.map((s) => ({ param: s.param, step: s.step })) };
    }
    const manifest = {
      format: 'graft-checkpoint',
      epoch,
      logs,
      monitor: this.monitor,
      best: this.saveBestOnly ? this.best : null,
      weights: path,
      weightKeys: saved.map((w) => w.key),
      weightsSaved: this.weights,
      optimizer: { kind: optimizer.kind, learningRate: optimizer.learningRate, stateFile: optimizerFile, ...(optimizerMeta ?? {}) },
    };
    writeFileAtomic(manifestPath(path), new TextEncoder().encode(JSON.stringify(manifest, null, 2)));
    this.written.push(path);
  }
}
