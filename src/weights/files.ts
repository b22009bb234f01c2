/**
 * Weight files on disk (Node only): safetensors read and written, a safetensors header read alone, a TF.js
 * layers model read from its folder. The parsing itself is in the pure modules beside this one.
 *
 * Writes are atomic at the file level: the bytes go to a temporary file in the destination's folder, are
 * flushed to disk (fsync), and the temporary file is then renamed over the destination. A reader sees either
 * the old file or the complete new one, never a torn write, even if the process dies half-way.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { GraftError } from '../errors.js';
import {
  MAX_HEADER_BYTES,
  type ParseOptions,
  type SafetensorsFile,
  type SafetensorsHeader,
  type SafetensorsTensor,
  parseSafetensors,
  parseSafetensorsHeader,
  serializeSafetensors,
} from './safetensors.js';
import { type TfjsLayersModel, parseTfjsLayersModel } from './tfjs-layers.js';

/** The bytes of a file, or a GraftError naming it when it does not exist. */
export function readFileBytes(path: string, what = 'file'): Uint8Array {
  if (!existsSync(path) || !statSync(path).isFile()) throw new GraftError(`${what} not found: ${path}.`);
  return readFileSync(path);
}

/** Writes `bytes` to `path` atomically: temporary file in the same folder, fsync, rename. Creates the folder. */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  const folder = dirname(resolve(path));
  mkdirSync(folder, { recursive: true });
  const temporary = join(folder, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(temporary, 'wx', 0o644);
  try {
    for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(temporary, path);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    rmSync(temporary, { force: true });
    throw e;
  }
  // Make the rename itself durable. Opening a folder fails on some platforms (Windows); the file is complete anyway.
  try {
    const dirFd = openSync(folder, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  } catch {
    // best effort, see above
  }
}

export function readSafetensorsFile(path: string, options: ParseOptions = {}): SafetensorsFile {
  return parseSafetensors(readFileBytes(path, 'safetensors file'), path, options);
}

/** The validated header (names, dtypes, shapes, metadata) of a safetensors file, reading only the header's bytes. */
export function readSafetensorsHeaderFile(path: string): SafetensorsHeader {
  if (!existsSync(path)) throw new GraftError(`safetensors file not found: ${path}.`);
  const fd = openSync(path, 'r');
  try {
    const fileLength = fstatSync(fd).size;
    const readAt = (length: number) => {
      const out = new Uint8Array(length);
      for (let at = 0; at < length; ) {
        const n = readSync(fd, out, at, length - at, at);
        if (n === 0) break;
        at += n;
      }
      return out;
    };
    const lengthField = readAt(Math.min(8, fileLength));
    if (lengthField.length < 8) return parseSafetensorsHeader(lengthField, fileLength, path); // throws: too short
    // Validate the declared length against the file before reading that many bytes.
    const declared = new DataView(lengthField.buffer).getBigUint64(0, true);
    if (declared > BigInt(fileLength - 8) || declared > BigInt(MAX_HEADER_BYTES)) return parseSafetensorsHeader(lengthField, fileLength, path); // throws
    return parseSafetensorsHeader(readAt(Math.min(8 + Number(declared), fileLength)), fileLength, path);
  } finally {
    closeSync(fd);
  }
}

/** Serialises and writes atomically; returns the number of bytes written. */
export function writeSafetensorsFile(
  path: string,
  tensors: Map<string, SafetensorsTensor> | Record<string, SafetensorsTensor>,
  metadata: Record<string, string> = {},
): number {
  const bytes = serializeSafetensors(tensors, metadata);
  writeFileAtomic(path, bytes);
  return bytes.length;
}

/** A TF.js layers model from its model.json; the shards are read from the same folder. */
export function readTfjsLayersModelFile(modelJsonPath: string): TfjsLayersModel {
  const folder = dirname(modelJsonPath);
  return parseTfjsLayersModel(
    readFileBytes(modelJsonPath, 'model.json'),
    (shard) => {
      const path = join(folder, shard);
      return existsSync(path) && statSync(path).isFile() ? readFileSync(path) : undefined; // a folder is no shard
    },
    modelJsonPath,
  );
}
