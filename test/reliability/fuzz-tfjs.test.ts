/**
 * Fuzzing the TF.js layers model loader: model.json with its binary weight shards, read from bytes
 * (parseTfjsLayersModel), from a folder on disk (readTfjsLayersModelFile), and from inside an npm tarball
 * (convertTarball, which goes through the tar reader).
 *
 * The property, for every input: the loader returns a well-formed model (each weight's data holds exactly
 * as many values as its shape says) or throws a GraftError whose message names the file; never another
 * exception, never a hang, and no allocation driven by a size the file declares. Inputs:
 *   - model.json as bytes, mutated: bit flips, truncation, insertion, overwritten stretches, garbage;
 *   - model.json as structure, mutated: a random field of the manifest or topology (shape, dtype, paths,
 *     name, a whole weight entry, a group) replaced by a random or a hostile value (huge, negative,
 *     fractional or non-numeric dimensions, unknown dtypes, escaping or empty shard paths);
 *   - shards: one missing, or one cut short or lengthened (the wrong byte count);
 *   - the tarball holding all of it, mutated before and after gzip.
 * Targeted tests check the messages (missing shard, wrong byte count with expected and actual sizes) and
 * that a manifest declaring terabytes of weights is refused at once, without allocating.
 *
 * No GPU is needed. Run: npx vitest run test/reliability/fuzz-tfjs.test.ts
 * GRAFT_FUZZ_RUNS (default 200) sets the runs per property.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, describe, expect, test } from 'vitest';
import { GraftError, GraftFormatError } from '../../src/errors.js';
import { convertTarball } from '../../src/weights/convert.js';
import { readTfjsLayersModelFile } from '../../src/weights/files.js';
import { type TfjsLayersModel, parseTfjsLayersModel } from '../../src/weights/tfjs-layers.js';
import { tinyTfjsModel } from '../weights/fixtures.js';

const RUNS = Number(process.env.GRAFT_FUZZ_RUNS ?? 200);
const SLOW_MS = 2000;
const SOURCE = 'fuzz/model.json';

type ModelJson = ReturnType<typeof tinyTfjsModel>['modelJson'];
const encode = (s: string) => new TextEncoder().encode(s);

/** Inputs tried by each property, counted so that the README can report them. */
const tried: Record<string, number> = {};
const count = (what: string) => {
  tried[what] = (tried[what] ?? 0) + 1;
};
afterAll(() => {
  console.log(`fuzz-tfjs inputs tried: ${JSON.stringify(tried)}`);
});

function wellFormed(model: TfjsLayersModel): void {
  for (const w of model.weights) expect(w.data.length).toBe(w.shape.reduce((a, b) => a * b, 1));
}

/** Runs `load`; it must return a well-formed model or throw a GraftError naming `source`, quickly. */
function loadsOrRefuses(load: () => TfjsLayersModel | undefined, source: string): 'ok' | 'refused' {
  const started = performance.now();
  let outcome: 'ok' | 'refused';
  try {
    const model = load();
    if (model) wellFormed(model);
    outcome = 'ok';
  } catch (e) {
    if (!(e instanceof GraftError)) throw e;
    expect(e.message, e.message).toContain(source);
    outcome = 'refused';
  }
  expect(performance.now() - started).toBeLessThan(SLOW_MS);
  return outcome;
}

const parseBytes = (json: Uint8Array | string, shards: Record<string, Uint8Array>) =>
  parseTfjsLayersModel(json, (p) => (Object.prototype.hasOwnProperty.call(shards, p) ? shards[p] : undefined), SOURCE);

// ---------------------------------------------------------------------------------------------------------
// Byte mutations (as in fuzz-decoders.test.ts)

type Mutation =
  | { kind: 'flip'; bits: Array<[number, number]> }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'overwrite'; at: number; bytes: Uint8Array }
  | { kind: 'garbage'; bytes: Uint8Array };

const posArb = fc.nat({ max: 1 << 20 });
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), bits: fc.array(fc.tuple(posArb, fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: posArb }),
  fc.record({ kind: fc.constant('insert' as const), at: posArb, bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }) }),
  fc.record({ kind: fc.constant('overwrite' as const), at: posArb, bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ kind: fc.constant('garbage' as const), bytes: fc.uint8Array({ maxLength: 512 }) }),
);

