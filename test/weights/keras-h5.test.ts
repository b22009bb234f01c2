/**
 * Keras .h5 weight files: the small files in fixtures/keras-h5 are written by test/golden/make_h5_fixtures.py
 * with h5py, in the layouts Keras writes (weights at the root, or under /model_weights), with a float64 and a
 * chunked + gzip dataset. Values follow a formula written in both places, so every element is checked exactly.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, test, vi } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { main } from '../../src/cli/main.js';
import { ArgumentError, GraftFormatError } from '../../src/errors.js';
import { vgg16 } from '../../src/models/vgg16.js';
import { convertWeightsFile } from '../../src/weights/convert.js';
import { readSafetensorsFile } from '../../src/weights/files.js';
import { architectureMismatch, convertKerasWeights, readKerasH5, recognizeKerasArchitecture } from '../../src/weights/keras-h5.js';
import { loadWeights } from '../../src/weights/load.js';
import { resnet50KerasWeightNames } from '../../src/weights/resnet50-names.js';
import { legacyResnet50Names } from './fixtures.js';

useGpu();

const FIXTURES = join(import.meta.dirname, 'fixtures', 'keras-h5');
const fixture = (name: string) => join(FIXTURES, name);
const bytesOf = (name: string) => new Uint8Array(readFileSync(fixture(name)));
const dir = mkdtempSync(join(tmpdir(), 'graft-keras-h5-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const quiet = () => {};

/** The generator's formula (make_h5_fixtures.py): element i of weight number `seed`, exact in float32. */
function formula(seed: number, shape: number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, (_, i) => ((((i * 37 + seed * 101) % 1000) - 500) / 128));
}
/** The float64 dataset: (i + 1) / 3, rounded to float32. */
const thirds = (n: number) => Float32Array.from({ length: n }, (_, i) => (i + 1) / 3);

const bits = (a: Float32Array) => [...new Uint32Array(a.buffer, a.byteOffset, a.length)];

describe('reading Keras .h5 weight files', () => {
  test.each(['keras2-two-convs.h5', 'keras2-latest-format.h5'])('Keras 2 layout (%s): names from layer_names/weight_names, ":0" dropped, file order, values exact', (name) => {
    const { tensors, layers, metadata } = readKerasH5(bytesOf(name), name);
    expect(layers).toEqual(['block1_conv1', 'block1_conv2', 'block1_pool']);
    expect([...tensors.keys()]).toEqual(['block1_conv1/kernel', 'block1_conv1/bias', 'block1_conv2/kernel', 'block1_conv2/bias']);
    const expected: Array<[string, number, number[]]> = [
      ['block1_conv1/kernel', 0, [3, 3, 3, 4]],
      ['block1_conv1/bias', 1, [4]],
      ['block1_conv2/kernel', 2, [3, 3, 4, 4]],
      ['block1_conv2/bias', 3, [4]],
    ];
    for (const [name, seed, shape] of expected) {
      const t = tensors.get(name)!;
      expect(t.dtype).toBe('F32');
      expect(t.shape).toEqual(shape);
      expect(bits(t.data)).toEqual(bits(formula(seed, shape)));
    }
    expect(metadata).toEqual({ keras_h5_layout: 'weights', keras_version: '2.2.4', backend: 'tensorflow' });
  });

  test('full-model layout (/model_weights), with a chunked, gzip-compressed dataset', () => {
    const { tensors, metadata } = readKerasH5(bytesOf('full-model-gzip.h5'), 'full-model-gzip.h5');
    expect(metadata.keras_h5_layout).toBe('model_weights');
    expect([...tensors.keys()]).toEqual(['conv/kernel', 'conv/bias', 'dense/kernel', 'dense/bias']);
    expect(tensors.get('conv/kernel')!.shape).toEqual([3, 3, 8, 16]); // the chunked + gzip one
    expect(bits(tensors.get('conv/kernel')!.data)).toEqual(bits(formula(0, [3, 3, 8, 16])));
    expect(bits(tensors.get('conv/bias')!.data)).toEqual(bits(formula(1, [16])));
    expect(bits(tensors.get('dense/kernel')!.data)).toEqual(bits(formula(2, [16, 5])));
    expect(bits(tensors.get('dense/bias')!.data)).toEqual(bits(formula(3, [5])));
  });

  test('float64 is rounded to float32 (round to nearest even, as numpy does)', () => {
    const { tensors } = readKerasH5(bytesOf('float64.h5'), 'float64.h5');
    const kernel = tensors.get('dense/kernel')!;
    expect(kernel).toMatchObject({ dtype: 'F32', shape: [4, 3] });
    expect(bits(kernel.data)).toEqual(bits(thirds(12)));
    expect(kernel.data[0]).not.toBe(1 / 3); // it really was rounded
    expect(bits(tensors.get('dense/bias')!.data)).toEqual(bits(formula(1, [3])));
  });

  test('a byte view into a larger buffer, or a Node Buffer, reads the same', () => {
    for (const name of ['keras2-two-convs.h5', 'float64.h5', 'full-model-gzip.h5']) {
      const file = bytesOf(name);
      const padded = new Uint8Array(file.length + 24);
      padded.set(file, 16);
      const a = readKerasH5(file, 'f').tensors;
      for (const view of [padded.subarray(16, 16 + file.length), readFileSync(fixture(name)), Buffer.from(padded).subarray(16, 16 + file.length)]) {
        const b = readKerasH5(view, 'f').tensors;
        expect([...b.keys()]).toEqual([...a.keys()]);
        for (const [k, t] of a) expect(bits(b.get(k)!.data)).toEqual(bits(t.data));
      }
    }
  });
});

