/**
 * torchvision ResNet50 state dicts → Graft's Keras names (src/weights/torchvision.ts).
 *
 * The state dict is built here from the formula weights of Graft's own resnet50 v1.5 (formula-weights.ts, Keras
 * layout), inverted to torchvision's names and layouts by index formulas written independently of the converter,
 * with the conv biases set to zero first (torchvision has none; the formula's are not zero). Checked:
 *   - the round trip back to the Keras tensors is bit-exact, every name, shape and element;
 *   - `graft weights convert` recognises the file, and loadPretrained on its output builds v1.5 with epsilon 1e-5
 *     and 'torch' preprocessing and computes the same features as the Keras-layout weights loaded directly;
 *   - the layouts mean what PyTorch means: the stem conv + BN and the classifier, run by Graft on converted weights,
 *     agree with a float64 reference that reads the torchvision tensors the way torch.nn.functional does;
 *   - a missing, an unexpected and a wrongly shaped tensor are all named in one error.
 * The full model runs without the top at 64×64 (every conv and BN is still exercised); the classifier separately.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { tensor } from '../../src/tensor/create.js';
import { tidy } from '../../src/tensor/scope.js';
import { noGrad } from '../../src/autograd/tape.js';
import { GraftFormatError } from '../../src/errors.js';
import { Model, input } from '../../src/nn/model.js';
import { Dense } from '../../src/nn/layers/core.js';
import { Conv2D } from '../../src/nn/layers/convolutional.js';
import { BatchNormalization } from '../../src/nn/layers/normalization.js';
import { resnet50 } from '../../src/models/resnet50.js';
import { loadPretrained } from '../../src/models/pretrained.js';
import { loadWeights } from '../../src/weights/load.js';
import { convertWeightsFile } from '../../src/weights/convert.js';
import { readSafetensorsFile, writeSafetensorsFile } from '../../src/weights/files.js';
import type { SafetensorsTensor } from '../../src/weights/safetensors.js';
import { looksLikeTorchvisionResnet, oihwToHwio, resnet50FromTorchvision, transpose2d } from '../../src/weights/torchvision.js';
import { formulaInput, formulaValues, formulaWeights } from '../models/formula-weights.js';

useGpu();

const dir = mkdtempSync(join(tmpdir(), 'graft-torchvision-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type F32 = Extract<SafetensorsTensor, { dtype: 'F32' }>;
const f32 = (shape: number[], data: Float32Array): F32 => ({ dtype: 'F32', shape, data });

/** torchvision's name for a Keras weight name (the inverse of the mapping, written from the other side). */
function torchName(keras: string): string | undefined {
  const [layer, weight] = keras.split('/') as [string, string];
  if (weight === 'bias' && layer.endsWith('_conv')) return undefined; // torchvision convs have no bias
  const bn: Record<string, string> = { gamma: 'weight', beta: 'bias', moving_mean: 'running_mean', moving_variance: 'running_var' };
  if (layer === 'predictions') return `fc.${weight === 'kernel' ? 'weight' : 'bias'}`;
  if (layer === 'conv1_conv') return 'conv1.weight';
  if (layer === 'conv1_bn') return `bn1.${bn[weight]}`;
  const m = /^conv(\d)_block(\d+)_(\d)_(conv|bn)$/.exec(layer)!;
  const [stage, block, index, kind] = [Number(m[1]), Number(m[2]), Number(m[3]), m[4]];
  const module = index === 0 ? `downsample.${kind === 'conv' ? 0 : 1}` : `${kind}${index}`;
  return `layer${stage - 1}.${block - 1}.${module}.${kind === 'conv' ? 'weight' : bn[weight]}`;
}

/** A Keras HWIO kernel as torchvision's OIHW, looping over the OIHW destination. */
function hwioToOihw(t: F32): F32 {
  const [h, w, i, o] = t.shape as [number, number, number, number];
  const out = new Float32Array(t.data.length);
  for (let co = 0; co < o; co++)
    for (let ci = 0; ci < i; ci++)
      for (let kh = 0; kh < h; kh++)
        for (let kw = 0; kw < w; kw++) out[((co * i + ci) * h + kh) * w + kw] = t.data[((kh * w + kw) * i + ci) * o + co]!;
  return f32([o, i, h, w], out);
}

