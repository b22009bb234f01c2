/**
 * Keras .h5 weight files (HDF5), as `model.save_weights('w.h5')` and `model.save('m.h5')` write them and as the
 * Keras applications publish them (vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5, …). Pure: bytes in,
 * safetensors tensors out. HDF5 itself (superblock, object headers, B-trees, heaps, chunking, gzip) is parsed
 * by jsfive, a pure-JavaScript HDF5 reader; this file knows only the Keras layout on top of it:
 *
 *   /                                 attribute layer_names = ['block1_conv1', 'block1_conv2', 'block1_pool', …]
 *   /<layer>                          a group, attribute weight_names = ['block1_conv1/kernel:0', 'block1_conv1/bias:0']
 *   /<layer>/<weight name>            the dataset: the weight name, ':0' included, is its path inside the layer's
 *                                     group, so in Keras 2 files it is /block1_conv1/block1_conv1/kernel:0
 *
 * A full model (`model.save('m.h5')`) keeps the same under the group /model_weights. Layers without weights
 * (pooling, flatten) have an empty weight_names. An attribute too large for an HDF5 object header is split by
 * Keras into layer_names0, layer_names1, …, which are read and joined. Strings are fixed-length and NUL-padded.
 *
 * Tensors are named `<layer>/<weight>` (Graft's Keras keys): the weight name with ':0' removed, prefixed with the
 * layer when it does not already start with it (old Keras 1 names such as `dense_W:0`). They come back in file
 * order (layer_names, then weight_names). float32 is kept, float64 rounded to float32; any other element type is
 * refused by name.
 *
 * Reading is bounded by the file, never by what it declares, and a corrupt file cannot make it hang:
 *   - the superblock's end-of-file address is checked first, so a truncated file says so;
 *   - each dataset's declared size must fit the file (or, gzip-compressed, 1032 times it: deflate's limit);
 *   - contiguous datasets (what Keras writes) are copied straight from the file bytes, at the address in their
 *     data layout message, after checking that it lies inside the file; jsfive's own reader, which builds a
 *     JavaScript array element by element, is used only for chunked datasets, once their chunk shape is
 *     checked against the dataset's (jsfive loops over every element of every chunk);
 *   - attribute counts are bounded before jsfive allocates for them (boundAttributeReads).
 *
 * Any problem (the bytes are not HDF5, jsfive fails, an attribute or a dataset is missing, a shape is not a list
 * of counts) is a GraftFormatError naming the file and what was wrong.
 */
import * as hdf5 from 'jsfive';
import { ArgumentError, GraftFormatError } from '../errors.js';
import { type ConvertedWeights, IMAGENET_MEANS_BGR } from './resnet50-imagenet.js';
import { legacyResnet50ToKeras, resnet50KerasWeightNames } from './resnet50-names.js';
import type { SafetensorsTensor } from './safetensors.js';

export type F32Tensor = Extract<SafetensorsTensor, { dtype: 'F32' }>;

export interface KerasH5Weights {
  /** `layer/weight` → tensor, in file order. */
  tensors: Map<string, F32Tensor>;
  /** The layers, in file order, those without weights included. */
  layers: string[];
  /** What the file says about itself: keras_version, backend, and where the weights were (keras_h5_layout). */
  metadata: Record<string, string>;
}

/** The most a deflate stream can inflate: 1032 output bytes per input byte (zlib's technical limit). */
const MAX_DEFLATE_RATIO = 1032;

const FLOAT_ITEM_BYTES: Record<string, number> = { '<f4': 4, '>f4': 4, '<f8': 8, '>f8': 8 };

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A description of a jsfive failure: it throws Errors and plain strings. */
function reason(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.length > 200 ? `${text.slice(0, 197)}...` : text;
}

