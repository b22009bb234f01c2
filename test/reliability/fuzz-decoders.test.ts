/**
 * Fuzzing the file decoders: PNG and JPEG (baseline and progressive) through decodeImage, USPS text through
 * parseUsps, and IDX (raw and gzipped) through parseIdx.
 *
 * Each property takes a valid file, mutates it (bit flips, truncation, insertion, overwriting a stretch with
 * garbage, planting extreme values in what may be a size field, or replacing it all with random bytes), and
 * decodes the result. The decoder must either return a well-formed result (positive dimensions, data length
 * consistent with them) or throw a GraftError whose message names the file; no other exception, and no
 * decode may take long. A separate test checks that headers claiming enormous sizes are refused before
 * any pixel memory is allocated, with the default limit.
 *
 * No GPU is needed. Run: npx vitest run test/reliability/fuzz-decoders.test.ts
 */
import { existsSync, readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { describe, expect, test } from 'vitest';
import { GraftError } from '../../src/errors.js';
import { type RgbImage, decodeImage } from '../../src/data/image.js';
import { parseIdx } from '../../src/data/idx.js';
import { parseUsps } from '../../src/data/usps.js';
import { rng } from '../util/check.js';

/** Runs per property; set GRAFT_FUZZ_RUNS for a longer hunt (e.g. 5000). */
const RUNS = Number(process.env.GRAFT_FUZZ_RUNS ?? 200);
/** One decode of these tiny files taking longer than this counts as a hang. */
const SLOW_MS = 2000;
/** The pixel limit for the fuzzed images: mutated headers must not make the test allocate gigabytes. */
const FUZZ_MAX_PIXELS = 1 << 20;
const PROGRESSIVE = '../shared/data/hymenoptera/hymenoptera_data/train/ants/ant photos.jpg';

// ---------------------------------------------------------------------------------------------------------
// Mutations

type Mutation =
  | { kind: 'flip'; bits: Array<[number, number]> }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'overwrite'; at: number; bytes: Uint8Array }
  | { kind: 'extreme'; at: number; width: 2 | 4; value: number }
  | { kind: 'garbage'; keepMagic: number; bytes: Uint8Array };

