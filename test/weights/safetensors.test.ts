import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, test } from 'vitest';
import { ArgumentError, GraftFormatError } from '../../src/errors.js';
import { readSafetensorsFile, readSafetensorsHeaderFile, writeSafetensorsFile } from '../../src/weights/files.js';
import {
  DTYPE_BYTES,
  MAX_HEADER_BYTES,
  type SafetensorsTensor,
  parseSafetensors,
  parseSafetensorsHeader,
  serializeSafetensors,
} from '../../src/weights/safetensors.js';

/** A file assembled by hand from the spec: u64 LE header length, the header text verbatim, then `data`. */
function rawFile(header: string, data: number[] | Uint8Array = [], declaredLength?: number | bigint): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(declaredLength ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const le32 = (x: number) => [x & 0xff, (x >>> 8) & 0xff, (x >>> 16) & 0xff, (x >>> 24) & 0xff];
const f32Bytes = (x: number) => Array.from(new Uint8Array(new Float32Array([x]).buffer));

/** Bytes of a typed array, for bit-exact comparisons (NaN payloads and -0 included). */
const bytesOf = (a: ArrayBufferView) => Array.from(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));

function expectSameTensors(a: Map<string, SafetensorsTensor>, b: Map<string, SafetensorsTensor>) {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [name, t] of a) {
    const u = b.get(name)!;
    expect(u.dtype).toBe(t.dtype);
    expect(u.shape).toEqual(t.shape);
    expect(u.data.constructor).toBe(t.data.constructor);
    expect(bytesOf(u.data)).toEqual(bytesOf(t.data));
  }
}