function mutate(base: Uint8Array, m: Mutation): Uint8Array {
  const n = base.length;
  switch (m.kind) {
    case 'flip': {
      const out = base.slice();
      for (const [at, bit] of m.bits) if (n) out[at % n]! ^= 1 << bit;
      return out;
    }
    case 'truncate':
      return base.slice(0, m.at % (n + 1));
    case 'insert': {
      const at = m.at % (n + 1);
      return new Uint8Array([...base.subarray(0, at), ...m.bytes, ...base.subarray(at)]);
    }
    case 'overwrite': {
      const out = base.slice();
      const at = n ? m.at % n : 0;
      out.set(m.bytes.subarray(0, Math.max(0, n - at)), at);
      return out;
    }
    case 'garbage':
      return m.bytes;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Structural mutations of model.json

/** Values a hostile or broken converter might put anywhere. */
const hostileArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom<unknown>(
    [1e9, 1e9, 1e9], // terabytes of float32
    [2 ** 53, 2],
    [-1],
    [1.5],
    ['2', 3],
    [Infinity],
    [],
    [0, 7],
    'float64',
    'string',
    'complex64',
    '',
    '../secret.bin',
    '/etc/passwd',
    'https://example.com/x.bin',
    '.',
    'C:\\x.bin',
    null,
    { scale: 1, min: 0, dtype: 'uint8' },
    ['group1-shard1of2.bin', 'group1-shard1of2.bin'],
    ['no-such-shard.bin'],
  ),
);

/** Every path (list of keys) to a value inside `v`, the root included. */
function pathsOf(v: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out = [prefix];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...pathsOf(x, [...prefix, i])));
  else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) out.push(...pathsOf(x, [...prefix, k]));
  return out;
}

/** `model` with the value at `path` replaced (or deleted, when `value` is the symbol). */
function replaced(model: ModelJson, path: Array<string | number>, value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(model) as unknown as Record<string | number, unknown>;
  let at: Record<string | number, unknown> = copy;
  for (const k of path.slice(0, -1)) at = at[k] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (value === DELETE) {
    if (Array.isArray(at)) at.splice(last as number, 1);
    else delete at[last];
  } else at[last] = value;
  return copy;
}
const DELETE = Symbol('delete');

// ---------------------------------------------------------------------------------------------------------
// A tarball writer (ustar, regular files only)

