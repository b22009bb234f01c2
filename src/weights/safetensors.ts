/**
 * safetensors: the weight file format of Hugging Face (github.com/huggingface/safetensors), read and written
 * in plain TypeScript. This file is pure (bytes in, arrays out); reading and writing files is in files.ts.
 *
 * Layout of a file:
 *
 *   [8 bytes]   N, the length of the header, an unsigned 64-bit little-endian integer
 *   [N bytes]   the header, a UTF-8 JSON object:
 *                 { "<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, …,
 *                   "__metadata__": {"<key>": "<string value>", …} }          (metadata optional)
 *               padded with spaces so that the data starts at a multiple of 8 bytes
 *   [the rest]  the data region; each tensor is row-major, little-endian, at [begin, end) of this region
 *
 * Reading is strict. Every header field is checked before a byte of tensor data is allocated, and every
 * allocation is bounded by the real length of the file, never by a number the file declares. A malformed file
 * throws GraftFormatError naming the file and the problem: a header length past the end of the file or over
 * MAX_HEADER_BYTES; a header that is not UTF-8 JSON or not an object; an unknown dtype; a shape that is not a
 * list of non-negative integers; offsets outside the data region; a byte length other than prod(shape) times
 * the dtype's size; tensors that overlap; bytes of the data region that no tensor covers (the format requires
 * the region to be covered exactly); metadata that is not an object of strings.
 *
 * Writing is deterministic: tensors are ordered by element size (largest first, so every tensor is aligned to
 * its element size) and then by name, as the reference implementation does; metadata keys are sorted; the
 * header is padded with spaces to a multiple of 8 bytes.
 *
 * Element types: F32, F16, BF16, I32, I64, U8 are read and written. F16 and BF16 come back as their raw bit
 * patterns (Uint16Array), or widened to F32 with `{widen: true}`. Other dtypes of the format (F64, BOOL, …)
 * are refused by name.
 */
import { getFloat16 } from '@petamoriken/float16';
import { ArgumentError, GraftError, GraftFormatError } from '../errors.js';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64' | 'U8';

/** A tensor: the dtype names the typed array that holds its elements (F16 and BF16 as bit patterns). */
export type SafetensorsTensor =
  | { dtype: 'F32'; shape: number[]; data: Float32Array }
  | { dtype: 'F16' | 'BF16'; shape: number[]; data: Uint16Array }
  | { dtype: 'I32'; shape: number[]; data: Int32Array }
  | { dtype: 'I64'; shape: number[]; data: BigInt64Array }
  | { dtype: 'U8'; shape: number[]; data: Uint8Array };

export interface SafetensorsFile {
  /** In file order (by data offset). */
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

/** One validated header entry; begin and end are byte offsets into the data region. */
export interface SafetensorsHeaderEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Sorted by data offset. */
  entries: SafetensorsHeaderEntry[];
  metadata: Record<string, string>;
  /** Byte offset of the data region in the file: 8 + the header length. */
  dataStart: number;
}

export const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8, U8: 1 };

/** Dtypes the format defines that Graft does not read; named in the error so it is not called "unknown". */
const OTHER_FORMAT_DTYPES = new Set(['F64', 'BOOL', 'I8', 'I16', 'U16', 'U32', 'U64', 'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F6_E2M3', 'F6_E3M2', 'F4', 'C64']);

/** A header longer than this is refused as absurd (real headers are kilobytes; the reference caps at 100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isDtype(d: unknown): d is SafetensorsDtype {
  return typeof d === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, d);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A JSON value shown in an error message, cut short. */
function show(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = Array.isArray(v) ? '[...] (nested too deeply to show)' : '{...} (nested too deeply to show)'; // JSON.stringify's stack ran out
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** prod(shape), or Infinity when it is not a safe integer. */
function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return Number.isSafeInteger(n) ? n : Infinity;
}

/**
 * Validates the header of a safetensors file. `bytes` must hold at least the first 8 + N bytes of the file
 * (all of it, or just the header when reading the header alone); `fileLength` is the length of the whole file.
 */
