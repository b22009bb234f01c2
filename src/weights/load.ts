/**
 * Loading named weights into a model (and saving them). Every weight of the model is looked up by its Keras key
 * (`conv1_conv/kernel`), and every problem is collected before anything is written: weights the file lacks,
 * weights the model does not have, shapes that differ, dtypes that are not floats. One error lists them all by
 * name, and the model is left untouched, so a bad file never leaves a half-loaded model behind.
 */
import { GraftFormatError } from '../errors.js';
import { write } from '../tensor/create.js';
import type { Layer } from '../nn/layer.js';
import { f16BitsToF32, bf16BitsToF32, type SafetensorsTensor } from './safetensors.js';

export interface LoadOptions {
  /** Tolerate tensors in the file that the model does not use (e.g. a classifier when loading a base). */
  allowUnused?: boolean;
  /** Tolerate model weights that the file lacks (they keep their initial values). */
  allowMissing?: boolean;
}

export interface LoadReport {
  loaded: string[];
  missing: string[];
  unused: string[];
}

function asFloats(t: SafetensorsTensor): Float32Array | null {
  switch (t.dtype) {
    case 'F32': return t.data;
    case 'F16': return f16BitsToF32(t.data);
    case 'BF16': return bf16BitsToF32(t.data);
    default: return null;
  }
}

/** Assigns `tensors` (by Keras key) to the weights of `model`; `source` names the file in errors. */
export function loadWeights(model: Layer, tensors: ReadonlyMap<string, SafetensorsTensor>, source: string, options: LoadOptions = {}): LoadReport {
  const problems: string[] = [];
  const weights = model.weights;
  const keys = new Set(weights.map((w) => w.key));
  const missing = weights.filter((w) => !tensors.has(w.key)).map((w) => w.key);
  const unused = [...tensors.keys()].filter((k) => !keys.has(k));
  if (missing.length && !options.allowMissing) problems.push(`missing from the file (${missing.length}): ${list(missing)}`);
  if (unused.length && !options.allowUnused) problems.push(`not weights of ${model.name} (${unused.length}): ${list(unused)}`);
  const plan: Array<{ w: (typeof weights)[number]; data: Float32Array }> = [];
  for (const w of weights) {
    const t = tensors.get(w.key);
    if (!t) continue;
    const expected = w.value.shape;
    if (t.shape.length !== expected.length || t.shape.some((d, i) => d !== expected[i])) {
      problems.push(`${w.key}: shape [${t.shape.join(', ')}] in the file, [${expected.join(', ')}] in the model`);
      continue;
    }
    const data = asFloats(t);
    if (!data) {
      problems.push(`${w.key}: dtype ${t.dtype} in the file, expected F32, F16 or BF16`);
      continue;
    }
    plan.push({ w, data });
  }
  if (problems.length) {
    throw new GraftFormatError(`${source}: cannot load into ${model.name}:\n  - ${problems.join('\n  - ')}`);
  }
  // Written into the existing tensors, so an optimizer that already holds them keeps working.
  for (const { w, data } of plan) write(w.value, data);
  return { loaded: plan.map((p) => p.w.key), missing, unused };
}

/** The model's weights as safetensors entries (read back from the GPU). */
export async function modelTensors(model: Layer): Promise<Map<string, SafetensorsTensor>> {
  const out = new Map<string, SafetensorsTensor>();
  for (const w of model.weights) out.set(w.key, { dtype: 'F32', shape: [...w.value.shape], data: await w.value.floats() });
  return out;
}

function list(names: string[]): string {
  return names.length <= 12 ? names.join(', ') : `${names.slice(0, 12).join(', ')}, … and ${names.length - 12} more`;
}