function tarOf(files: Record<string, Uint8Array>): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const [name, body] of Object.entries(files)) {
    const h = new Uint8Array(512);
    h.set(encode(name).subarray(0, 100), 0);
    h.set(encode(body.length.toString(8).padStart(11, '0')), 124);
    h[156] = 0x30;
    const padded = new Uint8Array(Math.ceil(body.length / 512) * 512);
    padded.set(body);
    blocks.push(h, padded);
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

const noLog = () => {};

// ---------------------------------------------------------------------------------------------------------

describe('TF.js layers model: targeted faults', () => {
  const { modelJson, shards } = tinyTfjsModel();
  const text = JSON.stringify(modelJson);

  test('the unmutated model loads (the fuzzing starts from a valid file)', () => {
    expect(parseBytes(text, shards).weights.length).toBe(4);
  });

  test('each missing shard is named, with the model.json it belongs to', () => {
    for (const missing of Object.keys(shards)) {
      const rest = { ...shards };
      delete rest[missing];
      expect(() => parseBytes(text, rest)).toThrow(GraftFormatError);
      expect(() => parseBytes(text, rest)).toThrow(new RegExp(`^fuzz/model\\.json: weight shard '${missing.replace(/\./g, '\\.')}' \\(weightsManifest group \\d\\) is missing`));
      count('missing shard');
    }
  });

  test('a shard of the wrong byte count names the expected and the actual sizes', () => {
    for (const name of Object.keys(shards)) {
      for (const delta of [-1, 1, -shards[name]!.length, 4096]) {
        const changed = { ...shards, [name]: new Uint8Array(Math.max(0, shards[name]!.length + delta)) };
        const group = name.startsWith('group1') ? 60 : 3;
        const actual = group + Math.max(-shards[name]!.length, delta);
        expect(() => parseBytes(text, changed)).toThrow(new RegExp(`^fuzz/model\\.json: .*need ${group} bytes but the shards hold ${actual} \\(expected ${group}, actual ${actual}\\)`));
        count('wrong byte count');
      }
    }
  });

  test('a manifest declaring terabytes is refused at once, allocating nothing', () => {
    const huge = structuredClone(modelJson);
    huge.weightsManifest[0]!.weights[0]!.shape = [65536, 65536, 65536];
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    expect(() => parseBytes(JSON.stringify(huge), shards)).toThrow(/fuzz\/model\.json: .*need \d+ bytes but the shards hold 60/);
    expect(performance.now() - started).toBeLessThan(500);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * 2 ** 20);
    const overflow = structuredClone(modelJson);
    overflow.weightsManifest[0]!.weights[0]!.shape = [2 ** 40, 2 ** 40];
    expect(() => parseBytes(JSON.stringify(overflow), shards)).toThrow(/fuzz\/model\.json: weight 'dense\/kernel': shape \[1099511627776, 1099511627776\] is too large/);
    count('huge declared shape');
  });

  test('JSON nested 100000 deep is refused with a GraftFormatError, not a stack overflow', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    expect(() => parseBytes(`{"weightsManifest":[${deep}]}`, shards)).toThrow(/^fuzz\/model\.json: weightsManifest group 1 must be .*nested too deeply to show/);
    expect(() => parseBytes(`{"weightsManifest":[],"modelTopology":{"config":[${deep}]}}`, shards)).toThrow(/^fuzz\/model\.json: modelTopology layer 0 must be/);
    count('deeply nested JSON');
  });

  test('wrong dtypes, shapes and shard paths are refused with what was found', () => {
    const withWeight = (patch: Record<string, unknown>) => {
      const m = structuredClone(modelJson) as unknown as { weightsManifest: Array<{ weights: Array<Record<string, unknown>>; paths: unknown[] }> };
      Object.assign(m.weightsManifest[1]!.weights[0]!, patch);
      return JSON.stringify(m);
    };
    expect(() => parseBytes(withWeight({ dtype: 'float64' }), shards)).toThrow(/^fuzz\/model\.json: weight 'mask': unknown dtype "float64" \(supported: float32, int32, bool\)/);
    expect(() => parseBytes(withWeight({ shape: [-3] }), shards)).toThrow(/weight 'mask': shape must be a list of non-negative integers, got \[-3\]/);
    expect(() => parseBytes(withWeight({ shape: [4] }), shards)).toThrow(/need 4 bytes but the shards hold 3 \(expected 4, actual 3\)/);
    expect(() => parseBytes(withWeight({ name: 'steps' }), shards)).toThrow(/weight 'steps' is listed twice/);
    const withPaths = (paths: unknown[]) => {
      const m = structuredClone(modelJson) as unknown as { weightsManifest: Array<{ paths: unknown[] }> };
      m.weightsManifest[1]!.paths = paths;
      return JSON.stringify(m);
    };
    for (const p of ['../group2-shard1of1.bin', '/tmp/x.bin', 'file:///etc/passwd', '']) {
      expect(() => parseBytes(withPaths([p]), { ...shards, [p]: shards['group2-shard1of1.bin']! }), p).toThrow(GraftFormatError);
    }
    count('targeted manifest fault');
  });
});

