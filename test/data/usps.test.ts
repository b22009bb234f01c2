/**
 * USPS loader on the real files (../shared/data/usps; see ../shared/data/README.md) and on small malformed
 * files written to a temp dir; resizeDigits against image.ts's RGB resizeBilinear.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, describe, expect, test } from 'vitest';
import { loadUsps, parseUsps, resizeDigits } from '../../src/data/usps.js';
import { resizeBilinear } from '../../src/data/image.js';
import { GraftError, GraftFormatError } from '../../src/errors.js';

const TRAIN = '../shared/data/usps/zip.train.gz';
const TEST = '../shared/data/usps/zip.test.gz';
const tmp = mkdtempSync(join(tmpdir(), 'graft-usps-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function line(label: string, values: number[]): string {
  return [label, ...values.map((v) => v.toFixed(4))].join(' ');
}
const ramp = Array.from({ length: 256 }, (_, i) => -1 + (2 * i) / 255);

describe('loadUsps', () => {
  test('the train file: 7,291 rows, labels 0..9, values in [0, 1]', () => {
    expect(existsSync(TRAIN), `missing ${TRAIN}; see ../shared/data/README.md`).toBe(true);
    const set = loadUsps(TRAIN);
    expect(set.count).toBe(7291);
    expect(set.imageShape).toEqual([16, 16, 1]);
    expect(set.images.length).toBe(7291 * 256);
    expect(set.labels.length).toBe(7291);
    const seen = new Set(set.labels);
    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    let min = Infinity, max = -Infinity;
    for (const v of set.images) { if (v < min) min = v; if (v > max) max = v; }
    expect(min).toBe(0);
    expect(max).toBe(1);
    expect(set.labels[0]).toBe(6); // the first line of zip.train starts "6.0000"
  });

  test('the test file: 2,007 rows', () => {
    expect(loadUsps(TEST).count).toBe(2007);
  });

  test('parses plain and gzipped text; maps −1..1 to 0..1', () => {
    const text = `${line('3.0000', ramp)}\n${line('0', ramp.map((v) => -v))} \n\n`;
    for (const [name, bytes] of [['plain.txt', Buffer.from(text)], ['zipped.gz', gzipSync(text)]] as const) {
      const file = join(tmp, name);
      writeFileSync(file, bytes);
      const set = loadUsps(file);
      expect(set.count).toBe(2);
      expect(Array.from(set.labels)).toEqual([3, 0]);
      for (let p = 0; p < 256; p++) {
        expect(set.images[p]).toBeCloseTo((Number(ramp[p]!.toFixed(4)) + 1) / 2, 6);
        expect(set.images[256 + p]).toBeCloseTo((Number((-ramp[p]!).toFixed(4)) + 1) / 2, 6);
      }
    }
  });

  test('malformed input names the file and the line', () => {
    const good = line('1', ramp);
    const cases: [string, RegExp][] = [
      [`${good}\n${line('2', ramp.slice(1))}\n`, /bad\.txt:2: expected a label and 256 values, got 256 fields/],
      [`${good}\n${good}\n${line('12', ramp)}\n`, /bad\.txt:3: label must be an integer 0\.\.9/],
      [`${line('2.5', ramp)}\n`, /bad\.txt:1: label/],
      [`${line('4', [...ramp.slice(0, 9), 1.5, ...ramp.slice(10)])}\n`, /bad\.txt:1: value 10 must be a number in −1\.\.1, got '1\.5'/],
      [`${good}\n${line('4', ramp).replace(' -1.0000', ' abc')}\n`, /bad\.txt:2: value 1 must be a number/],
    ];
    for (const [text, message] of cases) {
      expect(() => parseUsps(text, 'bad.txt')).toThrow(GraftFormatError);
      expect(() => parseUsps(text, 'bad.txt')).toThrow(message);
    }
    expect(() => loadUsps(join(tmp, 'absent.gz'))).toThrow(GraftError);
  });
});

describe('resizeDigits', () => {
  test('matches resizeBilinear on the grey image replicated to RGB', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 30 }), fc.integer(), (count, size, seed) => {
        let s = seed >>> 0;
        const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
        const images = Float32Array.from({ length: count * 256 }, rand);
        const out = resizeDigits({ images, labels: new Int32Array(count), count, imageShape: [16, 16, 1] }, size);
        expect(out.imageShape).toEqual([size, size, 1]);
        expect(out.images.length).toBe(count * size * size);
        for (let n = 0; n < count; n++) {
          const rgb = new Float32Array(256 * 3);
          for (let p = 0; p < 256; p++) rgb.fill(images[n * 256 + p]!, 3 * p, 3 * p + 3);
          const ref = resizeBilinear({ width: 16, height: 16, data: rgb }, size, size);
          for (let p = 0; p < size * size; p++) expect(out.images[n * size * size + p]).toBeCloseTo(ref.data[3 * p]!, 5);
        }
      }),
      { numRuns: 15 },
    );
  });

  test('USPS to 28×28 keeps labels and the [0, 1] range', () => {
    const set = parseUsps(`${line('5', ramp)}\n${line('9', ramp.map((v) => -v))}\n`, 'two.txt');
    const big = resizeDigits(set);
    expect(big.imageShape).toEqual([28, 28, 1]);
    expect(Array.from(big.labels)).toEqual([5, 9]);
    for (const v of big.images) { expect(v).toBeGreaterThanOrEqual(0); expect(v).toBeLessThanOrEqual(1); }
    expect(() => resizeDigits({ ...set, imageShape: [16, 16, 3] })).toThrow(/single-channel/);
  });
});
