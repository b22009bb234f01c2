/**
 * Kill and resume: `graft train` is killed with SIGKILL at a random moment (before, during or after
 * checkpoint writes, during the final report, or after it finished), then resumed with `--resume`, repeatedly. After every kill,
 * each checkpoint on disk must load completely. Every trial must finish, and — with dropout 0 and no
 * augmentation, so that training is deterministic — with the same loss at every epoch as an uninterrupted
 * run and bit-identical final weights: a resumed run loses nothing and repeats nothing.
 *
 * GRAFT_KILL_TRIALS sets the number of trials (default 20).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { rng } from '../util/check.js';
import { readSafetensorsFile } from '../../src/weights/files.js';
import { readCheckpointManifest } from '../../src/train/checkpoint.js';

const TRIALS = Number(process.env.GRAFT_KILL_TRIALS ?? 20);
const root = mkdtempSync(join(tmpdir(), 'graft-kill-'));
const data = join(root, 'data');
const ARGS = ['--data', data, '--weights', 'none', '--image-size', '32', '--head', '8', '--dropout', '0', '--augment', 'none', '--batch-size', '4',
  '--cache-views', '1', '--validation-split', '0.25', '--seed', '5', '--epochs', '4', '--fine-tune-layers', '3', '--fine-tune-epochs', '3'];

beforeAll(() => {
  const r = rng(3);
  for (const [c, cls] of ['a', 'b'].entries()) {
    mkdirSync(join(data, cls), { recursive: true });
    for (let i = 0; i < 8; i++) {
      const png = new PNG({ width: 32, height: 32 });
      for (let p = 0; p < 1024; p++) {
        for (let k = 0; k < 3; k++) png.data[p * 4 + k] = Math.round(r() * 200 + (k === c ? 55 : 0));
        png.data[p * 4 + 3] = 255;
      }
      writeFileSync(join(data, cls, `${i}.png`), PNG.sync.write(png));
    }
  }
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Runs graft; with `killAfterMs`, SIGKILLs it then. Resolves with how it ended. */
function graft(args: string[], killAfterMs?: number): Promise<{ code: number | null; killed: boolean; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/graft.js', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-4000); });
    const timer = killAfterMs === undefined ? null : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, killed: signal === 'SIGKILL', stderr });
    });
  });
}

/** Loads every checkpoint left in the run folder: manifest, weights and optimizer state. Returns how many. */
function loadAllCheckpoints(run: string): number {
  const dir = join(run, 'checkpoints');
  if (!existsSync(dir)) return 0;
  const manifests = readdirSync(dir).filter((f) => /^epoch-\d+\.json$/.test(f));
  for (const f of manifests) {
    const m = readCheckpointManifest(join(dir, f));
    readSafetensorsFile(join(dir, m.weights.split('/').pop()!));
    if (m.optimizer.stateFile) readSafetensorsFile(join(dir, m.optimizer.stateFile.split('/').pop()!));
  }
  return manifests.length;
}

function weightsOf(run: string): Map<string, Float32Array> {
  const f = readSafetensorsFile(join(run, 'model.safetensors'));
  return new Map([...f.tensors].map(([k, t]) => [k, t.data as Float32Array]));
}

describe(`graft train killed at random moments and resumed (${TRIALS} trials)`, () => {
  test('every trial finishes with the weights of an uninterrupted run', async () => {
    const reference = join(root, 'reference');
    const started = performance.now();
    expect((await graft(['train', ...ARGS, '--out', reference])).code).toBe(0);
    const duration = performance.now() - started;
    const expected = weightsOf(reference);
    const expectedLoss = JSON.parse(readFileSync(join(reference, 'state.json'), 'utf8')).history.loss as number[];
    const r = rng(42);
    const log: string[] = [];
    for (let trial = 0; trial < TRIALS; trial++) {
      const run = join(root, `trial-${trial}`);
      let kills = 0;
      // First attempt is killed somewhere in the run; the resumes may be killed again (half of the trials).
      // Start-up (module loading, device, model build) takes the first part of a run; kill later than that
      // mostly, so that most kills land in training and checkpoint writes.
      const when = () => (0.3 + 0.65 * r()) * duration;
      let outcome = await graft(['train', ...ARGS, '--out', run], when());
      let loaded = 0;
      while (outcome.killed) {
        kills++;
        loaded += loadAllCheckpoints(run); // throws if a kill left a checkpoint half-written
        const resumeArgs = existsSync(join(run, 'config.json')) ? ['train', '--resume', '--out', run] : ['train', ...ARGS, '--out', run];
        outcome = await graft(resumeArgs, kills < 3 && r() < 0.5 ? when() : undefined);
      }
      expect(outcome.code, `trial ${trial} (${kills} kills): ${outcome.stderr}`).toBe(0);
      const state = JSON.parse(readFileSync(join(run, 'state.json'), 'utf8'));
      expect(state.phase).toBe('done');
      expect(state.history.epoch).toEqual([0, 1, 2, 3, 4, 5, 6]);
      expect(state.history.loss).toEqual(expectedLoss);
      const got = weightsOf(run);
      expect([...got.keys()]).toEqual([...expected.keys()]);
      for (const [k, w] of expected) expect(Buffer.from(got.get(k)!.buffer).equals(Buffer.from(w.buffer)), `trial ${trial}: ${k}`).toBe(true);
      log.push(`trial ${trial}: killed ${kills}×, ${loaded} checkpoint loads after kills`);
      rmSync(run, { recursive: true, force: true });
    }
    const loads = log.reduce((n, l) => n + Number(/, (\d+) checkpoint/.exec(l)![1]), 0);
    console.log(`${log.join('\n')}\n${TRIALS} trials, ${log.reduce((n, l) => n + Number(/killed (\d+)×/.exec(l)![1]), 0)} kills, ${loads} checkpoint loads after kills`);
  }, 1_800_000);
});