describe('safetensors: reading and writing', () => {
  test('a file built by hand from the spec parses, and serialising its contents gives the same bytes', () => {
    // Tensors ordered as the writer orders them: element size descending, then name; metadata first.
    const header =
      '{"__metadata__":{"a":"1","format":"pt"},' +
      '"bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
      '"scalar":{"dtype":"I32","shape":[],"data_offsets":[8,12]},' +
      '"half":{"dtype":"F16","shape":[1,3],"data_offsets":[12,18]},' +
      '"empty":{"dtype":"U8","shape":[0,4],"data_offsets":[18,18]},' +
      '"mask":{"dtype":"U8","shape":[2],"data_offsets":[18,20]}}';
    const padded = header + ' '.repeat((8 - (header.length % 8)) % 8);
    const data = [...f32Bytes(1.5), ...f32Bytes(-2), ...le32(-7), 0x00, 0x3c, 0x00, 0xc0, 0x00, 0x7c, 1, 255];
    const file = rawFile(padded, data);

    const parsed = parseSafetensors(file, 'hand.safetensors');
    expect(parsed.metadata).toEqual({ a: '1', format: 'pt' });
    expect(parsed.tensors.get('bias')).toEqual({ dtype: 'F32', shape: [2], data: new Float32Array([1.5, -2]) });
    expect(parsed.tensors.get('scalar')).toEqual({ dtype: 'I32', shape: [], data: new Int32Array([-7]) });
    expect(parsed.tensors.get('half')).toEqual({ dtype: 'F16', shape: [1, 3], data: new Uint16Array([0x3c00, 0xc000, 0x7c00]) });
    expect(parsed.tensors.get('empty')).toEqual({ dtype: 'U8', shape: [0, 4], data: new Uint8Array(0) });
    expect(parsed.tensors.get('mask')).toEqual({ dtype: 'U8', shape: [2], data: new Uint8Array([1, 255]) });

    const written = serializeSafetensors(parsed.tensors, parsed.metadata);
    expect(Array.from(written)).toEqual(Array.from(file));
  });

  test('round trip is bit-exact for F32, F16 and I32, with empty tensors, scalars, NaN payloads and -0', () => {
    const nanWithPayload = new Float32Array(new Uint32Array([0x7fc01234]).buffer)[0]!;
    const tensors = new Map<string, SafetensorsTensor>([
      ['w', { dtype: 'F32', shape: [2, 3], data: new Float32Array([0, -0, nanWithPayload, Infinity, 1e-45, -3.4e38]) }],
      ['s', { dtype: 'F32', shape: [], data: new Float32Array([42]) }],
      ['e', { dtype: 'F32', shape: [3, 0], data: new Float32Array(0) }],
      ['h', { dtype: 'F16', shape: [5], data: new Uint16Array([0x0001, 0x7c00, 0xfc00, 0x7e01, 0x8000]) }],
      ['hs', { dtype: 'F16', shape: [], data: new Uint16Array([0x3555]) }],
      ['i', { dtype: 'I32', shape: [1, 1, 3], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1, 0]) }],
      ['ie', { dtype: 'I32', shape: [0], data: new Int32Array(0) }],
      ['0', { dtype: 'I32', shape: [], data: new Int32Array([7]) }], // an integer-like name stays in sorted order
    ]);
    const bytes = serializeSafetensors(tensors, { note: 'héllo "quoted"' });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLength) % 8).toBe(0);
    const back = parseSafetensors(bytes, 'mem');
    expectSameTensors(back.tensors, tensors);
    expect(back.metadata).toEqual({ note: 'héllo "quoted"' });
    expect(Array.from(serializeSafetensors(back.tensors, back.metadata))).toEqual(Array.from(bytes));
  });

  test('F16 and BF16 widen to F32 on request; I64 and U8 are read', () => {
    const header = '{"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]},' +
      '"l":{"dtype":"I64","shape":[2],"data_offsets":[12,28]},"u":{"dtype":"U8","shape":[1],"data_offsets":[28,29]}}';
    const data = [0x00, 0x3c, 0x00, 0xc0, 0x00, 0x7c, 0x01, 0x00, 0x80, 0x3f, 0x49, 0x40, ...[255, 255, 255, 255, 255, 255, 255, 255], ...[2, 0, 0, 0, 0, 0, 0, 1], 9];
    const file = rawFile(header, data);
    const raw = parseSafetensors(file, 'x');
    expect(raw.tensors.get('b')).toEqual({ dtype: 'BF16', shape: [2], data: new Uint16Array([0x3f80, 0x4049]) });
    expect(raw.tensors.get('l')).toEqual({ dtype: 'I64', shape: [2], data: new BigInt64Array([-1n, 2n + (1n << 56n)]) });
    expect(raw.tensors.get('u')).toEqual({ dtype: 'U8', shape: [1], data: new Uint8Array([9]) });
    const wide = parseSafetensors(file, 'x', { widen: true });
    expect(wide.tensors.get('h')).toEqual({ dtype: 'F32', shape: [4], data: new Float32Array([1, -2, Infinity, 2 ** -24]) });
    expect(wide.tensors.get('b')).toEqual({ dtype: 'F32', shape: [2], data: new Float32Array([1, 3.140625]) });
  });

  test('an empty file (no tensors) round-trips', () => {
    const bytes = serializeSafetensors(new Map());
    expect(bytes.length).toBe(16); // "{}" padded to 8
    expect(parseSafetensors(bytes, 'empty').tensors.size).toBe(0);
  });

  test('serialising bad input is an ArgumentError', () => {
    const f = (t: unknown, meta?: unknown) => () => serializeSafetensors({ t: t as SafetensorsTensor }, meta as Record<string, string>);
    expect(f({ dtype: 'F32', shape: [3], data: new Float32Array(2) })).toThrow(/shape \[3\] has 3 elements but the data has 2/);
    expect(f({ dtype: 'F32', shape: [2], data: new Int32Array(2) })).toThrow(/F32 data must be a Float32Array, got Int32Array/);
    expect(f({ dtype: 'F64', shape: [2], data: new Float64Array(2) })).toThrow(ArgumentError);
    expect(f({ dtype: 'F32', shape: [-1], data: new Float32Array(0) })).toThrow(/non-negative integers/);
    expect(f({ dtype: 'F32', shape: [1], data: new Float32Array(1) }, { k: 3 })).toThrow(/metadata value 'k' must be a string/);
    expect(() => serializeSafetensors({ __metadata__: { dtype: 'U8', shape: [0], data: new Uint8Array(0) } })).toThrow(/reserved/);
  });
});