describe('TF.js layers model: fuzzed', () => {
  const { modelJson, shards } = tinyTfjsModel();
  const bytes = encode(JSON.stringify(modelJson));
  const allPaths = pathsOf(modelJson).filter((p) => p.length > 0);
  const manifestPaths = allPaths.filter((p) => p[0] === 'weightsManifest');

  test('mutated model.json bytes: loads or throws a GraftError naming the file', () => {
    fc.assert(
      fc.property(mutationArb, (m) => {
        count('model.json bytes');
        loadsOrRefuses(() => parseBytes(mutate(bytes, m), shards), SOURCE);
      }),
      { numRuns: RUNS },
    );
  });

  test('a random field of model.json replaced or deleted (manifest fields three times as often)', () => {
    const pathArb = fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...manifestPaths) },
      { weight: 1, arbitrary: fc.constantFrom(...allPaths) },
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(pathArb, fc.oneof(hostileArb, fc.constant(DELETE))), { minLength: 1, maxLength: 3 }), (edits) => {
        count('model.json fields');
        let m: unknown = modelJson;
        for (const [path, value] of edits) {
          try {
            m = replaced(m as ModelJson, path, value);
          } catch {
            // an earlier edit removed the parent of this path: skip it
          }
        }
        loadsOrRefuses(() => parseBytes(JSON.stringify(m), shards), SOURCE);
      }),
      { numRuns: RUNS },
    );
  });

  test('shards missing, cut short, lengthened or mutated', () => {
    const names = Object.keys(shards);
    fc.assert(
      fc.property(
        fc.constantFrom(...names),
        fc.oneof(fc.constant('missing' as const), fc.integer({ min: -40, max: 40 }), mutationArb),
        (name, fault) => {
          count('shards');
          const changed = { ...shards };
          if (fault === 'missing') delete changed[name];
          else if (typeof fault === 'number') changed[name] = new Uint8Array(Math.max(0, shards[name]!.length + fault)).fill(7);
          else changed[name] = mutate(shards[name]!, fault);
          const lengthChanged = changed[name]?.length !== shards[name]!.length;
          const outcome = loadsOrRefuses(() => parseBytes(bytes, changed), SOURCE);
          expect(outcome).toBe(lengthChanged ? 'refused' : 'ok');
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('TF.js layers model on disk and in a tarball', () => {
  const root = mkdtempSync(join(tmpdir(), 'graft-fuzz-tfjs-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const { modelJson, shards } = tinyTfjsModel();
  const json = encode(JSON.stringify(modelJson));

  let folders = 0;
  /** A fresh folder holding model.json and the shards. */
  function folderWith(modelBytes: Uint8Array, files: Record<string, Uint8Array>): string {
    const dir = join(root, `m${folders++}`);
    mkdirSync(dir);
    writeFileSync(join(dir, 'model.json'), modelBytes);
    for (const [name, b] of Object.entries(files)) writeFileSync(join(dir, name), b);
    return join(dir, 'model.json');
  }

  test('from a folder: missing model.json, missing shard, a folder where a shard should be', () => {
    const ok = folderWith(json, shards);
    expect(readTfjsLayersModelFile(ok).weights.length).toBe(4);
    expect(() => readTfjsLayersModelFile(join(root, 'nowhere', 'model.json'))).toThrow(/model\.json not found: .*nowhere/);
    const rest = { ...shards };
    delete rest['group1-shard2of2.bin'];
    const missing = folderWith(json, rest);
    expect(() => readTfjsLayersModelFile(missing)).toThrow(GraftFormatError);
    expect(() => readTfjsLayersModelFile(missing)).toThrow(`${missing}: weight shard 'group1-shard2of2.bin' (weightsManifest group 1) is missing`);
    // A shard path naming a folder ('.', or a real sub-folder) is a missing shard, not an EISDIR crash.
    for (const shard of ['.', 'sub', 'sub/']) {
      const m = structuredClone(modelJson);
      m.weightsManifest[1]!.paths = [shard];
      const path = folderWith(encode(JSON.stringify(m)), shards);
      mkdirSync(join(path, '..', 'sub'));
      expect(() => readTfjsLayersModelFile(path), shard).toThrow(GraftFormatError);
      expect(() => readTfjsLayersModelFile(path), shard).toThrow(/is missing/);
    }
    count('on disk');
  });

  test('from a folder: mutated model.json and shards', () => {
    fc.assert(
      fc.property(mutationArb, fc.constantFrom(...Object.keys(shards)), mutationArb, (m, shard, ms) => {
        count('on disk');
        const path = folderWith(mutate(json, m), { ...shards, [shard]: mutate(shards[shard]!, ms) });
        loadsOrRefuses(() => readTfjsLayersModelFile(path), path);
        rmSync(join(path, '..'), { recursive: true, force: true });
      }),
      { numRuns: Math.max(10, Math.round(RUNS / 4)) },
    );
  });

  test('an npm tarball holding the model, mutated before or after gzip', () => {
    const files: Record<string, Uint8Array> = {
      'package/package.json': encode('{"name":"tiny-model","version":"1.0.0"}'),
      'package/model/model.json': json,
    };
    for (const [name, b] of Object.entries(shards)) files[`package/model/${name}`] = b;
    const tar = tarOf(files);
    const tgz = gzipSync(tar);
    const archive = 'fuzz/tiny-model-1.0.0.tgz';
    const converted = convertTarball(archive, tgz, 'sha', noLog);
    expect([...converted.tensors.keys()]).toEqual(['dense/kernel', 'steps', 'bn/gamma', 'mask']);
    fc.assert(
      fc.property(fc.boolean(), mutationArb, (beforeGzip, m) => {
        count('tarball');
        const input = beforeGzip ? gzipSync(mutate(tar, m)) : mutate(tgz, m);
        const started = performance.now();
        try {
          const out = convertTarball(archive, input, 'sha', noLog);
          for (const t of out.tensors.values()) expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
        } catch (e) {
          if (!(e instanceof GraftError)) throw e;
          expect(e.message, e.message).toContain(archive);
        }
        expect(performance.now() - started).toBeLessThan(SLOW_MS);
      }),
      { numRuns: RUNS },
    );
  });
});