export function parseSafetensorsHeader(bytes: Uint8Array, fileLength: number, fileName: string): SafetensorsHeader {
  const fail: (problem: string) => never = (problem) => {
    throw new GraftFormatError(`${fileName}: ${problem}.`);
  };
  if (fileLength < 8) fail(`the file is ${fileLength} bytes, too short for the 8-byte header length of a safetensors file`);
  if (bytes.length < 8) throw new ArgumentError(`parseSafetensorsHeader: pass at least the first 8 bytes of ${fileName}, got ${bytes.length}.`);
  const declared = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (declared > BigInt(fileLength - 8)) fail(`the header length ${declared} is larger than the ${fileLength - 8} bytes that follow it`);
  if (declared > BigInt(MAX_HEADER_BYTES)) fail(`the header length ${declared} is over the limit of ${MAX_HEADER_BYTES} bytes`);
  const headerLength = Number(declared);
  if (bytes.length < 8 + headerLength) {
    throw new ArgumentError(`parseSafetensorsHeader: ${fileName} has a ${headerLength}-byte header; pass its first ${8 + headerLength} bytes, got ${bytes.length}.`);
  }

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    return fail('the header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return fail(`the header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(json)) return fail(`the header must be a JSON object, got ${show(json)}`);

  const dataLength = fileLength - 8 - headerLength;
  const entries: SafetensorsHeaderEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isPlainObject(value)) fail(`__metadata__ must be an object of strings, got ${show(value)}`);
      for (const [k, v] of Object.entries(value as object)) {
        if (typeof v !== 'string') fail(`metadata value '${k}' must be a string, got ${show(v)}`);
      }
      metadata = { ...(value as Record<string, string>) };
      continue;
    }
    const where = `tensor '${name}'`;
    if (!isPlainObject(value)) return fail(`${where}: expected {dtype, shape, data_offsets}, got ${show(value)}`);
    for (const k of Object.keys(value)) {
      if (k !== 'dtype' && k !== 'shape' && k !== 'data_offsets') fail(`${where}: unknown field '${k}'`);
    }
    const { dtype, shape, data_offsets: offsets } = value;
    if (!isDtype(dtype)) {
      if (typeof dtype === 'string' && OTHER_FORMAT_DTYPES.has(dtype)) fail(`${where}: dtype ${dtype} is not supported (Graft reads ${Object.keys(DTYPE_BYTES).join(', ')})`);
      fail(`${where}: unknown dtype ${show(dtype)}`);
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) return fail(`${where}: shape must be a list of non-negative integers, got ${show(shape)}`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
      return fail(`${where}: data_offsets must be two non-negative integers [begin, end], got ${show(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataLength) fail(`${where}: data_offsets [${begin}, ${end}] are out of range: the data region is ${dataLength} bytes`);
    const needed = elementCount(shape) * DTYPE_BYTES[dtype as SafetensorsDtype];
    if (needed !== end - begin) {
      fail(`${where}: shape [${shape.join(', ')}] of ${dtype} needs ${needed} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    entries.push({ name, dtype: dtype as SafetensorsDtype, shape: [...shape], begin, end });
  }

  // The data region must be covered exactly: walk the tensors in offset order.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: SafetensorsHeaderEntry | undefined;
  for (const e of entries) {
    if (e.begin < covered) fail(`tensors '${previous!.name}' [${previous!.begin}, ${previous!.end}] and '${e.name}' [${e.begin}, ${e.end}] overlap`);
    if (e.begin > covered) fail(`data bytes [${covered}, ${e.begin}) are not covered by any tensor (the data region must be covered exactly)`);
    covered = e.end;
    previous = e;
  }
  if (covered !== dataLength) fail(`data bytes [${covered}, ${dataLength}) at the end are not covered by any tensor (the data region must be covered exactly)`);
  return { entries, metadata, dataStart: 8 + headerLength };
}

/** f16 bit patterns widened to f32 (exact). */
export function f16BitsToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const view = new DataView(bits.buffer, bits.byteOffset, bits.byteLength);
  for (let i = 0; i < bits.length; i++) out[i] = getFloat16(view, 2 * i, true);
  return out;
}

/** bf16 bit patterns widened to f32 (exact: bf16 is the top half of an f32). */
export function bf16BitsToF32(bits: Uint16Array): Float32Array {
  const words = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) words[i] = bits[i]! << 16;
  return new Float32Array(words.buffer);
}

/** The tensor held by `raw`, which owns its whole buffer. */
function tensorFromBytes(dtype: SafetensorsDtype, shape: number[], raw: Uint8Array, widen: boolean): SafetensorsTensor {
  const buffer = raw.buffer as ArrayBuffer;
  switch (dtype) {
    case 'F32':
      return { dtype, shape, data: new Float32Array(buffer) };
    case 'F16':
    case 'BF16': {
      const bits = new Uint16Array(buffer);
      if (!widen) return { dtype, shape, data: bits };
      return { dtype: 'F32', shape, data: dtype === 'F16' ? f16BitsToF32(bits) : bf16BitsToF32(bits) };
    }
    case 'I32':
      return { dtype, shape, data: new Int32Array(buffer) };
    case 'I64':
      return { dtype, shape, data: new BigInt64Array(buffer) };
    case 'U8':
      return { dtype, shape, data: raw };
  }
}

