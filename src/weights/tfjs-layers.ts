/**
 * TF.js layers models: `model.json` plus binary weight shards, as written by tensorflowjs_converter for a Keras
 * model (format "layers-model"). Pure: the caller hands over the bytes of model.json and a function that returns
 * the bytes of a shard, so the same code reads a folder (files.ts) or the inside of a tarball (convert.ts).
 *
 * model.json holds
 *   modelTopology    the Keras model config; its layer list ({class_name, config: {name, …}}) is returned, since
 *                    some facts the weights need are only there (BatchNormalization's epsilon, strides)
 *   weightsManifest  groups of {paths: [shard files], weights: [{name, shape, dtype}]}
 *
 * The weights of one group are stored back to back, in manifest order, across the group's shards taken in
 * order: the shards are only a byte stream cut into pieces (4 MB each, here), and a weight may straddle two.
 * So each group's shards are concatenated and sliced in manifest order. The shards' total size must equal the
 * sum of the weights' sizes exactly; quantized weights (`quantization`) are refused, not guessed at.
 */
import { GraftFormatError } from '../errors.js';
import type { SafetensorsTensor } from './safetensors.js';

export type TfjsDtype = 'float32' | 'int32' | 'bool';

export type TfjsWeight =
  | { name: string; shape: number[]; dtype: 'float32'; data: Float32Array }
  | { name: string; shape: number[]; dtype: 'int32'; data: Int32Array }
  | { name: string; shape: number[]; dtype: 'bool'; data: Uint8Array };

export interface TfjsLayer {
  className: string;
  name: string;
  config: Record<string, unknown>;
}

export interface TfjsLayersModel {
  /** In manifest order. */
  weights: TfjsWeight[];
  /** The model topology's top-level layers, in order ([] when model.json has no topology). */
  layers: TfjsLayer[];
  /** model.json's own description of where it came from, e.g. "keras v2.2.4-tf", when present. */
  generatedBy?: string;
  convertedBy?: string;
}

const DTYPE_BYTES: Record<TfjsDtype, number> = { float32: 4, int32: 4, bool: 1 };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = Array.isArray(v) ? '[...] (nested too deeply to show)' : '{...} (nested too deeply to show)'; // JSON.stringify's stack ran out
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** A shard path must stay inside the model's folder: relative, no '..', no URL. */
function checkShardPath(path: unknown, fail: (p: string) => never): string {
  if (typeof path !== 'string' || path === '') return fail(`a shard path must be a non-empty string, got ${show(path)}`);
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(path) || path.startsWith('/') || path.startsWith('\\') || path.split(/[\\/]/).includes('..')) {
    return fail(`shard path '${path}' must be a relative path inside the model's folder`);
  }
  return path;
}

/** The top-level layers of a Keras model config, whichever of the usual wrappings it comes in. */
function layersOf(topology: unknown, fail: (p: string) => never): TfjsLayer[] {
  if (topology === undefined || topology === null) return [];
  if (!isPlainObject(topology)) return fail(`modelTopology must be an object, got ${show(topology)}`);
  const model = isPlainObject(topology.model_config) ? topology.model_config : topology; // Keras-saved vs TF.js-saved
  const config = model.config;
  const list = Array.isArray(config) ? config : isPlainObject(config) ? config.layers : undefined; // old Sequential: a list
  if (!Array.isArray(list)) return fail('modelTopology has no layer list (expected model_config.config.layers)');
  return list.map((layer, i) => {
    if (!isPlainObject(layer) || typeof layer.class_name !== 'string' || !isPlainObject(layer.config)) {
      return fail(`modelTopology layer ${i} must be {class_name, config}, got ${show(layer)}`);
    }
    const name = typeof layer.name === 'string' ? layer.name : layer.config.name;
    if (typeof name !== 'string') return fail(`modelTopology layer ${i} (${layer.class_name}) has no name`);
    return { className: layer.class_name, name, config: layer.config };
  });
}

/**
 * Parses a TF.js layers model. `readShard(path)` returns the bytes of a shard named in the manifest (a path
 * relative to model.json's folder), or undefined when there is no such file. `source` names model.json in errors.
 */