function show(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

const unpad = (s: string) => s.replace(/\0+$/, '');

/**
 * A string-list attribute, joined from its pieces `name0`, `name1`, … when Keras split it; undefined when the
 * object has neither.
 */
function stringListAttribute(attrs: Record<string, unknown>, name: string, where: string, fail: (p: string) => never): string[] | undefined {
  const pieces: unknown[] = [];
  if (name in attrs) pieces.push(attrs[name]);
  else for (let i = 0; `${name}${i}` in attrs; i++) pieces.push(attrs[`${name}${i}`]);
  if (pieces.length === 0) return undefined;
  const out: string[] = [];
  for (const piece of pieces) {
    const list = typeof piece === 'string' ? [piece] : piece;
    if (!Array.isArray(list) || !list.every((s) => typeof s === 'string')) return fail(`${where}: attribute ${name} must be a list of strings, got ${show(piece)}`);
    out.push(...list.map(unpad));
  }
  return out;
}

/**
 * The superblock at the start of an HDF5 file records the file's length (its end-of-file address), so a
 * truncated file can be told from a corrupt one before anything else is read. Version 0 and 1 superblocks
 * hold it after 24 or 28 bytes of fields and two addresses, versions 2 and 3 after 12 bytes and two addresses.
 */
function checkNotTruncated(bytes: Uint8Array, fail: (problem: string) => never): void {
  const magic = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length < 9 || !magic.every((b, i) => bytes[i] === b)) return; // jsfive reports it
  const version = bytes[8]!;
  const offsetSize = version <= 1 ? bytes[13] : bytes[9];
  const at = version === 0 ? 24 + 16 : version === 1 ? 28 + 16 : version <= 3 ? 12 + 16 : -1;
  if (at < 0 || offsetSize !== 8 || bytes.length < at + 8) return;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const base = view.getBigUint64(at - 16, true);
  const end = base + view.getBigUint64(at, true);
  if (end > BigInt(bytes.length)) fail(`the file is truncated: its superblock says it is ${end} bytes long, but it has ${bytes.length}`);
}

/**
 * jsfive reads an attribute's values into `new Array(count)`, with `count` taken from the file before anything
 * checks it, and for zero-size element types it never runs past the end of the buffer: a corrupt count then
 * fills memory until the process dies. Attribute values are stored inside the file, so no attribute can hold
 * more values than the buffer has bytes; this wraps jsfive's reader (once, on the class of its data objects,
 * which jsfive does not export) to refuse larger counts before allocating.
 */
const BOUNDED = Symbol('graft: attribute reads bounded');
function boundAttributeReads(file: hdf5.File): void {
  const proto = Object.getPrototypeOf((file as unknown as { _dataobjects: object })._dataobjects) as Record<string | symbol, unknown>;
  const read = proto._attr_value;
  if (proto[BOUNDED] || typeof read !== 'function') return;
  proto._attr_value = function (this: unknown, dtype: unknown, buf: { byteLength: number }, count: number, offset: number) {
    if (!Number.isSafeInteger(count) || count < 0 || count > buf.byteLength) throw new Error(`an attribute declares ${count} values, more than the file has bytes`);
    return (read as Function).call(this, dtype, buf, count, offset);
  };
  proto[BOUNDED] = true;
}