const posArb = fc.nat({ max: 1 << 20 });
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), bits: fc.array(fc.tuple(posArb, fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: posArb }),
  fc.record({ kind: fc.constant('insert' as const), at: posArb, bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }) }),
  fc.record({ kind: fc.constant('overwrite' as const), at: posArb, bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({
    kind: fc.constant('extreme' as const),
    at: posArb,
    width: fc.constantFrom(2 as const, 4 as const),
    value: fc.constantFrom(0, 1, 0x7fff, 0xffff, 0x7fffffff, 0xffffffff),
  }),
  fc.record({ kind: fc.constant('garbage' as const), keepMagic: fc.constantFrom(0, 2, 4, 8), bytes: fc.uint8Array({ maxLength: 512 }) }),
);

function mutate(base: Uint8Array, m: Mutation): Uint8Array {
  const n = base.length;
  const b = Uint8Array.from(base);
  switch (m.kind) {
    case 'flip':
      for (const [at, bit] of m.bits) b[at % n] ^= 1 << bit;
      return b;
    case 'truncate':
      return b.subarray(0, m.at % n);
    case 'insert': {
      const at = m.at % (n + 1);
      return Uint8Array.from([...b.subarray(0, at), ...m.bytes, ...b.subarray(at)]);
    }
    case 'overwrite':
      b.set(m.bytes.subarray(0, n - (m.at % n)), m.at % n);
      return b;
    case 'extreme': {
      const at = m.at % Math.max(1, n - m.width);
      const view = new DataView(b.buffer);
      if (m.width === 2) view.setUint16(at, m.value & 0xffff, false);
      else view.setUint32(at, m.value >>> 0, false);
      return b;
    }
    case 'garbage':
      return Uint8Array.from([...b.subarray(0, m.keepMagic), ...m.bytes]);
  }
}

// ---------------------------------------------------------------------------------------------------------
// The property

/** How often each outcome occurred, per property: a fuzzer that only ever hits one path proves little. */
type Outcomes = { decoded: number; refused: number };
const newOutcomes = (): Outcomes => ({ decoded: 0, refused: 0 });

/** Decoding returns something `wellFormed` accepts, or throws a GraftError naming `file`; and quickly. */
function expectDecodesOrRefuses<T>(decode: () => T, file: string, wellFormed: (out: T) => void, seen: Outcomes): void {
  const start = performance.now();
  let out: T;
  try {
    out = decode();
  } catch (e) {
    expect(e, `non-Graft exception: ${String(e)}`).toBeInstanceOf(GraftError);
    expect((e as Error).message).toContain(file);
    seen.refused++;
    return;
  } finally {
    expect(performance.now() - start, 'decode time (ms)').toBeLessThan(SLOW_MS);
  }
  wellFormed(out);
  seen.decoded++;
}

function wellFormedImage(img: RgbImage): void {
  expect(Number.isInteger(img.width) && img.width > 0).toBe(true);
  expect(Number.isInteger(img.height) && img.height > 0).toBe(true);
  expect(img.width * img.height).toBeLessThanOrEqual(FUZZ_MAX_PIXELS);
  expect(img.data.length).toBe(img.width * img.height * 3);
  for (const v of img.data) if (!(v >= 0 && v <= 255)) throw new Error(`pixel value ${v} is outside 0..255`);
}

// ---------------------------------------------------------------------------------------------------------
// Valid inputs

function pattern(w: number, h: number, seed: number): Buffer {
  const r = rng(seed);
  return Buffer.from(Array.from({ length: w * h * 4 }, (_, i) => (i % 4 === 3 ? 255 : Math.floor(r() * 256))));
}

function makePng(w: number, h: number): Uint8Array {
  const png = new PNG({ width: w, height: h });
  pattern(w, h, 1).copy(png.data);
  return new Uint8Array(PNG.sync.write(png));
}

function makeJpeg(w: number, h: number): Uint8Array {
  return new Uint8Array(jpeg.encode({ data: pattern(w, h, 2), width: w, height: h }, 75).data);
}

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * Recomputes the CRC of every chunk that is still intact in layout, so that a mutation inside a chunk
 * reaches pngjs's parsing instead of being stopped by the checksum.
 */
function fixPngCrcs(png: Uint8Array): Uint8Array {
  const b = Uint8Array.from(png);
  const view = new DataView(b.buffer);
  for (let at = 8; at + 12 <= b.length; ) {
    const length = view.getUint32(at, false);
    const end = at + 8 + length;
    if (end + 4 > b.length) break;
    view.setUint32(end, crc32(b.subarray(at + 4, end)), false);
    at = end + 4;
  }
  return b;
}

function pngWithSize(w: number, h: number): Uint8Array {
  const b = makePng(3, 2);
  const view = new DataView(b.buffer);
  view.setUint32(16, w, false);
  view.setUint32(20, h, false);
  return fixPngCrcs(b);
}

function jpegWithSize(w: number, h: number): Uint8Array {
  const b = makeJpeg(8, 8);
  const sof = b.findIndex((v, i) => v === 0xff && b[i + 1] === 0xc0);
  const view = new DataView(b.buffer);
  view.setUint16(sof + 5, h, false);
  view.setUint16(sof + 7, w, false);
  return b;
}

// ---------------------------------------------------------------------------------------------------------

describe('image decoders on mutated files', () => {
  const decode = (bytes: Uint8Array, file: string) => () => decodeImage(bytes, file, { maxPixels: FUZZ_MAX_PIXELS });

  test('the unmutated inputs decode', () => {
    expect(decodeImage(makePng(13, 9), 'a.png')).toMatchObject({ width: 13, height: 9 });
    expect(decodeImage(makeJpeg(13, 9), 'a.jpg')).toMatchObject({ width: 13, height: 9 });
    expect(existsSync(PROGRESSIVE), `missing ${PROGRESSIVE}; see ../shared/data/README.md`).toBe(true);
    const prog = new Uint8Array(readFileSync(PROGRESSIVE));
    expect(prog.findIndex((v, i) => v === 0xff && prog[i + 1] === 0xc2), 'progressive (SOF2) marker').toBeGreaterThan(0);
    wellFormedImage(decodeImage(prog, 'p.jpg'));
  });

  test('PNG (with and without the chunk CRCs fixed up after mutation)', () => {
    const base = makePng(13, 9);
    const seen = newOutcomes();
    fc.assert(
      fc.property(mutationArb, fc.boolean(), (m, fixCrcs) => {
        const bytes = fixCrcs ? fixPngCrcs(mutate(base, m)) : mutate(base, m);
        expectDecodesOrRefuses(decode(bytes, 'fuzz.png'), 'fuzz.png', wellFormedImage, seen);
      }),
      { numRuns: RUNS, seed: Number(process.env.GRAFT_FUZZ_SEED ?? 7) },
    );
    expect(seen.decoded * seen.refused, JSON.stringify(seen)).toBeGreaterThan(0);
  });

  test('baseline JPEG', () => {
    const base = makeJpeg(13, 9);
    const seen = newOutcomes();
    fc.assert(
      fc.property(mutationArb, (m) => expectDecodesOrRefuses(decode(mutate(base, m), 'fuzz.jpg'), 'fuzz.jpg', wellFormedImage, seen)),
      { numRuns: RUNS, seed: Number(process.env.GRAFT_FUZZ_SEED ?? 7) },
    );
    expect(seen.decoded * seen.refused, JSON.stringify(seen)).toBeGreaterThan(0);
  });

  test('progressive JPEG', () => {
    const base = new Uint8Array(readFileSync(PROGRESSIVE));
    const seen = newOutcomes();
    fc.assert(
      fc.property(mutationArb, (m) => expectDecodesOrRefuses(decode(mutate(base, m), 'fuzz-progressive.jpg'), 'fuzz-progressive.jpg', wellFormedImage, seen)),
      { numRuns: RUNS, seed: Number(process.env.GRAFT_FUZZ_SEED ?? 7) },
    );
    expect(seen.decoded * seen.refused, JSON.stringify(seen)).toBeGreaterThan(0);
  });

  test.each([
    ['PNG 100000×100000', () => pngWithSize(100000, 100000)],
    ['PNG 9000×9000', () => pngWithSize(9000, 9000)],
    ['PNG 0×5', () => pngWithSize(0, 5)],
    ['JPEG 65535×65535', () => jpegWithSize(65535, 65535)],
    ['JPEG 9000×9000', () => jpegWithSize(9000, 9000)],
  ])('a header claiming %s is refused at once, with the default limit', (what, make) => {
    const bytes = make();
    const rssBefore = process.memoryUsage().rss;
    const start = performance.now();
    expect(() => decodeImage(bytes, 'huge.img')).toThrow(GraftError);
    expect(() => decodeImage(bytes, 'huge.img')).toThrow(/^huge\.img: cannot decode/);
    expect(performance.now() - start, `${what}: ms`).toBeLessThan(500);
    expect(process.memoryUsage().rss - rssBefore, `${what}: RSS growth`).toBeLessThan(64 * 2 ** 20);
  });
});

describe('USPS text on mutated files', () => {
  const r = rng(3);
  const line = () => [`${Math.floor(r() * 10)}.0000`, ...Array.from({ length: 256 }, () => (2 * r() - 1).toFixed(4))].join(' ');
  const base = new TextEncoder().encode(`${line()}\n${line()}\n${line()}\n`);

  test('the unmutated text parses', () => {
    expect(parseUsps(new TextDecoder().decode(base), 'zip.txt').count).toBe(3);
  });

  test('parseUsps returns whole images with labels 0..9 and values in [0, 1], or a GraftError', () => {
    const seen = newOutcomes();
    fc.assert(
      fc.property(mutationArb, (m) => {
        const text = new TextDecoder().decode(mutate(base, m));
        expectDecodesOrRefuses(() => parseUsps(text, 'fuzz-zip.txt'), 'fuzz-zip.txt', (set) => {
          expect(set.count).toBeGreaterThan(0);
          expect(set.imageShape).toEqual([16, 16, 1]);
          expect(set.images.length).toBe(set.count * 256);
          expect(set.labels.length).toBe(set.count);
          for (const l of set.labels) expect(l >= 0 && l <= 9).toBe(true);
          for (const v of set.images) if (!(v >= 0 && v <= 1)) throw new Error(`value ${v} is outside [0, 1]`);
        }, seen);
      }),
      // A fixed seed: most mutations of this short text are refused, and an unseeded run of 200 can miss
      // every one that still parses, which would fail the check below by chance.
      { numRuns: RUNS, seed: Number(process.env.GRAFT_FUZZ_SEED ?? 7) },
    );
    expect(seen.decoded * seen.refused, JSON.stringify(seen)).toBeGreaterThan(0);
  });
});

describe('IDX on mutated files', () => {
  const shape = [5, 4, 3];
  const header = new Uint8Array([0, 0, 8, shape.length, ...shape.flatMap((d) => [0, 0, 0, d])]);
  const raw = Uint8Array.from([...header, ...Array.from({ length: 60 }, (_, i) => (i * 7) & 255)]);
  const gz = new Uint8Array(gzipSync(raw));

  test('the unmutated files parse', () => {
    expect(parseIdx(raw, 'a.idx').shape).toEqual(shape);
    expect(parseIdx(gz, 'a.idx.gz').shape).toEqual(shape);
  });

  test.each([
    ['raw', raw],
    ['gzipped', gz],
  ])('parseIdx (%s) returns an array whose data fills its shape, or a GraftError', (_, base) => {
    const seen = newOutcomes();
    fc.assert(
      fc.property(mutationArb, (m) => {
        const bytes = mutate(base, m);
        expectDecodesOrRefuses(() => parseIdx(bytes, 'fuzz.idx'), 'fuzz.idx', (a) => {
          expect(a.shape.length >= 1 && a.shape.length <= 4).toBe(true);
          for (const d of a.shape) expect(Number.isInteger(d) && d > 0).toBe(true);
          expect(a.data.length).toBe(a.shape.reduce((x, y) => x * y, 1));
        }, seen);
      }),
      { numRuns: RUNS },
    );
    // Most mutations of the gzipped file fail its checksum; the raw file must see both outcomes.
    expect(seen.refused, JSON.stringify(seen)).toBeGreaterThan(0);
    if (base === raw) expect(seen.decoded, JSON.stringify(seen)).toBeGreaterThan(0);
  });
});