export function parseTfjsLayersModel(
  modelJson: Uint8Array | string,
  readShard: (path: string) => Uint8Array | undefined,
  source: string,
): TfjsLayersModel {
  const fail: (problem: string) => never = (problem) => {
    throw new GraftFormatError(`${source}: ${problem}.`);
  };
  let json: unknown;
  try {
    json = JSON.parse(typeof modelJson === 'string' ? modelJson : new TextDecoder().decode(modelJson));
  } catch (e) {
    return fail(`not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(json)) return fail(`expected a JSON object, got ${show(json)}`);
  if (json.format !== undefined && json.format !== 'layers-model') {
    fail(`format ${show(json.format)} is not supported; Graft reads TF.js layers models ("layers-model"), not graph models`);
  }
  const manifest = json.weightsManifest;
  if (!Array.isArray(manifest)) return fail('weightsManifest is missing or not a list');

  const weights: TfjsWeight[] = [];
  const names = new Set<string>();
  manifest.forEach((group: unknown, g) => {
    const where = `weightsManifest group ${g + 1}`;
    if (!isPlainObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      fail(`${where} must be {paths: [...], weights: [...]}, got ${show(group)}`);
    }
    const { paths, weights: specs } = group as { paths: unknown[]; weights: unknown[] };

    // Sizes first, from the manifest alone, so nothing is allocated for a malformed one.
    const layout = specs.map((spec) => {
      if (!isPlainObject(spec) || typeof spec.name !== 'string') return fail(`${where}: each weight must be {name, shape, dtype}, got ${show(spec)}`);
      const { name, shape, dtype } = spec;
      if (names.has(name)) fail(`weight '${name}' is listed twice`);
      names.add(name);
      if (spec.quantization !== undefined) {
        fail(`weight '${name}' is quantized (${show(spec.quantization)}); quantized TF.js weights are not supported: convert the model without quantization`);
      }
      if (typeof dtype !== 'string' || !Object.prototype.hasOwnProperty.call(DTYPE_BYTES, dtype)) {
        fail(`weight '${name}': unknown dtype ${show(dtype)} (supported: float32, int32, bool)`);
      }
      if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
        fail(`weight '${name}': shape must be a list of non-negative integers, got ${show(shape)}`);
      }
      const count = (shape as number[]).reduce((a, b) => a * b, 1);
      if (!Number.isSafeInteger(count)) fail(`weight '${name}': shape [${(shape as number[]).join(', ')}] is too large`);
      return { name, shape: [...(shape as number[])], dtype: dtype as TfjsDtype, bytes: count * DTYPE_BYTES[dtype as TfjsDtype] };
    });
    const needed = layout.reduce((n, w) => n + w.bytes, 0);

    const shards = paths.map((p) => {
      const path = checkShardPath(p, fail);
      const bytes = readShard(path);
      if (bytes === undefined) fail(`weight shard '${path}' (${where}) is missing`);
      return bytes!;
    });
    const total = shards.reduce((n, s) => n + s.length, 0);
    if (total !== needed) {
      fail(`${where} (${paths.join(', ')}): its ${layout.length} weights need ${needed} bytes but the shards hold ${total} (expected ${needed}, actual ${total})`);
    }

    const stream = new Uint8Array(total);
    let at = 0;
    for (const s of shards) {
      stream.set(s, at);
      at += s.length;
    }
    let offset = 0;
    for (const w of layout) {
      const buffer = stream.slice(offset, offset + w.bytes).buffer; // a copy, so its start is aligned
      offset += w.bytes;
      if (w.dtype === 'float32') weights.push({ name: w.name, shape: w.shape, dtype: 'float32', data: new Float32Array(buffer) });
      else if (w.dtype === 'int32') weights.push({ name: w.name, shape: w.shape, dtype: 'int32', data: new Int32Array(buffer) });
      else weights.push({ name: w.name, shape: w.shape, dtype: 'bool', data: new Uint8Array(buffer) });
    }
  });

  return {
    weights,
    layers: layersOf(json.modelTopology, fail),
    ...(typeof json.generatedBy === 'string' ? { generatedBy: json.generatedBy } : {}),
    ...(typeof json.convertedBy === 'string' ? { convertedBy: json.convertedBy } : {}),
  };
}

/** The epsilon of the model's BatchNormalization layers: undefined when it has none; an error if they differ. */
export function batchNormEpsilon(layers: readonly TfjsLayer[], source: string): number | undefined {
  const values = new Set<unknown>(layers.filter((l) => l.className === 'BatchNormalization').map((l) => l.config.epsilon));
  if (values.size === 0) return undefined;
  const [only] = values;
  if (values.size > 1 || typeof only !== 'number' || !(only > 0)) {
    throw new GraftFormatError(`${source}: the BatchNormalization layers' epsilons must be one positive number, got ${show([...values])}.`);
  }
  return only;
}

/** A TF.js weight as a safetensors tensor (float32 → F32, int32 → I32, bool → U8); the data is shared, not copied. */
export function tfjsWeightToTensor(w: TfjsWeight): SafetensorsTensor {
  switch (w.dtype) {
    case 'float32':
      return { dtype: 'F32', shape: w.shape, data: w.data };
    case 'int32':
      return { dtype: 'I32', shape: w.shape, data: w.data };
    case 'bool':
      return { dtype: 'U8', shape: w.shape, data: w.data };
  }
}

/**
 * The archive path of a shard named in the manifest of the model.json in `folder` ("package/ResNet50/"):
 * '.' segments and doubled slashes dropped. parseTfjsLayersModel has already refused '..' and absolute paths.
 */
export function shardPathIn(folder: string, shard: string): string {
  return `${folder}/${shard}`
    .split(/[\\/]+/)
    .filter((p) => p !== '' && p !== '.')
    .join('/');
}