/** Reads a Keras .h5 weight file (see the header). `fileName` names the file in errors. */
export function readKerasH5(bytes: Uint8Array, fileName: string): KerasH5Weights {
  const fail = (problem: string): never => {
    throw new GraftFormatError(`${fileName}: ${problem}.`);
  };
  /**
   * Runs a jsfive call, turning whatever it throws into a GraftFormatError that says what was being read.
   * jsfive reports attributes of types it cannot read with console.warn, quoting their names, which in a
   * corrupt file are binary garbage; those warnings are dropped (the attributes Keras needs are checked here).
   */
  const h5 = <T>(what: string, f: () => T): T => {
    const warn = console.warn;
    console.warn = () => {};
    try {
      return f();
    } catch (e) {
      if (e instanceof GraftFormatError) throw e;
      return fail(`${what}: ${reason(e)} (is the file corrupt?)`);
    } finally {
      console.warn = warn;
    }
  };

  checkNotTruncated(bytes, fail);
  // jsfive reads from an ArrayBuffer of exactly the file.
  // (new Uint8Array(view) copies; a Node Buffer's slice() would not.)
  const buffer = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? (bytes.buffer as ArrayBuffer) : new Uint8Array(bytes).buffer;
  const file = h5('cannot read it as an HDF5 file', () => new hdf5.File(buffer, fileName));
  boundAttributeReads(file);

  const rootAttrs = h5('cannot read the attributes of /', () => file.attrs);
  let root: hdf5.Group = file;
  let layout = 'weights';
  if (!('layer_names' in rootAttrs) && !('layer_names0' in rootAttrs)) {
    const rootKeys = h5('cannot list /', () => file.keys);
    if (!rootKeys.includes('model_weights')) {
      const hint = rootKeys.includes('layers') && rootKeys.includes('vars') ? ' (it looks like a Keras 3 .weights.h5 file, which Graft does not read yet)' : '';
      fail(`neither / nor /model_weights has the attribute layer_names, so this is not a Keras weights file${hint}`);
    }
    const group = h5('cannot open /model_weights', () => file.get('model_weights'));
    if (!(group instanceof hdf5.Group)) fail('/model_weights is not a group');
    root = group as hdf5.Group;
    layout = 'model_weights';
  }
  const where = layout === 'weights' ? '/' : '/model_weights';
  const attrs = layout === 'weights' ? rootAttrs : h5(`cannot read the attributes of ${where}`, () => root.attrs);
  const layers = stringListAttribute(attrs, 'layer_names', where, fail);
  if (!layers) return fail(`${where} has no attribute layer_names`);

  const metadata: Record<string, string> = { keras_h5_layout: layout };
  for (const key of ['keras_version', 'backend']) {
    const v = attrs[key] ?? rootAttrs[key];
    if (typeof v === 'string') metadata[key] = unpad(v);
  }

  const tensors = new Map<string, F32Tensor>();
  for (const layer of layers) {
    const group = h5(`layer '${layer}' is listed in layer_names but cannot be opened`, () => root.get(layer));
    if (!(group instanceof hdf5.Group)) return fail(`layer '${layer}' is listed in layer_names but is not a group`);
    const layerAttrs = h5(`cannot read the attributes of layer '${layer}'`, () => group.attrs);
    const weightNames = stringListAttribute(layerAttrs, 'weight_names', `layer '${layer}'`, fail);
    if (!weightNames) return fail(`layer '${layer}' has no attribute weight_names`);
    for (const weightName of weightNames) {
      const base = weightName.replace(/:0$/, '');
      const key = base.startsWith(`${layer}/`) ? base : `${layer}/${base}`;
      if (tensors.has(key)) fail(`two weights are named '${key}'`);
      tensors.set(key, readFloatDataset(group, layer, weightName, bytes, h5, fail));
    }
  }
  return { tensors, layers, metadata };
}

function readFloatDataset(
  group: hdf5.Group,
  layer: string,
  weightName: string,
  file: Uint8Array,
  h5: <T>(what: string, f: () => T) => T,
  fail: (problem: string) => never,
): F32Tensor {
  const fileBytes = file.byteLength;
  const path = `${layer}/${weightName}`;
  const dataset = h5(`dataset '${path}' is listed in weight_names but cannot be opened`, () => group.get(weightName));
  if (!(dataset instanceof hdf5.Dataset)) return fail(`'${path}' is listed in weight_names but is not a dataset`);
  const shape = h5(`cannot read the shape of dataset '${path}'`, () => dataset.shape);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) return fail(`dataset '${path}' has the shape ${show(shape)}, not a list of counts`);
  const dtype = h5(`cannot read the element type of dataset '${path}'`, () => dataset.dtype);
  const itemBytes = typeof dtype === 'string' ? FLOAT_ITEM_BYTES[dtype] : undefined;
  if (itemBytes === undefined) return fail(`dataset '${path}' has the element type ${show(dtype)}; Graft reads float32 and float64 weights`);

  const count = shape.reduce((a, b) => a * b, 1);
  const declared = count * itemBytes;
  const filters = h5(`cannot read the filters of dataset '${path}'`, () => dataset._dataobjects.filter_pipeline);
  const limit = filters ? fileBytes * MAX_DEFLATE_RATIO : fileBytes;
  if (!Number.isSafeInteger(declared) || declared > limit) {
    fail(`dataset '${path}' declares the shape [${shape.join(', ')}] (${declared} bytes), more than the ${fileBytes}-byte file can hold${filters ? ' even compressed' : ''}`);
  }
  const start = h5(`cannot read the data layout of dataset '${path}'`, () => contiguousDataStart(dataset, file));
  if (start !== undefined) {
    if (start === null || start + declared > fileBytes) {
      fail(`dataset '${path}' of ${declared} bytes ${start === null ? 'has no data stored' : `at byte ${start} runs past the end of the ${fileBytes}-byte file`}`);
    }
    return { dtype: 'F32', shape: [...shape], data: floatsAt(file, start!, count, dtype as string) };
  }
  // jsfive walks every element of every chunk, so a corrupt chunk shape could make it loop for hours.
  const chunks = h5(`cannot read the chunk shape of dataset '${path}'`, () => dataset._dataobjects.chunks);
  if (chunks !== null && chunks !== undefined) {
    const valid = Array.isArray(chunks) && chunks.length === shape.length && chunks.every((c, i) => Number.isSafeInteger(c) && c >= 1 && c <= Math.max(shape[i]!, 1));
    if (!valid) return fail(`dataset '${path}' of shape [${shape.join(', ')}] has the chunk shape ${show(chunks)}, which does not fit it`);
  }
  const values = h5(`cannot read dataset '${path}'`, () => dataset.value);
  if (!values || values.length !== count) return fail(`dataset '${path}' has ${values?.length ?? 0} values, but its shape [${shape.join(', ')}] needs ${count}`);
  for (let i = 0; i < count; i++) {
    if (typeof values[i] !== 'number') return fail(`dataset '${path}' has no value at element ${i} (a chunk is missing)`);
  }
  // Float32Array rounds float64 to the nearest float32 (ties to even), as numpy's astype(float32) does.
  return { dtype: 'F32', shape: [...shape], data: Float32Array.from(values) };
}

