/**
 * VGG16 and ResNet50 (v1 and v1.5) against PyTorch: the same deterministic formula weights (formula-weights.ts,
 * twin of test/golden/make_goldens.py) loaded into Graft's models and into Keras-equivalent PyTorch models
 * written by hand in that script, the same formula input (a batch of 2), and the outputs compared with the
 * float64 PyTorch goldens in test/fixtures/pytorch/: max |Graft − PyTorch| ≤ 1e-4 · max |PyTorch|.
 *
 * With the top, the models are built with classifierActivation 'linear' and compared on the logits. VGG16 with
 * the top has a 392 MiB fc1 kernel; where the device's limits refuse it, that one case is skipped with the
 * LimitError's message (any other error fails).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { tensor } from '../../src/tensor/create.js';
import { tidy } from '../../src/tensor/scope.js';
import { noGrad } from '../../src/autograd/tape.js';
import { LimitError } from '../../src/errors.js';
import type { Model } from '../../src/nn/model.js';
import { resnet50, type ResNet50Config } from '../../src/models/resnet50.js';
import { vgg16 } from '../../src/models/vgg16.js';
import { loadWeights } from '../../src/weights/load.js';
import { formulaInput, formulaWeights } from './formula-weights.js';

useGpu();

interface Golden {
  case: string;
  model: 'vgg16' | 'resnet50';
  config: ResNet50Config;
  input: { shape: [number, number, number, number]; sum: number };
  weights: Array<[string, number[], number]>;
  output_shape: number[];
  output: number[][];
}

const TOLERANCE = 1e-4;
const readGolden = (name: string) => JSON.parse(readFileSync(join('test', 'fixtures', 'pytorch', `${name}.json`), 'utf8')) as Golden;
const build = (g: Golden): Model => (g.model === 'vgg16' ? vgg16(g.config) : resnet50(g.config));
const sum = (a: Float32Array) => a.reduce((s, v) => s + v, 0);

/** Loads the formula weights into `model` (checking keys, shapes and sums against the golden) and runs it. */
async function runFormula(model: Model, g: Golden): Promise<Float32Array> {
  const tensors = formulaWeights(model);
  expect([...tensors.entries()].map(([k, t]) => [k, t.shape]), 'sorted keys and shapes').toEqual(g.weights.map(([k, shape]) => [k, shape]));
  for (const [key, , expected] of g.weights) {
    // Sums of thousands of sines: a formula that drifted changes them by far more than float32 rounding can.
    const t = tensors.get(key)!;
    expect(Math.abs(sum(t.data as Float32Array) - expected), `formula sum of ${key}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(expected)));
  }
  loadWeights(model, tensors, 'formula weights');
  tensors.clear();
  const [b, h, w, c] = g.input.shape;
  const x = formulaInput(b, h, w);
  expect(Math.abs(sum(x) - g.input.sum)).toBeLessThan(1e-5 * Math.max(1, Math.abs(g.input.sum)));
  const y = noGrad(() => tidy(() => model.call(tensor(x, [b, h, w, c]))));
  expect(y.shape).toEqual(g.output_shape);
  const out = await y.floats();
  y.dispose();
  return out;
}

function compare(name: string, out: Float32Array, g: Golden, seconds: number): void {
  const expected = g.output.flat();
  expect(out.length).toBe(expected.length);
  const scale = Math.max(...expected.map(Math.abs));
  let maxError = 0;
  for (let i = 0; i < expected.length; i++) maxError = Math.max(maxError, Math.abs(out[i]! - expected[i]!));
  console.log(`${name}: max |Graft − PyTorch| = ${maxError.toExponential(2)}, ${(maxError / scale).toExponential(2)} of max |PyTorch| = ${scale.toPrecision(4)} (${seconds.toFixed(1)} s)`);
  expect(scale).toBeGreaterThan(0);
  expect(maxError / scale).toBeLessThanOrEqual(TOLERANCE);
}

async function parity(name: string): Promise<void> {
  const g = readGolden(name);
  const t0 = performance.now();
  const model = build(g);
  try {
    compare(name, await runFormula(model, g), g, (performance.now() - t0) / 1000);
  } finally {
    model.dispose();
  }
}

describe('Graft agrees with PyTorch (float64) on formula weights, batch of 2', () => {
  test('ResNet50 v1 with the top, 224×224: logits', () => parity('resnet50-v1-top-224'), 300_000);
  test('ResNet50 v1.5 with the top, 224×224: logits', () => parity('resnet50-v1.5-top-224'), 300_000);
  test('ResNet50 v1.5 without the top, max pooling, 75×61 (not square, odd): features', () => parity('resnet50-v1.5-notop-max-75x61'), 300_000);
  test('VGG16 without the top, average pooling, 64×64: features', () => parity('vgg16-notop-avg-64'), 300_000);

  test('VGG16 with the top, 224×224: logits (skipped only if the device refuses the 392 MiB fc1 with a LimitError)', async (ctx) => {
    const name = 'vgg16-top-224';
    const g = readGolden(name);
    const t0 = performance.now();
    let model: Model | undefined;
    let out: Float32Array;
    try {
      model = build(g);
      out = await runFormula(model, g);
    } catch (e) {
      if (e instanceof LimitError) ctx.skip(`VGG16 with the top does not fit this device yet: LimitError: ${e.message}`);
      throw e;
    } finally {
      model?.dispose();
    }
    compare(name, out, g, (performance.now() - t0) / 1000);
  }, 600_000);
});
