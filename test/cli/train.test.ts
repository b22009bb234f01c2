/**
 * `graft train`, `graft evaluate` and `graft features` end to end on a small generated image folder (two
 * classes of 40×40 PNGs, plus a text file that must be skipped), with a ResNet50 base of random weights at
 * 32×32 so that it runs in seconds; and `--resume` after the training process is killed with SIGKILL.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { rng } from '../util/check.js';
import { main } from '../../src/cli/main.js';
import { readSafetensorsFile } from '../../src/weights/files.js';

const root = mkdtempSync(join(tmpdir(), 'graft-cli-train-'));
const data = join(root, 'data');
const SMALL = ['--weights', 'none', '--image-size', '32', '--head', '8', '--batch-size', '4', '--cache-views', '1', '--validation-split', '0.25', '--seed', '3'];

beforeAll(() => {
  const r = rng(11);
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
  writeFileSync(join(data, 'reds', 'notes.txt'), 'not an image');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const json = (file: string) => JSON.parse(readFileSync(file, 'utf8'));
const isPng = (file: string) => readFileSync(file).subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));

describe('graft train', () => {
  const run = join(root, 'run');

  test('trains the head, fine-tunes, and writes the run folder', async () => {
    const code = await main(['train', '--data', data, '--epochs', '2', '--fine-tune-layers', '3', '--fine-tune-epochs', '1', '--out', run, ...SMALL]);
    expect(code).toBe(0);
    const report = json(join(run, 'report.json'));
    expect(report.classNames).toEqual(['blues', 'reds']);
    expect(report.examples).toBe(4); // 25% of the 16 images
    expect(report.history.epoch).toEqual([0, 1, 2]);
    expect(report.fineTuneFrom).toBe(2);
    expect(report.accuracy).toBeGreaterThanOrEqual(0);
    expect(report.classificationReport.accuracy).toBe(report.accuracy);
    expect(report.confusionMatrix.flat().reduce((a: number, b: number) => a + b, 0)).toBe(4);
    expect(readFileSync(join(run, 'report.md'), 'utf8')).toMatch(/## Classification report[\s\S]*\| blues \|/);
    expect(isPng(join(run, 'history.png')) && isPng(join(run, 'confusion-matrix.png'))).toBe(true);
    expect(json(join(run, 'state.json')).phase).toBe('done');
    expect(json(join(run, 'config.json')).classNames).toEqual(['blues', 'reds']);
    // One checkpoint is kept: the last epoch's trainable weights, manifest and optimizer state.
    expect(readdirSync(join(run, 'checkpoints')).sort()).toEqual(['epoch-2.json', 'epoch-2.optimizer.safetensors', 'epoch-2.safetensors']);
    const final = readSafetensorsFile(join(run, 'model.safetensors'));
    expect(final.metadata.format).toBe('graft-transfer-model');
    expect(final.tensors.has('conv1_conv/kernel') && final.tensors.has('head_predictions/kernel')).toBe(true);
  }, 240_000);

  test('graft evaluate rebuilds the model and reproduces the validation accuracy', async () => {
    expect(await main(['evaluate', '--model', run])).toBe(0);
    const evaluation = json(join(run, 'evaluation', 'report.json'));
    const training = json(join(run, 'report.json'));
    expect(evaluation.accuracy).toBe(training.accuracy);
    expect(evaluation.loss).toBeCloseTo(training.loss, 5);
  }, 120_000);

  test('--precision f16: the run records it, its losses follow the f32 run, and graft evaluate reproduces it', async () => {
    const half = join(root, 'run-f16');
    expect(await main(['train', '--data', data, '--epochs', '2', '--fine-tune-layers', '3', '--fine-tune-epochs', '1', '--out', half, ...SMALL, '--precision', 'f16'])).toBe(0);
    expect(json(join(half, 'config.json')).precision).toBe('f16');
    const [a, b] = [json(join(run, 'report.json')), json(join(half, 'report.json'))];
    // The frozen base (and the cached features) in f16; the head and the fine-tuned layers train in f32.
    for (const [i, loss] of a.history.loss.entries()) expect(Math.abs(b.history.loss[i] - loss), `epoch ${i}`).toBeLessThan(0.02 * Math.max(1, loss));
    expect(b.history.loss).not.toEqual(a.history.loss); // close, but computed differently: f16 really ran
    expect(await main(['evaluate', '--model', half])).toBe(0);
    expect(json(join(half, 'evaluation', 'report.json')).accuracy).toBe(b.accuracy);
    expect(await main(['train', '--data', data, '--out', join(root, 'bad-precision'), ...SMALL, '--precision', 'f64'])).toBe(1);
  }, 240_000);

  test('graft predict --model classifies files with the run\'s classes', async () => {
    const printed: string[] = [];
    const spy = (await import('vitest')).vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void printed.push(a.join(' ')));
    try {
      expect(await main(['predict', join(data, 'reds', '0.png'), join(data, 'blues', '1.png'), '--model', run, '--json'])).toBe(0);
    } finally {
      spy.mockRestore();
    }
    const results = JSON.parse(printed.join('\n')) as Array<{ file: string; predictions: Array<{ label: string; probability: number }> }>;
    expect(results).toHaveLength(2);
    for (const r of results) {
      expect(r.predictions.map((p) => p.label).sort()).toEqual(['blues', 'reds']);
      expect(r.predictions[0]!.probability + r.predictions[1]!.probability).toBeCloseTo(1, 5);
    }
  }, 120_000);

  test('graft features writes a named layer for every image', async () => {
    const out = join(root, 'features.safetensors');
    expect(await main(['features', '--model', run, '--data', data, '--layer', 'head_pool', '--out', out])).toBe(0);
    const f = readSafetensorsFile(out);
    expect(f.tensors.get('features')!.shape).toEqual([16, 2048]);
    expect(Array.from(f.tensors.get('labels')!.data as Int32Array)).toEqual([...Array(8).fill(0), ...Array(8).fill(1)]);
    expect(JSON.parse(f.metadata.class_names!)).toEqual(['blues', 'reds']);
  }, 120_000);

  test('--feature-cache: a second run reuses the first run\'s cached features and trains the same', async () => {
    const store = join(root, 'features');
    const args = (out: string) => ['train', '--data', data, '--epochs', '2', '--fine-tune-layers', '3', '--fine-tune-epochs', '1', '--out', out, ...SMALL, '--dropout', '0', '--feature-cache', store];
    const logs: string[] = [];
    const spy = (await import('vitest')).vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (logs.push(String(chunk)), true));
    try {
      expect(await main(args(join(root, 'cached-1')))).toBe(0);
      expect(readdirSync(store).filter((f) => f.endsWith('.safetensors'))).toHaveLength(2); // train and validation
      logs.length = 0;
      expect(await main(args(join(root, 'cached-2')))).toBe(0);
    } finally {
      spy.mockRestore();
    }
    expect(logs.join('').match(/feature cache: reusing/g)).toHaveLength(2);
    const [a, b] = ['cached-1', 'cached-2'].map((r) => json(join(root, r, 'report.json')));
    expect(b.history).toEqual(a.history);
    expect(b.accuracy).toBe(a.accuracy);
  }, 240_000);

  test('refuses to overwrite a run and bad options; resuming a finished run does nothing and succeeds', async () => {
    expect(await main(['train', '--data', data, '--out', run, ...SMALL])).toBe(1);
    const before = readFileSync(join(run, 'state.json'), 'utf8');
    const logs: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void logs.push(a.join(' ')));
    try {
      expect(await main(['train', '--resume', '--out', run])).toBe(0);
    } finally {
      spy.mockRestore();
    }
    expect(logs.join('\n')).toMatch(/had already finished; nothing to do/);
    expect(readFileSync(join(run, 'state.json'), 'utf8')).toBe(before);
    expect(await main(['train', '--resume', '--out', run, '--epochs', '3'])).toBe(1);
    expect(await main(['train', '--data', data, '--out', join(root, 'x'), ...SMALL, '--augment', 'spin'])).toBe(1);
    expect(await main(['train', '--out', join(root, 'y')])).toBe(1);
    expect(existsSync(join(root, 'x', 'state.json'))).toBe(false);
  }, 60_000);
});

describe('graft train --resume', () => {
  test('a run killed with SIGKILL after an epoch continues from its checkpoint', async () => {
    const run = join(root, 'killed');
    const args = ['bin/graft.js', 'train', '--data', data, '--epochs', '10', '--out', run, ...SMALL];
    const child = spawn(process.execPath, args, { stdio: 'ignore' });
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    const killedAt = await new Promise<number>((resolve, reject) => {
      const timer = setInterval(() => {
        try {
          const state = json(join(run, 'state.json'));
          if (state.nextEpoch >= 2 && state.phase !== 'done') {
            clearInterval(timer);
            child.kill('SIGKILL');
            resolve(state.nextEpoch);
          }
        } catch {
          // not written yet (or being renamed into place)
        }
      }, 20);
      child.on('exit', () => {
        clearInterval(timer);
        if (child.signalCode !== 'SIGKILL') reject(new Error(`the training process exited (code ${child.exitCode}) before it could be killed`));
      });
    });
    await exited;
    expect(killedAt).toBeGreaterThanOrEqual(2);
    expect(await main(['train', '--resume', '--out', run])).toBe(0);
    const report = json(join(run, 'report.json'));
    expect(report.history.epoch).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(json(join(run, 'state.json')).phase).toBe('done');
  }, 240_000);
});
