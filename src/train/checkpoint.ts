/**
 * Reading back what ModelCheckpoint (callbacks.ts) writes: a manifest (JSON) naming a weights file
 * (safetensors keyed by Keras weight keys) and, optionally, an optimizer-state file (safetensors keyed
 * `<param index>/<buffer name>`, with step counts and hyper-parameters in the manifest).
 *
 * `restoreCheckpoint` reads and checks both files before it changes anything: a manifest of the wrong format,
 * a missing file, or an optimizer of another kind is an error that names the file. Then the weights are
 * loaded (loadWeights checks every key and shape before writing any), then the optimizer state (checked the
 * same way by loadStateDict).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { GraftFormatError } from '../errors.js';
import type { Model } from '../nn/model.js';
import { readSafetensorsFile } from '../weights/files.js';
import { loadWeights } from '../weights/load.js';
import type { Logs } from './callbacks.js';
import type { OptimizerStateDict } from './optimizers.js';

export interface CheckpointManifest {
  format: 'graft-checkpoint';
  epoch: number;
  logs: Logs;
  weights: string;
  weightKeys: string[];
  /** 'trainable': only some weights were saved; the others must already hold the values training began with. */
  weightsSaved?: 'all' | 'trainable';
  optimizer: {
    kind: string;
    learningRate: number;
    stateFile: string | null;
    groups?: OptimizerStateDict['groups'];
    steps?: Array<{ param: number; step: number }>;
  };
}

export function readCheckpointManifest(file: string): CheckpointManifest {
  if (!existsSync(file)) throw new GraftFormatError(`checkpoint manifest ${file} not found.`);
  let m: CheckpointManifest;
  try {
    m = JSON.parse(readFileSync(file, 'utf8')) as CheckpointManifest;
  } catch (e) {
    throw new GraftFormatError(`checkpoint manifest ${file} is not valid JSON (${(e as Error).message}).`);
  }
  if (m?.format !== 'graft-checkpoint' || !Number.isInteger(m.epoch) || typeof m.weights !== 'string' || typeof m.optimizer?.kind !== 'string') {
    throw new GraftFormatError(`${file} is not a Graft checkpoint manifest (expected format 'graft-checkpoint' with epoch, weights and optimizer).`);
  }
  return m;
}

/** A path in a manifest, relative paths taken as written (from the working directory) or beside the manifest. */
function locate(manifestFile: string, path: string): string {
  if (isAbsolute(path) || existsSync(path)) return path;
  return join(dirname(manifestFile), path.split(/[\\/]/).pop()!);
}

interface Restorable {
  readonly kind: string;
  loadStateDict(dict: OptimizerStateDict): void;
}

/**
 * Loads a checkpoint's weights into `model` and, when given, its state into `optimizer`. A checkpoint of
 * trainable weights only leaves the model's other weights as they are (build the model from its base's
 * weights first).
 */
export function restoreCheckpoint(manifestFile: string, model: Model, optimizer?: Restorable): CheckpointManifest {
  const m = readCheckpointManifest(manifestFile);
  const weightsFile = locate(manifestFile, m.weights);
  const weights = readSafetensorsFile(weightsFile, { widen: true });
  let dict: OptimizerStateDict | null = null;
  if (optimizer) {
    const o = m.optimizer;
    if (o.kind !== optimizer.kind) throw new GraftFormatError(`${manifestFile}: the checkpoint's optimizer is ${o.kind}, the run's is ${optimizer.kind}.`);
    if (!o.stateFile || !o.groups || !o.steps) throw new GraftFormatError(`${manifestFile}: the checkpoint has no optimizer state (it was saved with saveOptimizerState: false).`);
    const stateFile = locate(manifestFile, o.stateFile);
    const buffers = readSafetensorsFile(stateFile).tensors;
    const state: OptimizerStateDict['state'] = o.steps.map(({ param, step }) => {
      const own: OptimizerStateDict['state'][number]['buffers'] = {};
      for (const [key, t] of buffers) {
        const [p, name] = key.split('/');
        if (Number(p) !== param || !name) continue;
        if (t.dtype !== 'F32') throw new GraftFormatError(`${stateFile}: ${key} is ${t.dtype}; optimizer state is F32.`);
        own[name] = { shape: t.shape, data: t.data as Float32Array };
      }
      return { param, step, buffers: own };
    });
    dict = { kind: o.kind, learningRate: o.learningRate, groups: o.groups, state };
  }
  loadWeights(model, weights.tensors, weightsFile, { allowMissing: m.weightsSaved === 'trainable' });
  if (optimizer && dict) optimizer.loadStateDict(dict);
  return m;
}
