/**
 * Losing the GPU device in the middle of `graft train`, end to end and in-process: main(['train', …]) runs on
 * a small generated image folder (two classes of 40×40 PNGs, a ResNet50 base of random weights at 32×32, a
 * long run of 50 epochs) while a timer destroys the device (`runtime().device.destroy()`, which WebGPU treats
 * like a driver reset) at some moment after the first checkpoint has appeared.
 *
 * What must hold: main returns 1 (it does not hang, and no other exception escapes); stderr carries the
 * DeviceLostError's message, which says what happened and to resume with `graft train --resume`; and the run
 * folder holds no partial checkpoint: no temporary (*.tmp) file, every manifest in checkpoints/ names weights
 * and optimizer files that exist and load with the listed tensors, every weights file belongs to a manifest,
 * and state.json names a checkpoint that exists.
 *
 * The moments tried: as soon as checkpoints/ has its first file (the timer polls every millisecond, so it
 * fires during the checkpoint's own GPU readbacks if there is an await between its files), then at random
 * delays into the following epochs. GRAFT_DEVICE_LOST_TRIALS sets the number of trials (default 3).
 *
 * This file destroys devices on purpose; vitest runs it in its own process (vitest.config.ts: pool 'forks').
 * Run: npx vitest run test/reliability/device-lost-cli.test.ts
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { hasRuntime, runtime } from '../../src/gpu/runtime.js';
import { readCheckpointManifest } from '../../src/train/checkpoint.js';
import { readSafetensorsFile } from '../../src/weights/files.js';
import { rng } from '../util/check.js';

const TRIALS = Number(process.env.GRAFT_DEVICE_LOST_TRIALS ?? 3);
const root = mkdtempSync(join(tmpdir(), 'graft-device-lost-cli-'));
const data = join(root, 'data');
const ARGS = ['--weights', 'none', '--image-size', '32', '--head', '8', '--batch-size', '4', '--cache-views', '0', '--epochs', '50', '--validation-split', '0.25', '--seed', '5'];

beforeAll(() => {
  const r = rng(17);
  for (const [c, cls] of ['reds', 'blues'].entries()) {
    mkdirSync(join(data, cls), { recursive: true });
    for (let i = 0; i < 8; i++) {
      const png = new PNG({ width: 40, height: 40 });
      for (let p = 0; p < 1600; p++) {
        png.data[p * 4] = Math.round(c === 0 ? 150 + r() * 100 : r() * 100);
        png.data[p * 4 + 1] = Math.round(r() * 255);
        png.data[p * 4 + 2] = Math.round(c === 1 ? 150 + r() * 100 : r() * 100);
        png.data[p * 4 + 3] = 255;
      }
      writeFileSync(join(data, cls, `${i}.png`), PNG.sync.write(png));
    }
  }
});
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

/** Every file under `dir`, recursively, as paths relative to it. */
function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(dir, join(prefix, e.name)) : [join(prefix, e.name)],
  );
}

/** No temporary file anywhere, and checkpoints/ holds only complete, loadable checkpoints. Returns their epochs. */
function expectCompleteCheckpoints(run: string): number[] {
  const all = filesUnder(run);
  expect(all.filter((f) => f.endsWith('.tmp')), 'temporary files left behind').toEqual([]);
  const dir = join(run, 'checkpoints');
  const files = readdirSync(dir);
  const owned = new Set<string>();
  const epochs: number[] = [];
  for (const f of files.filter((f) => f.endsWith('.json'))) {
    const manifest = readCheckpointManifest(join(dir, f));
    epochs.push(manifest.epoch);
    owned.add(f);
    const weightsFile = join(dir, manifest.weights.split(/[\\/]/).pop()!);
    const weights = readSafetensorsFile(weightsFile);
    expect([...weights.tensors.keys()].sort()).toEqual([...manifest.weightKeys].sort());
    owned.add(manifest.weights.split(/[\\/]/).pop()!);
    expect(manifest.optimizer.stateFile, `${f} has no optimizer state`).not.toBeNull();
    const stateName = manifest.optimizer.stateFile!.split(/[\\/]/).pop()!;
    const state = readSafetensorsFile(join(dir, stateName));
    expect(state.tensors.size).toBeGreaterThan(0);
    owned.add(stateName);
  }
  expect(files.filter((f) => !owned.has(f)), 'checkpoint files without a manifest').toEqual([]);
  const state = JSON.parse(readFileSync(join(run, 'state.json'), 'utf8')) as { checkpoint: string | null };
  if (state.checkpoint !== null) expect(existsSync(state.checkpoint) || existsSync(join(dir, state.checkpoint.split(/[\\/]/).pop()!))).toBe(true);
  return epochs;
}

/**
 * Calls `destroy` once `delayMs` has passed after checkpoints/ first holds a file. Polls every millisecond;
 * returns a function that stops the timers.
 */
function destroyAfterFirstCheckpoint(run: string, delayMs: number, destroyed: { at: string | null }): () => void {
  let delay: ReturnType<typeof setTimeout> | undefined;
  const destroy = () => {
    if (destroyed.at !== null || !hasRuntime()) return;
    destroyed.at = existsSync(join(run, 'checkpoints')) ? readdirSync(join(run, 'checkpoints')).sort().join(', ') : '';
    runtime().device.destroy();
  };
  const poll = setInterval(() => {
    const dir = join(run, 'checkpoints');
    if (!existsSync(dir) || readdirSync(dir).length === 0) return;
    clearInterval(poll);
    if (delayMs === 0) destroy();
    else delay = setTimeout(destroy, delayMs);
  }, 1);
  return () => {
    clearInterval(poll);
    clearTimeout(delay);
  };
}

describe('graft train loses its GPU device', () => {
  const r = rng(23);
  // The first trial at once; the others spread over the next 2 s (an epoch here takes about 1 s), with jitter.
  const delays = Array.from({ length: TRIALS }, (_, i) => (i === 0 ? 0 : Math.round(((i - 0.5 + r()) / Math.max(1, TRIALS - 1)) * 2000)));

  test.each(delays.map((d, i) => [i + 1, d] as const))('trial %i: device destroyed %i ms after the first checkpoint file', async (trial, delayMs) => {
    const run = join(root, `run-${trial}`);
    const errors: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void errors.push(a.map(String).join(' ')));
    vi.spyOn(console, 'log').mockImplementation(() => {});
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const destroyed = { at: null as string | null };
    const stop = destroyAfterFirstCheckpoint(run, delayMs, destroyed);
    const started = performance.now();
    let code: number;
    try {
      code = await main(['train', '--data', data, '--out', run, ...ARGS]);
    } finally {
      stop();
      vi.restoreAllMocks();
    }
    const seconds = (performance.now() - started) / 1000;
    expect(destroyed.at, 'the run ended before the device was destroyed: raise --epochs').not.toBeNull();
    expect(code, errors.join('\n')).toBe(1);
    const message = errors.join('\n');
    expect(message).toMatch(/^graft train: The WebGPU device was lost \(destroyed/m);
    expect(message).toMatch(/`graft train --resume`/);
    expect(message).toMatch(/last checkpoint in its run folder is intact/);
    const epochs = expectCompleteCheckpoints(run);
    expect(epochs.length).toBeGreaterThanOrEqual(1);
    process.stdout.write(`trial ${trial}: destroyed ${delayMs} ms after the first checkpoint file (checkpoints then: ${destroyed.at}); main returned ${code} after ${seconds.toFixed(1)} s; checkpoints left: epochs ${epochs.join(', ')}\n`);
  });
});