// ---------------------------------------------------------------------------------------------------------------
// Recognising the Keras applications models by their weight names, and the metadata that makes a file stand alone.

export const KERAS_ARCHITECTURES = ['vgg16', 'resnet50-v1'] as const;
export type KerasArchitecture = (typeof KERAS_ARCHITECTURES)[number];

const kernelAndBias = (layers: string[]) => layers.flatMap((l) => [`${l}/kernel`, `${l}/bias`]);

/** The weight names of each architecture: the base (always there) and the classifier (all or nothing). */
function architectureNames(architecture: KerasArchitecture): { base: string[]; top: string[] } {
  if (architecture === 'vgg16') {
    const convs = [2, 2, 3, 3, 3].flatMap((n, b) => Array.from({ length: n }, (_, i) => `block${b + 1}_conv${i + 1}`));
    return { base: kernelAndBias(convs), top: kernelAndBias(['fc1', 'fc2', 'predictions']) };
  }
  const top = kernelAndBias(['predictions']);
  return { base: resnet50KerasWeightNames().filter((n) => !top.includes(n)), top };
}

const sample = (names: string[]) => `${names.slice(0, 4).join(', ')}${names.length > 4 ? `, … (${names.length} in all)` : ''}`;

/** Why `names` are not the weights of `architecture`, or undefined when they are. */
export function architectureMismatch(architecture: KerasArchitecture, names: Iterable<string>): string | undefined {
  const have = new Set(names);
  const { base, top } = architectureNames(architecture);
  const known = new Set([...base, ...top]);
  const missing = base.filter((n) => !have.has(n));
  if (missing.length) return `the file lacks weights of ${architecture}: ${sample(missing)}`;
  const unknown = [...have].filter((n) => !known.has(n));
  if (unknown.length) return `the file has weights that ${architecture} does not: ${sample(unknown)}`;
  const topMissing = top.filter((n) => !have.has(n));
  if (topMissing.length && topMissing.length < top.length) return `the file has only part of the classifier of ${architecture}; it lacks ${sample(topMissing)}`;
  return undefined;
}

/** The Keras applications model whose weight names these are exactly (with or without the classifier). */
export function recognizeKerasArchitecture(names: Iterable<string>): KerasArchitecture | undefined {
  const list = [...names];
  return KERAS_ARCHITECTURES.find((a) => architectureMismatch(a, list) === undefined);
}

/**
 * A Keras .h5 weight file as safetensors tensors and metadata. ResNet50 files with the legacy Keras 2.2.4 names
 * (res2a_branch2a, bn2a_branch2a, …) are renamed to the Keras applications names (resnet50-names.ts). VGG16 and
 * ResNet50 are recognised by their weight names, or named by `architecture`, which must then match. A
 * recognised file records what a model needs besides the numbers (see resnet50-imagenet.ts):
 *   architecture        'vgg16' or 'resnet50-v1' (Keras' ResNet50: the stride-2 on the first 1×1 convolution)
 *   batchnorm_epsilon   ResNet50 only: 1.001e-5 for keras.applications' names, 1e-3 for the legacy ones
 *   preprocessing       'caffe' (RGB → BGR, minus the ImageNet channel means), as keras.applications does
 *   include_top         whether the classifier is in the file
 * Keras's .h5 files hold no class names, so no labels are recorded (`graft predict` prints class indices).
 * Any other file keeps its weight names and records only what the file says about itself.
 */