describe('safetensors: strict validation', () => {
  const ok = (header: string, data: number[] = []) => rawFile(header, data);
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['shorter than the length field', new Uint8Array(5), /bad\.st: the file is 5 bytes, too short/],
    ['header length past the end of the file', rawFile('{}', [], 1000), /header length 1000 is larger than the 2 bytes that follow it/],
    ['header length near 2^64', rawFile('{}', [], 2n ** 64n - 1n), /header length 18446744073709551615 is larger than/],
    ['header not JSON', ok('{"a": '), /the header is not valid JSON/],
    ['header not UTF-8', rawFile('{}', []).map((b, i) => (i === 9 ? 0xff : b)), /not valid UTF-8/],
    ['header an array', ok('[1, 2]'), /the header must be a JSON object, got \[1,2\]/],
    ['header null', ok('null'), /must be a JSON object/],
    ['unknown dtype', ok('{"t":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}', [0, 0, 0, 0]), /tensor 't': unknown dtype "F33"/],
    ['format dtype Graft does not read', ok('{"t":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}', new Array(8).fill(0)), /dtype F64 is not supported/],
    ['negative dimension', ok('{"t":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}'), /shape must be a list of non-negative integers, got \[-1\]/],
    ['fractional dimension', ok('{"t":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}', [0]), /shape must be a list of non-negative integers/],
    ['shape not a list', ok('{"t":{"dtype":"U8","shape":"3","data_offsets":[0,3]}}', [0, 0, 0]), /shape must be a list/],
    ['dimension as a string', ok('{"t":{"dtype":"U8","shape":["3"],"data_offsets":[0,3]}}', [0, 0, 0]), /shape must be a list/],
    ['offsets past the data', ok('{"t":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}', [1, 2]), /data_offsets \[0, 4\] are out of range: the data region is 2 bytes/],
    ['offsets reversed', ok('{"t":{"dtype":"U8","shape":[0],"data_offsets":[2,1]}}', [1, 2]), /out of range/],
    ['offsets not a pair', ok('{"t":{"dtype":"U8","shape":[1],"data_offsets":[0]}}', [1]), /data_offsets must be two non-negative integers/],
    ['byte length differs from the shape', ok('{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', [0, 0, 0, 0]), /shape \[2\] of F32 needs 8 bytes but data_offsets \[0, 4\] hold 4/],
    ['overlapping tensors', ok('{"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"b":{"dtype":"U8","shape":[3],"data_offsets":[1,4]}}', [0, 0, 0, 0]), /tensors 'a' \[0, 3\] and 'b' \[1, 4\] overlap/],
    ['gap between tensors', ok('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}', [0, 0, 0]), /data bytes \[1, 2\) are not covered by any tensor/],
    ['bytes after the last tensor', ok('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', [0, 0]), /data bytes \[1, 2\) at the end are not covered/],
    ['data but no tensors', ok('{}', [0]), /data bytes \[0, 1\) at the end are not covered/],
    ['metadata value a number', ok('{"__metadata__":{"epochs":3}}'), /metadata value 'epochs' must be a string, got 3/],
    ['metadata a list', ok('{"__metadata__":["a"]}'), /__metadata__ must be an object of strings/],
    ['entry not an object', ok('{"t":[1,2]}'), /tensor 't': expected \{dtype, shape, data_offsets\}/],
    ['JSON nested 100000 deep', ok(`{"t":{"dtype":"U8","shape":${'['.repeat(100_000)}${']'.repeat(100_000)},"data_offsets":[0,0]}}`), /tensor 't': shape must be a list of non-negative integers, got \[\.\.\.\] \(nested too deeply/],
    ['unknown field in an entry', ok('{"t":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"extra":1}}'), /tensor 't': unknown field 'extra'/],
  ];
  test.each(cases)('%s', (_what, bytes, message) => {
    expect(() => parseSafetensors(bytes, 'bad.st')).toThrow(GraftFormatError);
    expect(() => parseSafetensors(bytes, 'bad.st')).toThrow(message);
    expect(() => parseSafetensors(bytes, 'bad.st')).toThrow(/^bad\.st: /);
  });

  test('an absurd header length is refused from the 8-byte length alone, before anything is read or allocated', () => {
    const lengthOnly = new Uint8Array(8);
    new DataView(lengthOnly.buffer).setBigUint64(0, BigInt(MAX_HEADER_BYTES + 1), true);
    expect(() => parseSafetensorsHeader(lengthOnly, 10 * MAX_HEADER_BYTES, 'huge.st')).toThrow(/huge\.st: the header length 100000001 is over the limit of 100000000 bytes/);
  });

  test('two empty tensors may share an offset; an empty tensor inside another overlaps it', () => {
    const shared = ok('{"a":{"dtype":"F32","shape":[0],"data_offsets":[1,1]},"b":{"dtype":"U8","shape":[0],"data_offsets":[1,1]},"c":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}', [5, 6]);
    expect(() => parseSafetensors(shared, 'x')).toThrow(/overlap/);
    const fine = ok('{"a":{"dtype":"F32","shape":[0],"data_offsets":[2,2]},"b":{"dtype":"U8","shape":[0],"data_offsets":[2,2]},"c":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}', [5, 6]);
    expect(parseSafetensors(fine, 'x').tensors.size).toBe(3);
  });
});

