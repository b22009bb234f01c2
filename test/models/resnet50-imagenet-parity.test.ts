/**
 * Graft's ResNet50 with the real ImageNet weights against an independent implementation: the golden top-5 in
 * test/fixtures/imagenet/resnet50-top5.json comes from test/golden/resnet50_numpy.py, a NumPy float64 forward
 * pass that parses the same safetensors file by hand. Both read the same committed 224×224 byte inputs
 * (test/fixtures/imagenet/*.rgb.gz, made by Graft's decoder and resize: see imagenet-inputs.ts), so what is
 * compared is the network alone. The weights come from `graft weights fetch resnet50` (fetched here if missing).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { tensor } from '../../src/tensor/create.js';
import { tidy } from '../../src/tensor/scope.js';
import { noGrad } from '../../src/autograd/tape.js';
import { preprocess } from '../../src/data/image.js';
import { type Pretrained, decodePredictions, loadPretrained } from '../../src/models/pretrained.js';
import { fetchResnet50Imagenet } from '../../src/weights/fetch.js';
import { withPrecisionAsync } from '../../src/nn/precision.js';
import { RESNET50_IMAGENET } from '../../src/weights/resnet50-imagenet.js';
import { HYMENOPTERA_VAL, IMAGENET_FIXTURES, IMAGENET_INPUTS, SIZE, readRgbFixture, rgb224FromJpeg } from './imagenet-inputs.js';

useGpu();

interface Golden {
  batchnorm_epsilon: number;
  images: Array<{ name: string; top5: Array<{ index: number; label: string; probability: number }> }>;
}

const WEIGHTS = join('weights', RESNET50_IMAGENET.fileName);
const golden = JSON.parse(readFileSync(join(IMAGENET_FIXTURES, 'resnet50-top5.json'), 'utf8')) as Golden;
const manifest = JSON.parse(readFileSync(join(IMAGENET_FIXTURES, 'inputs.json'), 'utf8')) as Array<{ name: string; rgb_sha256: string }>;
const TOLERANCE = 1e-3;

let pretrained: Pretrained;
let probabilities: Float32Array;
let folded: Float32Array;
let half: Float32Array;

beforeAll(async () => {
  if (!existsSync(WEIGHTS)) {
    const log: string[] = [];
    await fetchResnet50Imagenet({ cacheDir: join('weights', 'cache'), out: WEIGHTS, log: (l) => log.push(l) });
    console.log(log.join('\n'));
  }
  pretrained = loadPretrained(WEIGHTS);
  const { model, preprocessing } = pretrained;
  const batch = new Float32Array(IMAGENET_INPUTS.length * SIZE * SIZE * 3);
  IMAGENET_INPUTS.forEach((input, b) => batch.set(preprocess(Float32Array.from(readRgbFixture(input.name)), preprocessing), b * SIZE * SIZE * 3));
  const run = async () => {
    const probs = noGrad(() => tidy(() => model.call(tensor(batch, [IMAGENET_INPUTS.length, SIZE, SIZE, 3]))));
    const out = await probs.floats();
    probs.dispose();
    return out;
  };
  probabilities = await run(); // trainable: every BatchNorm runs as its own kernel
  model.trainable = false; // frozen: each Conv → BN → ReLU chain runs as one folded convolution
  folded = await run();
  half = await withPrecisionAsync('f16', run); // f16 activations and weights, f32 sums (src/nn/precision.ts)
  model.dispose();
}, 600_000);

describe('ResNet50 with the ImageNet weights agrees with an independent NumPy ResNet50', () => {
  test('the weights are the ones the golden was made from: v1, caffe preprocessing, the same BN epsilon', () => {
    expect(pretrained.architecture).toBe('resnet50-v1');
    expect(pretrained.preprocessing).toBe('caffe');
    expect(pretrained.labels[309]).toBe('bee');
    expect(pretrained.labels[310]).toBe('ant');
    expect(golden.batchnorm_epsilon).toBe(0.001);
    expect(golden.images.map((g) => g.name)).toEqual(IMAGENET_INPUTS.map((i) => i.name));
  });

  test('the committed inputs are what Graft decodes and resizes from the source photographs', () => {
    for (const input of IMAGENET_INPUTS) {
      const bytes = readRgbFixture(input.name);
      const entry = manifest.find((m) => m.name === input.name)!;
      expect(createHash('sha256').update(bytes).digest('hex'), input.name).toBe(entry.rgb_sha256);
      const source = join(HYMENOPTERA_VAL, input.source);
      if (!existsSync(source)) throw new Error(`${source} is missing: the shared hymenoptera data set (../shared/data/README.md) must be beside the repository.`);
      expect(Buffer.from(rgb224FromJpeg(source)).equals(Buffer.from(bytes)), `${input.name} from ${input.source}`).toBe(true);
    }
  });

  test('the frozen model (BatchNorm folded into the convolutions) gives the same probabilities', () => {
    let worst = 0;
    for (let i = 0; i < probabilities.length; i++) worst = Math.max(worst, Math.abs(folded[i]! - probabilities[i]!));
    console.log(`ResNet50, folded vs unfolded BatchNorm: max |Δp| ${worst.toExponential(2)} over ${IMAGENET_INPUTS.length}×1000 probabilities`);
    expect(worst).toBeLessThan(1e-5);
    expect(worst).toBeGreaterThan(0); // a different computation (the kernels really changed), equal up to rounding
  });

  test('with f16 precision: the same top-1 for every image, every probability within 5e-3 of f32', () => {
    let worst = 0;
    for (let i = 0; i < probabilities.length; i++) worst = Math.max(worst, Math.abs(half[i]! - probabilities[i]!));
    const top1 = (p: Float32Array, b: number) => decodePredictions(p.subarray(b * 1000, (b + 1) * 1000), 1000, pretrained.labels, 1)[0]![0]!.index;
    const agree = IMAGENET_INPUTS.filter((_, b) => top1(half, b) === top1(probabilities, b)).length;
    console.log(`ResNet50 in f16 vs f32: top-1 agreement ${agree}/${IMAGENET_INPUTS.length}, max |Δp| ${worst.toExponential(2)}`);
    expect(agree).toBe(IMAGENET_INPUTS.length);
    expect(worst).toBeLessThan(5e-3);
    expect(worst).toBeGreaterThan(1e-6); // it really ran in f16
  });

  for (const [b, { name, label, index }] of IMAGENET_INPUTS.entries()) test(`${name}: top-1 is "${label}" (${index}), top-5 probabilities within 1e-3 of the golden`, () => {
    const row = probabilities.subarray(b * 1000, (b + 1) * 1000);
    const top5 = decodePredictions(row, 1000, pretrained.labels, 5)[0]!;
    const expected = golden.images[b]!.top5;
    expect(top5[0]).toMatchObject({ index, label });
    expect(expected[0]!.index).toBe(index);
    const errors = expected.map((g) => Math.abs(row[g.index]! - g.probability));
    console.log(`${name}: Graft ${top5.map((p) => `${p.label} ${p.probability.toFixed(4)}`).join(', ')}; max |Δp| over the golden top-5 ${Math.max(...errors).toExponential(2)}`);
    for (const [k, g] of expected.entries()) expect(errors[k], `${name}: ${g.label} (${g.index})`).toBeLessThanOrEqual(TOLERANCE);
    // The same five classes, in the same order wherever the golden's probabilities are not within the tolerance of each other.
    expect(new Set(top5.map((p) => p.index))).toEqual(new Set(expected.map((g) => g.index)));
    for (let k = 1; k < 5; k++) {
      if (expected[k - 1]!.probability - expected[k]!.probability > 2 * TOLERANCE) expect(top5[k - 1]!.index, `${name}: rank ${k}`).toBe(expected[k - 1]!.index);
    }
  });
});