export function convertKerasH5(bytes: Uint8Array, fileName: string, architecture?: KerasArchitecture): ConvertedWeights {
  if (architecture !== undefined && !KERAS_ARCHITECTURES.includes(architecture)) {
    throw new ArgumentError(`convertKerasH5: unknown architecture '${architecture}' (known: ${KERAS_ARCHITECTURES.join(', ')}).`);
  }
  return convertKerasWeights(readKerasH5(bytes, fileName), fileName, architecture);
}

/** convertKerasH5 on weights already read. */
export function convertKerasWeights(read: KerasH5Weights, fileName: string, architecture?: KerasArchitecture): ConvertedWeights {
  let tensors: Map<string, SafetensorsTensor> = read.tensors;
  const legacyNames = tensors.size > 0 && [...tensors.keys()].every((k) => legacyResnet50ToKeras(k) !== undefined);
  if (legacyNames && architecture !== 'vgg16') {
    tensors = new Map([...tensors].map(([k, t]) => [legacyResnet50ToKeras(k)!, t]));
  }
  if (architecture !== undefined) {
    const why = architectureMismatch(architecture, tensors.keys());
    if (why) throw new GraftFormatError(`${fileName}: expected the weights of ${architecture}, but ${why}.`);
  }
  const recognized = architecture ?? recognizeKerasArchitecture(tensors.keys());
  const metadata: Record<string, string> = { ...read.metadata };
  if (recognized === undefined) return { tensors, metadata };

  metadata.architecture = recognized;
  metadata.names = 'keras-applications';
  metadata.layout = 'conv kernels [kh, kw, in, out]; dense kernel [in, out]; activations NHWC';
  metadata.include_top = String(architectureNames(recognized).top.every((n) => tensors.has(n)));
  if (recognized === 'resnet50-v1') {
    metadata.architecture_note = "Keras ResNet50: in stages 3-5 the stride-2 is on each stage's first 1x1 convolution and its projection";
    metadata.batchnorm_epsilon = String(legacyNames ? 1e-3 : 1.001e-5);
    if (legacyNames) metadata.source_names = 'legacy Keras 2.2.4 ResNet50 names, renamed';
  }
  metadata.preprocessing = 'caffe';
  metadata.preprocessing_note = 'RGB to BGR, then subtract mean_bgr from each channel; pixels in 0..255, no scaling';
  metadata.mean_bgr = JSON.stringify(IMAGENET_MEANS_BGR);
  return { tensors, metadata };
}

/**
 * Where a contiguous dataset's data starts in the file: undefined for other layouts (chunked, compact), null
 * when no data is stored (the undefined address). Read from the data layout message (type 8) as jsfive does:
 * its properties begin with the data's 8-byte address.
 */
function contiguousDataStart(dataset: hdf5.Dataset, file: Uint8Array): number | null | undefined {
  const objects = dataset._dataobjects;
  const message = objects.find_msg_type(0x0008)[0];
  if (!message) throw new Error('the dataset has no data layout message');
  const [, , layoutClass, propertiesAt] = objects._get_data_message_properties(message.get('offset_to_message')!);
  if (layoutClass !== 1) return undefined;
  if (!Number.isSafeInteger(propertiesAt) || propertiesAt < 0 || propertiesAt + 8 > file.byteLength) throw new Error('the data layout message is outside the file');
  const address = new DataView(file.buffer, file.byteOffset, file.byteLength).getBigUint64(propertiesAt, true);
  return address > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(address);
}

/**
 * `count` floats of the HDF5 type `dtype` ('<f4', '>f4', '<f8', '>f8') stored from byte `start`, as float32. The
 * common case, little-endian float32, is one copy; this is what keeps a 500 MB file to seconds, where jsfive's
 * element-by-element reader into a JavaScript array takes most of a minute and twice the memory.
 */
function floatsAt(file: Uint8Array, start: number, count: number, dtype: string): Float32Array {
  const bytes = file.subarray(start, start + count * FLOAT_ITEM_BYTES[dtype]!);
  if (dtype === '<f4' && LITTLE_ENDIAN_HOST) return new Float32Array(new Uint8Array(bytes).buffer); // a copy, aligned
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  const little = dtype[0] === '<';
  if (dtype.endsWith('4')) for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, little);
  else for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, little); // rounded to nearest float32
  return out;
}