/** A torchvision state dict from Keras-layout weights (whose conv biases must be zero); adds num_batches_tracked. */
function toTorchvision(keras: ReadonlyMap<string, SafetensorsTensor>): Map<string, SafetensorsTensor> {
  const out = new Map<string, SafetensorsTensor>();
  for (const [key, t] of keras) {
    const name = torchName(key);
    if (name === undefined) {
      expect((t.data as Float32Array).every((v) => v === 0), `${key} is zero`).toBe(true);
      continue;
    }
    const k = t as F32;
    if (key === 'predictions/kernel') {
      const [inputs, classes] = k.shape as [number, number];
      const data = new Float32Array(k.data.length);
      for (let c = 0; c < classes; c++) for (let f = 0; f < inputs; f++) data[c * inputs + f] = k.data[f * classes + c]!;
      out.set(name, f32([classes, inputs], data));
    } else out.set(name, key.endsWith('/kernel') ? hwioToOihw(k) : k);
    if (name.endsWith('.running_var')) out.set(name.replace('running_var', 'num_batches_tracked'), { dtype: 'I64', shape: [], data: new BigInt64Array([7n]) });
  }
  return out;
}

const bytesOf = (t: SafetensorsTensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);

let keras: Map<string, SafetensorsTensor>;
let torch: Map<string, SafetensorsTensor>;

beforeAll(() => {
  const model = resnet50({ variant: 'v1.5', epsilon: 1e-5 });
  try {
    keras = formulaWeights(model);
  } finally {
    model.dispose();
  }
  for (const [key, t] of keras) if (key.endsWith('_conv/bias')) (t.data as Float32Array).fill(0);
  torch = toTorchvision(keras);
});

