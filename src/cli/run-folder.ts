/**
 * A run folder (`graft train --out runs/NAME`):
 *
 *   config.json                       the run's settings, class names and preprocessing (written first)
 *   state.json                        phase, next epoch, history so far, and the latest checkpoint
 *   checkpoints/epoch-E.safetensors   trainable weights after epoch E (+ epoch-E.json manifest, + optimizer
 *                                     state); the frozen ones are the base's, from its weights file
 *   model.safetensors                 the final weights, with config.json's content in its metadata
 *   report.json, report.md, history.png, confusion-matrix.png
 *
 * Crash safety. Every file is written to a temp file and renamed. After each epoch the checkpoint files are
 * written first and state.json last, and only then are older checkpoints deleted, so at any moment
 * state.json names a complete checkpoint: a run killed at any point resumes (`--resume`) from its last
 * finished epoch.
 */
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { GraftError, GraftFormatError } from '../errors.js';
import { writeFileAtomic } from '../weights/files.js';
import { type Callback, type Logs, ModelCheckpoint, manifestPath, type TrainContext } from '../train/callbacks.js';
import { type History, recordEpoch } from '../train/fit.js';

export type Phase = 'head' | 'fine-tune' | 'done';

export interface RunState {
  phase: Phase;
  /** The first epoch not yet trained (epochs are numbered across both phases). */
  nextEpoch: number;
  history: History;
  /** Manifest of the latest checkpoint, and the phase whose optimizer state it holds. */
  checkpoint: string | null;
  checkpointPhase: Phase | null;
}

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value, null, 2) + '\n');

export function writeJson(file: string, value: unknown): void {
  writeFileAtomic(file, encode(value));
}

export function readJson<T>(file: string, what: string): T {
  if (!existsSync(file)) throw new GraftError(`${what} ${file} not found.`);
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (e) {
    throw new GraftFormatError(`${what} ${file} is not valid JSON (${(e as Error).message}).`);
  }
}

export function readState(dir: string): RunState {
  const s = readJson<RunState>(join(dir, 'state.json'), 'run state');
  if (!['head', 'fine-tune', 'done'].includes(s.phase) || !Number.isInteger(s.nextEpoch) || !s.history) {
    throw new GraftFormatError(`${join(dir, 'state.json')} is not a Graft run state (phase, nextEpoch, history).`);
  }
  return s;
}

/**
 * After every epoch: a checkpoint (weights + optimizer state), then state.json, then the older checkpoints
 * are removed. `history` accumulates across phases and resumptions.
 */
export class RunCheckpoint implements Callback {
  private readonly writer: ModelCheckpoint;
  private readonly dir: string;

  constructor(
    private readonly run: string,
    private readonly state: RunState,
    private readonly phase: Exclude<Phase, 'done'>,
  ) {
    this.dir = join(run, 'checkpoints');
    // The frozen weights are the base's, re-read from its file on resume: only what trains is saved.
    this.writer = new ModelCheckpoint({ path: join(this.dir, 'epoch-{epoch}.safetensors'), weights: 'trainable' });
  }

  async onEpochEnd(epoch: number, logs: Logs, context: TrainContext): Promise<void> {
    await this.writer.onEpochEnd(epoch, logs, context);
    recordEpoch(this.state.history, epoch, logs);
    this.state.nextEpoch = epoch + 1;
    this.state.phase = this.phase;
    this.state.checkpoint = manifestPath(join(this.dir, `epoch-${epoch}.safetensors`));
    this.state.checkpointPhase = this.phase;
    writeJson(join(this.run, 'state.json'), this.state);
    pruneCheckpoints(this.dir, `epoch-${epoch}`);
  }
}

/** Removes every checkpoint file in `dir` except those of `keep` (e.g. "epoch-7"). */
function pruneCheckpoints(dir: string, keep: string): void {
  for (const f of readdirSync(dir)) {
    if (/^epoch-\d+(\.optimizer)?\.(safetensors|json)$/.test(f) && !f.startsWith(`${keep}.`)) rmSync(join(dir, f), { force: true });
  }
}
