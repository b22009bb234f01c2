import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, test, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { ArgumentError, GraftError, GraftFormatError } from '../../src/errors.js';
import { convertWeightsFile, detectWeightsFormat, sha256Hex } from '../../src/weights/convert.js';
import { readSafetensorsFile } from '../../src/weights/files.js';
import { tarOf, tinyTfjsModel } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'graft-convert-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const quiet = () => {};

/** The tiny TF.js model written to a folder; returns the path of its model.json. */
function writeTinyModel(folder: string): string {
  const { modelJson, shards } = tinyTfjsModel();
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'model.json'), JSON.stringify(modelJson));
  for (const [name, bytes] of Object.entries(shards)) writeFileSync(join(folder, name), bytes);
  return join(folder, 'model.json');
}

describe('detecting the input format', () => {
  const bytes = (...b: number[]) => new Uint8Array(b);
  test('by magic bytes first, then by name', () => {
    expect(detectWeightsFormat('w.h5', bytes(0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a))).toBe('keras');
    expect(detectWeightsFormat('renamed.safetensors', bytes(0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a))).toBe('keras');
    expect(detectWeightsFormat('model.keras', bytes(0x50, 0x4b, 3, 4))).toBe('keras');
    expect(detectWeightsFormat('resnet.pth', bytes(0x80, 0x02, 0x8a, 0x0a))).toBe('pytorch-pickle');
    expect(detectWeightsFormat('pytorch_model.bin', bytes(0x80, 0x04, 0x95))).toBe('pytorch-pickle');
    expect(detectWeightsFormat('model.pt', bytes(0x50, 0x4b, 3, 4))).toBe('pytorch-pickle'); // torch.save's zip holds a pickle
    expect(detectWeightsFormat('anything', bytes(0x80, 0x05))).toBe('pytorch-pickle');
    expect(detectWeightsFormat('pkg.tgz', bytes(0x1f, 0x8b, 8))).toBe('tarball');
    expect(detectWeightsFormat('model.json', bytes(0x7b))).toBe('tfjs-layers');
    expect(detectWeightsFormat('w.safetensors', bytes(1, 2))).toBe('safetensors');
    expect(detectWeightsFormat('w', bytes(8, 0, 0, 0, 0, 0, 0, 0, 0x7b))).toBe('safetensors');
    expect(() => detectWeightsFormat('w.dat', bytes(1, 2, 3))).toThrow(/cannot tell what kind of weights file w\.dat is/);
  });
});