describe('torchvision ResNet50 → Keras names', () => {
  test('the state dict has torchvision’s 267 weights plus 53 counters, and is recognised', () => {
    expect(keras.size).toBe(320);
    expect(torch.size).toBe(267 + 53);
    expect(looksLikeTorchvisionResnet(torch.keys())).toBe(true);
    expect(looksLikeTorchvisionResnet(keras.keys())).toBe(false);
    expect(looksLikeTorchvisionResnet(['conv1.weight', 'fc.weight'])).toBe(false);
  });

  test('round trip: the converted tensors are the Keras tensors, bit for bit', () => {
    const { tensors } = resnet50FromTorchvision(torch, 'tv.safetensors');
    expect([...tensors.keys()].sort()).toEqual([...keras.keys()].sort());
    for (const [key, want] of keras) {
      const got = tensors.get(key)!;
      expect(got.dtype, key).toBe('F32');
      expect(got.shape, key).toEqual(want.shape);
      expect(bytesOf(got).equals(bytesOf(want)), `${key} bit-exact`).toBe(true);
    }
  });

  test('layout transposes are the index maps they claim, for F32 and F16 bits alike', () => {
    const dims = fc.integer({ min: 1, max: 5 });
    fc.assert(
      fc.property(dims, dims, dims, dims, fc.boolean(), (o, i, h, w, half) => {
        const n = o * i * h * w;
        const values = Array.from({ length: n }, (_, k) => k + 1);
        const t: SafetensorsTensor & { dtype: 'F32' | 'F16' } = half ? { dtype: 'F16', shape: [o, i, h, w], data: Uint16Array.from(values) } : f32([o, i, h, w], Float32Array.from(values));
        const r = oihwToHwio(t);
        expect(r.dtype).toBe(t.dtype);
        expect(r.shape).toEqual([h, w, i, o]);
        for (let k = 0; k < n; k++) {
          const [co, ci, kh, kw] = [Math.floor(k / (i * h * w)), Math.floor(k / (h * w)) % i, Math.floor(k / w) % h, k % w];
          expect(r.data[((kh * w + kw) * i + ci) * o + co]).toBe(values[k]);
        }
        const m = transpose2d(f32([o, i * h], Float32Array.from(values.slice(0, o * i * h))));
        expect(m.shape).toEqual([i * h, o]);
        for (let a = 0; a < o; a++) for (let b = 0; b < i * h; b++) expect(m.data[b * o + a]).toBe(values[a * i * h + b]);
      }),
      { numRuns: 20 },
    );
  });

  test('metadata; another class count; F16 kept', () => {
    const { metadata } = resnet50FromTorchvision(torch, 'tv');
    expect(metadata).toMatchObject({ architecture: 'resnet50-v1.5', batchnorm_epsilon: '1e-05', preprocessing: 'torch', input_shape: '[224,224,3]', num_classes: '1000' });
    expect(Number(metadata.batchnorm_epsilon)).toBe(1e-5);

    const ten = new Map(torch);
    ten.set('fc.weight', f32([10, 2048], formulaValues(5, 20480)));
    ten.set('fc.bias', f32([10], formulaValues(6, 10)));
    const half = { dtype: 'F16' as const, shape: [64, 3, 7, 7], data: Uint16Array.from({ length: 64 * 147 }, (_, k) => k) };
    ten.set('conv1.weight', half);
    const out = resnet50FromTorchvision(ten, 'tv10');
    expect(out.metadata.num_classes).toBe('10');
    expect(out.tensors.get('predictions/kernel')!.shape).toEqual([2048, 10]);
    expect(out.tensors.get('conv1_conv/kernel')!.dtype).toBe('F16');
    expect(out.tensors.get('conv1_conv/bias')).toMatchObject({ dtype: 'F16', shape: [64] });
  });

  test('a missing, an unexpected and a wrongly shaped tensor are all named, in one error', () => {
    const bad = new Map(torch);
    bad.delete('layer2.1.bn2.running_var');
    bad.set('layer4.3.conv1.weight', f32([512, 2048, 1, 1], new Float32Array(512 * 2048)));
    bad.set('layer1.0.num_batches_tracked', { dtype: 'I64', shape: [], data: new BigInt64Array(1) });
    bad.set('layer3.0.downsample.0.weight', f32([1024, 512, 3, 3], new Float32Array(1024 * 512 * 9)));
    bad.set('bn1.bias', { dtype: 'I32', shape: [64], data: new Int32Array(64) });
    let message = '';
    try {
      resnet50FromTorchvision(bad, 'bad.safetensors');
    } catch (e) {
      expect(e).toBeInstanceOf(GraftFormatError);
      message = (e as Error).message;
    }
    expect(message).toMatch(/^bad\.safetensors: not a torchvision ResNet50 state dict; 5 problems/);
    expect(message).toContain('missing: layer2.1.bn2.running_var [128]');
    expect(message).toContain('unexpected: layer4.3.conv1.weight [512, 2048, 1, 1]');
    expect(message).toContain('unexpected: layer1.0.num_batches_tracked []');
    expect(message).toContain('layer3.0.downsample.0.weight: shape [1024, 512, 3, 3], expected [1024, 512, 1, 1]');
    expect(message).toContain('bn1.bias: dtype I32, expected F32, F16 or BF16');

    const resnet18ish = new Map([...torch].filter(([name]) => !/\.(conv3|bn3)\./.test(name)));
    expect(() => resnet50FromTorchvision(resnet18ish, 'r18')).toThrow(/r18: not a torchvision ResNet50 state dict \(it has no layer1\.0\.conv3: a ResNet18 or ResNet34.*; 80 problems/);
  });
});

describe('graft weights convert on a torchvision safetensors file', () => {
  test('recognised, converted, and loadPretrained computes what the Keras-layout weights compute', async () => {
    const tv = join(dir, 'resnet50-torchvision.safetensors');
    writeSafetensorsFile(tv, torch, { format: 'pt' });
    const out = join(dir, 'resnet50-graft.safetensors');
    const lines: string[] = [];
    convertWeightsFile(tv, out, (l) => lines.push(l));
    expect(lines.join('\n')).toMatch(/recognised a torchvision ResNet state dict/);
    const file = readSafetensorsFile(out);
    expect(file.tensors.size).toBe(320);
    expect(file.metadata).toMatchObject({ architecture: 'resnet50-v1.5', preprocessing: 'torch', source_file: 'resnet50-torchvision.safetensors' });
    expect(file.metadata.source_sha256).toMatch(/^[0-9a-f]{64}$/);

    const shape: [number, number, number] = [64, 64, 3];
    const pretrained = loadPretrained(out, { includeTop: false, inputShape: shape, pooling: 'avg' });
    const direct = resnet50({ variant: 'v1.5', epsilon: 1e-5, includeTop: false, inputShape: shape, pooling: 'avg' });
    try {
      expect(pretrained.architecture).toBe('resnet50-v1.5');
      expect(pretrained.preprocessing).toBe('torch');
      const bns = pretrained.model.layers.filter((l): l is BatchNormalization => l instanceof BatchNormalization);
      expect(bns.length).toBe(53);
      for (const bn of bns) expect(bn.epsilon, bn.name).toBe(1e-5);
      // v1.5: the stride is on the 3×3 of a downsampling block, not on its first 1×1.
      expect((pretrained.model.getLayer('conv3_block1_2_conv') as Conv2D).strides).toEqual([2, 2]);
      expect((pretrained.model.getLayer('conv3_block1_1_conv') as Conv2D).strides).toEqual([1, 1]);
      loadWeights(direct, keras, 'keras formula weights', { allowUnused: true });

      const x = formulaInput(2, 64, 64);
      const run = (m: Model) => noGrad(() => tidy(() => m.call(tensor(x, [2, 64, 64, 3]))));
      const [a, b] = [run(pretrained.model), run(direct)];
      const [got, want] = [await a.floats(), await b.floats()];
      a.dispose();
      b.dispose();
      expect(got.length).toBe(2 * 2048);
      const scale = Math.max(...want.map(Math.abs));
      expect(scale).toBeGreaterThan(0);
      let maxError = 0;
      for (let i = 0; i < want.length; i++) maxError = Math.max(maxError, Math.abs(got[i]! - want[i]!));
      expect(maxError / scale).toBeLessThanOrEqual(1e-5);
    } finally {
      pretrained.model.dispose();
      direct.dispose();
    }
  }, 120_000);

  test('a near miss is refused through the CLI; other safetensors pass through unchanged', () => {
    const bad = new Map(torch);
    bad.delete('fc.bias');
    const badPath = join(dir, 'bad.safetensors');
    writeSafetensorsFile(badPath, bad);
    expect(() => convertWeightsFile(badPath, join(dir, 'bad-out.safetensors'), () => {})).toThrow(/bad\.safetensors: not a torchvision ResNet50 state dict; 1 problems:\n {2}- missing: fc\.bias \[1000\]/);

    const other = join(dir, 'other.safetensors');
    writeSafetensorsFile(other, { 'conv1.weight': f32([2], new Float32Array([1, 2])) }, { note: 'kept' });
    const lines: string[] = [];
    convertWeightsFile(other, join(dir, 'other-out.safetensors'), (l) => lines.push(l));
    expect(lines.join('\n')).not.toMatch(/recognised/);
    const copy = readSafetensorsFile(join(dir, 'other-out.safetensors'));
    expect([...copy.tensors.keys()]).toEqual(['conv1.weight']);
    expect(copy.metadata).toEqual({ note: 'kept' });
  });
});

describe('the layouts mean what PyTorch means (float64 reference on the torchvision tensors)', () => {
  const floats = (name: string) => (torch.get(name) as F32).data;
  const converted = () => resnet50FromTorchvision(torch, 'tv').tensors;
  const pick = (all: Map<string, SafetensorsTensor>, prefix: string) => new Map([...all].filter(([k]) => k.startsWith(prefix)));

  test('stem: conv1 (7×7, stride 2, padding 3) then bn1, on a 17×19 image', async () => {
    const [n, h, w] = [2, 17, 19];
    const x = formulaValues(11, n * h * w * 3);
    const inp = input([h, w, 3]);
    let y = new Conv2D({ filters: 64, kernelSize: 7, strides: 2, padding: [[3, 3], [3, 3]], name: 'conv1_conv' }).apply(inp);
    y = new BatchNormalization({ epsilon: 1e-5, name: 'conv1_bn' }).apply(y);
    const model = new Model({ inputs: inp, outputs: y, name: 'stem' });
    try {
      const all = converted();
      loadWeights(model, new Map([...pick(all, 'conv1_conv/'), ...pick(all, 'conv1_bn/')]), 'stem');
      const out = noGrad(() => tidy(() => model.call(tensor(x, [n, h, w, 3]))));
      const got = await out.floats();
      out.dispose();
      // torch.nn.functional.conv2d (weight [out, in, kh, kw]) then batch_norm in eval mode; NHWC here.
      const [weight, mean, variance, gamma, beta] = ['conv1.weight', 'bn1.running_mean', 'bn1.running_var', 'bn1.weight', 'bn1.bias'].map(floats) as Float32Array[];
      const [oh, ow] = [Math.floor((h + 6 - 7) / 2) + 1, Math.floor((w + 6 - 7) / 2) + 1];
      expect(got.length).toBe(n * oh * ow * 64);
      let maxError = 0;
      let scale = 0;
      for (let b = 0; b < n; b++)
        for (let oy = 0; oy < oh; oy++)
          for (let ox = 0; ox < ow; ox++)
            for (let co = 0; co < 64; co++) {
              let s = 0;
              for (let ci = 0; ci < 3; ci++)
                for (let kh = 0; kh < 7; kh++)
                  for (let kw = 0; kw < 7; kw++) {
                    const [iy, ix] = [2 * oy + kh - 3, 2 * ox + kw - 3];
                    if (iy >= 0 && iy < h && ix >= 0 && ix < w) s += x[((b * h + iy) * w + ix) * 3 + ci]! * weight![((co * 3 + ci) * 7 + kh) * 7 + kw]!;
                  }
              const ref = ((s - mean![co]!) / Math.sqrt(variance![co]! + 1e-5)) * gamma![co]! + beta![co]!;
              maxError = Math.max(maxError, Math.abs(got[((b * oh + oy) * ow + ox) * 64 + co]! - ref));
              scale = Math.max(scale, Math.abs(ref));
            }
      expect(scale).toBeGreaterThan(0);
      expect(maxError / scale).toBeLessThanOrEqual(1e-5);
    } finally {
      model.dispose();
    }
  });

  test('classifier: fc (y = W·x + b, W [1000, 2048]) as a Dense layer', async () => {
    const x = formulaValues(12, 2 * 2048);
    const inp = input([2048]);
    const model = new Model({ inputs: inp, outputs: new Dense({ units: 1000, name: 'predictions' }).apply(inp), name: 'head' });
    try {
      loadWeights(model, pick(converted(), 'predictions/'), 'head');
      const out = noGrad(() => tidy(() => model.call(tensor(x, [2, 2048]))));
      const got = await out.floats();
      out.dispose();
      const [weight, bias] = [floats('fc.weight'), floats('fc.bias')];
      let maxError = 0;
      let scale = 0;
      for (let b = 0; b < 2; b++)
        for (let c = 0; c < 1000; c++) {
          let s = bias[c]!;
          for (let f = 0; f < 2048; f++) s += weight[c * 2048 + f]! * x[b * 2048 + f]!;
          maxError = Math.max(maxError, Math.abs(got[b * 1000 + c]! - s));
          scale = Math.max(scale, Math.abs(s));
        }
      expect(scale).toBeGreaterThan(0);
      expect(maxError / scale).toBeLessThanOrEqual(1e-5);
    } finally {
      model.dispose();
    }
  });
});