describe('malformed files are GraftFormatErrors naming the file and the problem', () => {
  test('other element types, a missing weight_names, a missing dataset', () => {
    expect(() => readKerasH5(bytesOf('int32.h5'), 'int32.h5')).toThrow(/^int32\.h5: dataset 'dense\/dense\/kernel:0' has the element type "<i4"; Graft reads float32 and float64 weights\.$/);
    expect(() => readKerasH5(bytesOf('no-weight-names.h5'), 'no-weight-names.h5')).toThrow(/^no-weight-names\.h5: layer 'dense' has no attribute weight_names\.$/);
    expect(() => readKerasH5(bytesOf('missing-dataset.h5'), 'missing-dataset.h5')).toThrow(/^missing-dataset\.h5: dataset 'dense\/dense\/bias:0' is listed in weight_names but cannot be opened/);
    for (const name of ['int32.h5', 'no-weight-names.h5', 'missing-dataset.h5']) expect(() => readKerasH5(bytesOf(name), name)).toThrow(GraftFormatError);
  });

  test('not HDF5 at all, and every truncation of a file', () => {
    expect(() => readKerasH5(new Uint8Array(0), 'empty.h5')).toThrow(/^empty\.h5: cannot read it as an HDF5 file/);
    expect(() => readKerasH5(new TextEncoder().encode('{"not": "hdf5"}'), 'x.h5')).toThrow(GraftFormatError);
    // Superblock version 0 (what Keras writes) and version 3 (h5py's libver='latest').
    for (const [name, version] of [['full-model-gzip.h5', 0], ['keras2-latest-format.h5', 3]] as const) {
      const file = bytesOf(name);
      expect(file[8]).toBe(version);
      expect(() => readKerasH5(file.subarray(0, file.length - 1), 'cut.h5')).toThrow(
        new RegExp(`^cut\\.h5: the file is truncated: its superblock says it is ${file.length} bytes long, but it has ${file.length - 1}\\.$`),
      );
      for (let length = 0; length < file.length; length += 97) {
        expect(() => readKerasH5(file.subarray(0, length), 'cut.h5'), `${name} truncated to ${length} bytes`).toThrow(GraftFormatError);
      }
    }
  });

  test('flipped bytes: never a crash or a hang, only a GraftFormatError or a successful read', () => {
    for (const name of ['keras2-two-convs.h5', 'full-model-gzip.h5', 'keras2-latest-format.h5']) {
      const file = bytesOf(name);
      fc.assert(
        fc.property(fc.array(fc.tuple(fc.nat(file.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 8 }), (flips) => {
          const corrupt = file.slice();
          for (const [at, mask] of flips) corrupt[at]! ^= mask;
          const started = performance.now();
          try {
            const { tensors } = readKerasH5(corrupt, name);
            for (const t of tensors.values()) expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
          } catch (e) {
            if (!(e instanceof GraftFormatError)) throw e;
            expect(e.message.startsWith(`${name}: `)).toBe(true);
          }
          expect(performance.now() - started).toBeLessThan(5000);
        }),
        { numRuns: 25, seed: 7 },
      );
    }
  });
});

describe('graft weights convert IN.h5', () => {
  test('round trip through safetensors is bit-exact; file facts recorded; no architecture for unknown names', () => {
    for (const name of ['keras2-two-convs.h5', 'keras2-latest-format.h5', 'full-model-gzip.h5', 'float64.h5']) {
      const out = join(dir, `${name}.safetensors`);
      const lines: string[] = [];
      convertWeightsFile(fixture(name), out, (l) => lines.push(l));
      expect(lines.at(-1)).toMatch(/^wrote \d+ tensors/);
      const read = readKerasH5(bytesOf(name), name);
      const { tensors, metadata } = readSafetensorsFile(out);
      expect(new Set(tensors.keys())).toEqual(new Set(read.tensors.keys()));
      for (const [k, t] of read.tensors) {
        const back = tensors.get(k)!;
        expect(back.dtype).toBe('F32');
        expect(back.shape).toEqual(t.shape);
        expect(bits(back.data as Float32Array)).toEqual(bits(t.data));
      }
      expect(metadata).toMatchObject({ ...read.metadata, source_file: name });
      expect(metadata.architecture).toBeUndefined();
      expect(metadata.source_sha256).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  test('VGG16 layer names are recognised (vgg16, caffe, no labels); loadWeights names every shape mismatch', () => {
    const out = join(dir, 'vgg16-tiny.safetensors');
    const lines: string[] = [];
    convertWeightsFile(fixture('vgg16-names-tiny.h5'), out, (l) => lines.push(l));
    expect(lines).toContain('recognised vgg16 (include_top false)');
    const { tensors, metadata } = readSafetensorsFile(out);
    expect(metadata).toMatchObject({ architecture: 'vgg16', preprocessing: 'caffe', include_top: 'false', mean_bgr: '[103.939,116.779,123.68]' });
    expect(metadata.labels).toBeUndefined();
    expect(tensors.size).toBe(26);

    const model = vgg16({ includeTop: false, inputShape: [32, 32, 3] });
    try {
      let message = '';
      try {
        loadWeights(model, tensors, out);
      } catch (e) {
        expect(e).toBeInstanceOf(GraftFormatError);
        message = (e as Error).message;
      }
      const mismatches = message.split('\n').filter((l) => l.includes(' in the file, '));
      expect(mismatches.length).toBe(26);
      for (const w of model.weights) {
        const shape = tensors.get(w.key)!.shape;
        expect(message).toContain(`${w.key}: shape [${shape.join(', ')}] in the file, [${w.value.shape.join(', ')}] in the model`);
      }
      expect(message).not.toMatch(/missing from the file|not weights of/);
    } finally {
      model.dispose();
    }
  });

  test('--architecture must match the weight names, and applies to .h5 files only', async () => {
    expect(() => convertWeightsFile(fixture('keras2-two-convs.h5'), join(dir, 'a.safetensors'), quiet, { architecture: 'vgg16' })).toThrow(
      /keras2-two-convs\.h5: expected the weights of vgg16, but the file lacks weights of vgg16: block2_conv1\/kernel/,
    );
    expect(() => convertWeightsFile(fixture('vgg16-names-tiny.h5'), join(dir, 'a.safetensors'), quiet, { architecture: 'resnet50-v1' })).toThrow(GraftFormatError);
    expect(() => convertWeightsFile(fixture('vgg16-names-tiny.h5'), join(dir, 'a.safetensors'), quiet, { architecture: 'vgg19' })).toThrow(ArgumentError);
    const safetensors = join(dir, 'keras2-two-convs.h5.safetensors');
    convertWeightsFile(fixture('keras2-two-convs.h5'), safetensors, quiet);
    expect(() => convertWeightsFile(safetensors, join(dir, 'b.safetensors'), quiet, { architecture: 'vgg16' })).toThrow(/--architecture applies to Keras \.h5 files only/);

    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const out = join(dir, 'cli.safetensors');
      expect(await main(['weights', 'convert', fixture('vgg16-names-tiny.h5'), '--out', out, '--architecture', 'vgg16'])).toBe(0);
      expect(readSafetensorsFile(out).metadata.architecture).toBe('vgg16');
      expect(await main(['weights', 'inspect', out, '--architecture', 'vgg16'])).toBe(1);
      expect(error.mock.calls.flat().join('\n')).toMatch(/--architecture applies to convert only/);
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
  });
});

describe('recognising the Keras applications models by their weight names', () => {
  const vggBase = [2, 2, 3, 3, 3].flatMap((n, b) => Array.from({ length: n }, (_, i) => [`block${b + 1}_conv${i + 1}/kernel`, `block${b + 1}_conv${i + 1}/bias`]).flat());
  const vggTop = ['fc1', 'fc2', 'predictions'].flatMap((l) => [`${l}/kernel`, `${l}/bias`]);

  test('VGG16 with or without its classifier; not with part of it, a layer missing or an extra one', () => {
    expect(recognizeKerasArchitecture(vggBase)).toBe('vgg16');
    expect(recognizeKerasArchitecture([...vggBase, ...vggTop])).toBe('vgg16');
    expect(recognizeKerasArchitecture([...vggBase, 'fc1/kernel', 'fc1/bias'])).toBeUndefined();
    expect(architectureMismatch('vgg16', [...vggBase, 'fc1/kernel'])).toMatch(/only part of the classifier of vgg16; it lacks fc1\/bias/);
    expect(recognizeKerasArchitecture(vggBase.slice(2))).toBeUndefined();
    expect(architectureMismatch('vgg16', [...vggBase, 'block6_conv1/kernel'])).toMatch(/has weights that vgg16 does not: block6_conv1\/kernel/);
  });

  test('ResNet50: Keras applications names, with or without predictions', () => {
    const names = resnet50KerasWeightNames();
    expect(recognizeKerasArchitecture(names)).toBe('resnet50-v1');
    expect(recognizeKerasArchitecture(names.filter((n) => !n.startsWith('predictions/')))).toBe('resnet50-v1');
    expect(recognizeKerasArchitecture(names.slice(1))).toBeUndefined();
    expect(recognizeKerasArchitecture(vggBase)).not.toBe('resnet50-v1');
  });

  test('a ResNet50 conversion: legacy names renamed (epsilon 1e-3), modern names kept (epsilon 1.001e-5)', () => {
    const weights = (names: string[]) => ({
      tensors: new Map(names.map((n, i) => [n, { dtype: 'F32' as const, shape: [1], data: new Float32Array([i]) }])),
      layers: [],
      metadata: { keras_h5_layout: 'weights' },
    });
    const modern = convertKerasWeights(weights(resnet50KerasWeightNames()), 'r.h5');
    expect(modern.metadata).toMatchObject({ architecture: 'resnet50-v1', batchnorm_epsilon: String(1.001e-5), preprocessing: 'caffe', include_top: 'true' });
    expect(Number(modern.metadata.batchnorm_epsilon)).toBe(1.001e-5);
    expect(modern.metadata.labels).toBeUndefined();

    const legacy = legacyResnet50Names();
    const renamed = convertKerasWeights(weights(legacy), 'old.h5');
    expect(renamed.metadata).toMatchObject({ architecture: 'resnet50-v1', batchnorm_epsilon: '0.001' });
    expect(new Set(renamed.tensors.keys())).toEqual(new Set(resnet50KerasWeightNames()));
    // Each tensor travels with its name: the legacy name i holds the value i.
    const i = legacy.indexOf('res2a_branch2a/kernel');
    expect(renamed.tensors.get('conv2_block1_1_conv/kernel')!.data).toEqual(new Float32Array([i]));
    // Named as vgg16, the legacy names are not renamed, and do not match.
    expect(() => convertKerasWeights(weights(legacy), 'old.h5', 'vgg16')).toThrow(/old\.h5: expected the weights of vgg16, but the file lacks weights of vgg16/);
  });
});