describe('graft weights convert', () => {
  test('a TF.js model folder becomes safetensors with the same tensors, names and data', () => {
    const modelJson = writeTinyModel(join(dir, 'tiny'));
    const out = join(dir, 'tiny.safetensors');
    const lines: string[] = [];
    const result = convertWeightsFile(modelJson, out, (l) => lines.push(l));
    expect(result).toMatchObject({ path: out, tensors: 4, skipped: false });
    expect(lines.at(-1)).toMatch(/^wrote 4 tensors, 0\.0 MB, to .*tiny\.safetensors$/);
    const { tensors, metadata } = readSafetensorsFile(out);
    const { expected } = tinyTfjsModel();
    expect(tensors.get('dense/kernel')).toEqual({ dtype: 'F32', shape: [2, 3], data: expected.a });
    expect(tensors.get('steps')).toEqual({ dtype: 'I32', shape: [4], data: expected.b });
    expect(tensors.get('mask')).toEqual({ dtype: 'U8', shape: [3], data: expected.d });
    expect(metadata).toMatchObject({ batchnorm_epsilon: '0.001', source_file: 'model.json', source_sha256: sha256Hex(readFileSync(modelJson)) });
  });

  test('an npm tarball holding the model converts to the same tensors; safetensors re-converts to the same bytes', () => {
    const { modelJson, shards } = tinyTfjsModel();
    const files: Record<string, Uint8Array | string> = { 'package/package.json': '{"name":"tiny","version":"1.0.0"}', 'package/m/model.json': JSON.stringify(modelJson) };
    for (const [name, bytes] of Object.entries(shards)) files[`package/m/${name}`] = bytes;
    const tgz = join(dir, 'tiny-1.0.0.tgz');
    writeFileSync(tgz, gzipSync(tarOf(files)));
    const out = join(dir, 'from-tgz.safetensors');
    convertWeightsFile(tgz, out, quiet);
    const fromTgz = readSafetensorsFile(out);
    const folderOut = join(dir, 'from-folder.safetensors');
    convertWeightsFile(writeTinyModel(join(dir, 'tiny2')), folderOut, quiet);
    const fromFolder = readSafetensorsFile(folderOut);
    expect(fromTgz.tensors).toEqual(fromFolder.tensors);
    expect(fromTgz.metadata).toMatchObject({ source_file: 'tiny-1.0.0.tgz', source_model: 'package/m/model.json', source_sha256: sha256Hex(readFileSync(tgz)) });

    const again = join(dir, 'again.safetensors');
    convertWeightsFile(out, again, quiet);
    expect(readFileSync(again).equals(readFileSync(out))).toBe(true);
  });

  test('a tarball with no model.json, or two, is an error', () => {
    const tgz = join(dir, 'empty.tgz');
    writeFileSync(tgz, gzipSync(tarOf({ 'package/package.json': '{"name":"x"}' })));
    expect(() => convertWeightsFile(tgz, join(dir, 'x.safetensors'), quiet)).toThrow(/empty\.tgz: expected one TF\.js model\.json in the archive, found 0/);
  });

  test('a truncated .h5 is a format error, a .keras zip is not supported yet; PyTorch pickles are refused without being opened', () => {
    const h5 = join(dir, 'w.h5');
    writeFileSync(h5, new Uint8Array([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0]));
    expect(() => convertWeightsFile(h5, join(dir, 'o.safetensors'), quiet)).toThrow(GraftFormatError);
    expect(() => convertWeightsFile(h5, join(dir, 'o.safetensors'), quiet)).toThrow(/w\.h5: cannot read it as an HDF5 file/);
    const keras = join(dir, 'model.keras');
    writeFileSync(keras, new Uint8Array([0x50, 0x4b, 3, 4, 0, 0]));
    expect(() => convertWeightsFile(keras, join(dir, 'o.safetensors'), quiet)).toThrow(/not supported yet: .*model\.keras is a zip archive/);
    const pth = join(dir, 'resnet.pth');
    writeFileSync(pth, new Uint8Array([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c]));
    expect(() => convertWeightsFile(pth, join(dir, 'o.safetensors'), quiet)).toThrow(GraftError);
    expect(() => convertWeightsFile(pth, join(dir, 'o.safetensors'), quiet)).toThrow(/resnet\.pth is a PyTorch pickle, and Graft never unpickles files.*Convert it to safetensors/);
    expect(() => convertWeightsFile(pth, join(dir, 'o.bin'), quiet)).toThrow(ArgumentError);
    expect(() => convertWeightsFile(join(dir, 'none.json'), join(dir, 'o.safetensors'), quiet)).toThrow(/input file not found/);
  });

  test('the CLI runs convert, and rejects unknown options and misplaced ones', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const modelJson = writeTinyModel(join(dir, 'cli'));
      const out = join(dir, 'cli.safetensors');
      expect(await main(['weights', 'convert', modelJson, '--out', out])).toBe(0);
      expect(log.mock.calls.flat().join('\n')).toMatch(/wrote 4 tensors/);
      expect(readSafetensorsFile(out).tensors.size).toBe(4);

      expect(await main(['weights', 'convert', modelJson, '--out', out, '--bogus'])).toBe(1);
      expect(error.mock.calls.flat().join('\n')).toMatch(/unknown option --bogus/);
      expect(await main(['weights', 'convert', modelJson, '--out', out, '--cache', dir])).toBe(1);
      expect(error.mock.calls.flat().join('\n')).toMatch(/--cache applies to fetch only/);
      expect(await main(['weights', 'convert', modelJson])).toBe(1);
      expect(error.mock.calls.flat().join('\n')).toMatch(/--out OUT\.safetensors is required/);
      expect(await main(['weights', 'fetch', 'vgg99'])).toBe(1);
      expect(error.mock.calls.flat().join('\n')).toMatch(/unknown model 'vgg99' \(known: resnet50\)/);
      expect(await main(['weights', 'frobnicate'])).toBe(1);
      expect(await main(['weights', 'inspect', out])).toBe(0);
      expect(log.mock.calls.flat().join('\n')).toMatch(/cli\.safetensors: 4 tensors, 0\.0 MB of data, dtypes F32, I32, U8/);
      expect(await main(['weights', '--help'])).toBe(0);
      expect(log.mock.calls.flat().join('\n')).toMatch(/graft weights fetch resnet50/);
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
  });
});