export interface ParseOptions {
  /** Return F16 and BF16 tensors widened to F32 (their dtype then reads 'F32'). */
  widen?: boolean;
}

/** Parses a whole safetensors file. Each tensor's data is a copy, so `bytes` may be released afterwards. */
export function parseSafetensors(bytes: Uint8Array, fileName: string, options: ParseOptions = {}): SafetensorsFile {
  const header = parseSafetensorsHeader(bytes, bytes.length, fileName);
  if (!LITTLE_ENDIAN_HOST) throw new GraftError('safetensors: this host is big-endian, which Graft does not support.');
  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of header.entries) {
    // A fresh copy: its buffer starts aligned, and `bytes` may be a view into a larger (pooled) buffer.
    const raw = new Uint8Array(e.end - e.begin);
    raw.set(bytes.subarray(header.dataStart + e.begin, header.dataStart + e.end));
    tensors.set(e.name, tensorFromBytes(e.dtype, e.shape, raw, options.widen ?? false));
  }
  return { tensors, metadata: header.metadata };
}

const ARRAY_OF_DTYPE: Record<SafetensorsDtype, { name: string; ctor: Function }> = {
  F32: { name: 'Float32Array', ctor: Float32Array },
  F16: { name: 'Uint16Array (f16 bit patterns)', ctor: Uint16Array },
  BF16: { name: 'Uint16Array (bf16 bit patterns)', ctor: Uint16Array },
  I32: { name: 'Int32Array', ctor: Int32Array },
  I64: { name: 'BigInt64Array', ctor: BigInt64Array },
  U8: { name: 'Uint8Array', ctor: Uint8Array },
};

type TensorSource = Map<string, SafetensorsTensor> | Record<string, SafetensorsTensor> | Iterable<[string, SafetensorsTensor]>;

function entriesOf(tensors: TensorSource): Array<[string, SafetensorsTensor]> {
  if (tensors instanceof Map) return [...tensors];
  if (Symbol.iterator in tensors) return [...(tensors as Iterable<[string, SafetensorsTensor]>)];
  return Object.entries(tensors as Record<string, SafetensorsTensor>);
}

/** Serialises tensors and string metadata to the bytes of a safetensors file (deterministic; see the header). */
export function serializeSafetensors(tensors: TensorSource, metadata: Record<string, string> = {}): Uint8Array {
  if (!LITTLE_ENDIAN_HOST) throw new GraftError('safetensors: this host is big-endian, which Graft does not support.');
  const list = entriesOf(tensors);
  const seen = new Set<string>();
  for (const [name, t] of list) {
    const where = `serializeSafetensors: tensor '${name}'`;
    if (name === '__metadata__') throw new ArgumentError(`${where}: the name __metadata__ is reserved for the metadata.`);
    if (seen.has(name)) throw new ArgumentError(`${where} appears twice.`);
    seen.add(name);
    if (!isDtype(t.dtype)) throw new ArgumentError(`${where}: dtype ${show(t.dtype)} is not one of ${Object.keys(DTYPE_BYTES).join(', ')}.`);
    const expected = ARRAY_OF_DTYPE[t.dtype];
    if (!(t.data instanceof expected.ctor)) throw new ArgumentError(`${where}: ${t.dtype} data must be a ${expected.name}, got ${t.data?.constructor?.name}.`);
    if (!Array.isArray(t.shape) || !t.shape.every(isCount)) throw new ArgumentError(`${where}: shape must be a list of non-negative integers, got ${show(t.shape)}.`);
    if (elementCount(t.shape) !== t.data.length) {
      throw new ArgumentError(`${where}: shape [${t.shape.join(', ')}] has ${elementCount(t.shape)} elements but the data has ${t.data.length}.`);
    }
  }
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new ArgumentError(`serializeSafetensors: metadata value '${k}' must be a string, got ${show(v)}.`);
  }

  const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  list.sort(([na, a], [nb, b]) => DTYPE_BYTES[b.dtype] - DTYPE_BYTES[a.dtype] || byName(na, nb));
  // Built by hand rather than with JSON.stringify(object): an object would move integer-like names first.
  const fields: string[] = [];
  const metaKeys = Object.keys(metadata).sort(byName);
  if (metaKeys.length > 0) {
    fields.push(`"__metadata__":{${metaKeys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`);
  }
  let offset = 0;
  for (const [name, t] of list) {
    const end = offset + t.data.byteLength;
    fields.push(`${JSON.stringify(name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`);
    offset = end;
  }
  const json = new TextEncoder().encode(`{${fields.join(',')}}`);
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const [, t] of list) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}