describe('safetensors: properties', () => {
  const dtypeArb = fc.constantFrom(...(Object.keys(DTYPE_BYTES) as Array<keyof typeof DTYPE_BYTES>));
  const tensorArb = fc.tuple(dtypeArb, fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 })).chain(([dtype, shape]) => {
    const count = shape.reduce((a, b) => a * b, 1);
    return fc.uint8Array({ minLength: count * DTYPE_BYTES[dtype], maxLength: count * DTYPE_BYTES[dtype] }).map((bytes) => {
      const buffer = bytes.slice().buffer;
      const data =
        dtype === 'F32' ? new Float32Array(buffer) : dtype === 'I32' ? new Int32Array(buffer) : dtype === 'I64' ? new BigInt64Array(buffer) : dtype === 'U8' ? new Uint8Array(buffer) : new Uint16Array(buffer);
      return { dtype, shape, data } as SafetensorsTensor;
    });
  });
  const fileArb = fc.record({
    tensors: fc.dictionary(fc.string({ minLength: 0, maxLength: 6 }).filter((s) => s !== '__metadata__'), tensorArb, { maxKeys: 6 }),
    metadata: fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
  });

  test('random valid files round-trip bit-exact, and serialising is deterministic', () => {
    fc.assert(
      fc.property(fileArb, ({ tensors, metadata }) => {
        const map = new Map(Object.entries(tensors));
        const bytes = serializeSafetensors(map, metadata);
        const back = parseSafetensors(bytes, 'random');
        expectSameTensors(back.tensors, map);
        expect(back.metadata).toEqual({ ...metadata });
        const reversed = new Map([...map].reverse());
        expect(Array.from(serializeSafetensors(reversed, metadata))).toEqual(Array.from(bytes));
      }),
      { numRuns: 60 },
    );
  });

  /** Parsing either succeeds or throws GraftFormatError; anything else fails the property. */
  const parsesOrRefuses = (bytes: Uint8Array) => {
    try {
      parseSafetensors(bytes, 'fuzz');
    } catch (e) {
      if (!(e instanceof GraftFormatError)) throw e;
    }
  };

  test('random byte flips and truncations never crash: the file parses or throws GraftFormatError', () => {
    fc.assert(
      fc.property(
        fileArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        ({ tensors, metadata }, flips, cut) => {
          const bytes = serializeSafetensors(new Map(Object.entries(tensors)), metadata);
          const flipped = bytes.slice();
          for (const [at, value] of flips) flipped[at % flipped.length] = value;
          parsesOrRefuses(flipped);
          parsesOrRefuses(bytes.subarray(0, cut % (bytes.length + 1)));
          // Flips aimed at the header, where they change the structure rather than the numbers.
          const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
          const inHeader = bytes.slice();
          for (const [at, value] of flips) inHeader[8 + (at % headerLength)] = value;
          parsesOrRefuses(inHeader);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('random JSON headers never crash the parser', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom('t', '__metadata__', 'u'), fc.jsonValue({ maxDepth: 3 })), fc.nat({ max: 16 }), (header, dataLength) => {
        parsesOrRefuses(rawFile(JSON.stringify(header), new Uint8Array(dataLength)));
      }),
      { numRuns: 300 },
    );
  });
});

describe('safetensors files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'graft-safetensors-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('write is atomic (no temporary file left), read back, header alone', () => {
    const path = join(dir, 'a.safetensors');
    const tensors = { k: { dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) } as SafetensorsTensor };
    const n = writeSafetensorsFile(path, tensors, { source: 'test' });
    expect(readdirSync(dir)).toEqual(['a.safetensors']);
    expect(readFileSync(path).length).toBe(n);
    expectSameTensors(readSafetensorsFile(path).tensors, new Map(Object.entries(tensors)));
    const header = readSafetensorsHeaderFile(path);
    expect(header.entries).toEqual([{ name: 'k', dtype: 'F32', shape: [2, 2], begin: 0, end: 16 }]);
    expect(header.metadata).toEqual({ source: 'test' });
    // Overwriting replaces the file whole.
    writeSafetensorsFile(path, {}, {});
    expect(readSafetensorsFile(path).tensors.size).toBe(0);
    expect(readdirSync(dir)).toEqual(['a.safetensors']);
  });

  test('a truncated file is refused by the header reader too, naming the file', () => {
    const path = join(dir, 'cut.safetensors');
    const bytes = serializeSafetensors({ k: { dtype: 'U8', shape: [4], data: new Uint8Array(4) } });
    writeFileSync(path, bytes.subarray(0, bytes.length - 1));
    expect(() => readSafetensorsHeaderFile(path)).toThrow(/cut\.safetensors: tensor 'k': data_offsets \[0, 4\] are out of range/);
    writeFileSync(path, bytes.subarray(0, 12));
    expect(() => readSafetensorsHeaderFile(path)).toThrow(/cut\.safetensors: the header length \d+ is larger than the 4 bytes/);
    writeFileSync(path, bytes.subarray(0, 3));
    expect(() => readSafetensorsHeaderFile(path)).toThrow(/too short/);
    expect(() => readSafetensorsFile(join(dir, 'none.safetensors'))).toThrow(/safetensors file not found/);
  });
});
