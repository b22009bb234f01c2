/**
 * The IDX format of the MNIST files: a magic number giving the element type and rank, the dimensions as
 * big-endian u32, then the data. Gzipped files are inflated first.
 */
import { gunzipSync } from 'node:zlib';
import { GraftFormatError } from '../errors.js';

export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

const MAX_INFLATED_BYTES = 1 << 30;

export function parseIdx(bytes: Uint8Array, file = 'IDX file'): IdxArray {
  let buf = bytes;
  if (buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      // A bound on the inflated size, so that a hostile file cannot inflate without end (MNIST's largest is 47 MB).
      buf = gunzipSync(buf, { maxOutputLength: MAX_INFLATED_BYTES });
    } catch (e) {
      throw new GraftFormatError(`${file}: gzip data is corrupt (${(e as Error).message}).`);
    }
  }
  if (buf.length < 4) throw new GraftFormatError(`${file}: ${buf.length} bytes is too short for an IDX header.`);
  if (buf[0] !== 0 || buf[1] !== 0) throw new GraftFormatError(`${file}: bad magic number (first two bytes must be 0).`);
  if (buf[2] !== 0x08) throw new GraftFormatError(`${file}: element type 0x${buf[2]!.toString(16)} is not supported (only unsigned bytes, 0x08).`);
  const rank = buf[3]!;
  if (rank < 1 || rank > 4) throw new GraftFormatError(`${file}: rank ${rank} is outside 1..4.`);
  if (buf.length < 4 + 4 * rank) throw new GraftFormatError(`${file}: header declares rank ${rank} but the file ends inside the dimensions.`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const shape = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  if (shape.includes(0)) throw new GraftFormatError(`${file}: dimensions [${shape.join(', ')}] include a 0: the file holds no data.`);
  const n = shape.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * rank;
  if (buf.length - start !== n) {
    throw new GraftFormatError(`${file}: dimensions [${shape.join(', ')}] need ${n} data bytes but the file has ${buf.length - start}.`);
  }
  return { shape, data: buf.subarray(start) };
}
