/**
 * Labelled image datasets, from whatever holds the bytes: the machinery behind `imageDatasetFromDirectory`
 * (image-dataset.ts, which indexes a folder on Node and Deno) and `imageDatasetFromFiles` (in-memory files:
 * a browser's File objects or fetched bytes). Both share the split, the batches, the augmentation and the
 * prefetch described here; only where the bytes come from differs.
 *
 * 2. Split (as Keras). With `shuffle` on, the indexed list is permuted by a Fisher–Yates shuffle driven by a
 *    mulberry32 generator seeded with `seed`; then the LAST floor(validationSplit · n) files are the validation
 *    subset and the rest the training subset. With `shuffle` off the sorted list is split unpermuted (so, as in
 *    Keras, validation then holds the last files of the last classes). A split with shuffling needs a seed;
 *    without a split and without a seed, one is drawn at random once, so a dataset object's orders are fixed.
 * 3. Batches. `batches(epoch)` yields {x, y, count}. With `shuffle` on, the subset's order is re-permuted for
 *    every epoch from (seed, epoch). Images are read and decoded lazily, one batch at a time, so a folder larger
 *    than memory streams. Each image is decoded, resized to `imageSize` (bilinear, aspect ratio not kept, as
 *    Keras's default), optionally augmented, then preprocessed ('none' leaves RGB 0..255, as Keras).
 *    A file that passes the sniff but cannot be read or decoded (truncated, deleted since) is dropped from its
 *    batch (so `count` may be less than batchSize), added to `skipped`, and reported in one warning at the end
 *    of the epoch.
 * 4. Prefetch. Decoding is synchronous JavaScript, so it cannot run in parallel with the consumer's JS. When
 *    batch k is handed out, decoding of batch k+1 is queued as a macrotask (setImmediate on Node, a zero
 *    timeout elsewhere); it then runs during the consumer's next await that yields to the event loop (typically
 *    waiting on the GPU: a queue submission or a buffer readback), so decode time hides behind GPU time instead
 *    of adding to it. At most one batch is held ahead, so memory stays at two batches.
 * 5. Augmentation (only what is requested), per image, from a generator seeded with (seed, epoch, file):
 *    flip → mirror left-right with probability ½; zoom z → scale by a factor uniform in [1 − z, 1 + z];
 *    rotation r → rotate by an angle uniform in [−r, r] radians about the centre. The combined inverse map is
 *    sampled bilinearly; points outside the image take the nearest edge pixel (Keras's 'nearest' fill mode).
 */
import { ArgumentError } from '../errors.js';
import { mulberry32, shuffleInPlace } from '../ops/random.js';
import { IDENTITY, resampleImage } from './resample.js';
import { cropToAspectRatio, decodeImage, imageKind, preprocess, resizeBilinear, type Preprocessing, type RgbImage } from './image.js';

export type LabelMode = 'int' | 'categorical' | 'binary';

export interface Augmentation {
  flip?: boolean;
  /** Maximum zoom fraction, e.g. 0.1 → factor in [0.9, 1.1]. */
  zoom?: number;
  /** Maximum rotation angle in radians. */
  rotation?: number;
}

export interface ImageDatasetOptions {
  validationSplit?: number;
  subset?: 'training' | 'validation' | 'both';
  seed?: number;
  /** [height, width]. */
  imageSize?: [number, number];
  batchSize?: number;
  shuffle?: boolean;
  labelMode?: LabelMode;
  preprocessing?: Preprocessing;
  classNames?: string[];
  augment?: Augmentation;
  /** Crop the largest centred window of the target aspect ratio before resizing (Keras's crop_to_aspect_ratio). Default false: resize, distorting. */
  cropToAspectRatio?: boolean;
  onWarning?: (message: string) => void;
}

export interface ImageBatch {
  /** [count, height, width, 3], NHWC. */
  x: Float32Array;
  /** int: Int32Array [count]; categorical: Float32Array [count, classes]; binary: Float32Array [count]. */
  y: Int32Array | Float32Array;
  count: number;
}

export interface ImageDataset {
  classNames: string[];
  /** Files in this subset (after the sniff, before any decode failure). */
  fileCount: number;
  /** Examples per epoch, as BatchSource.size (the file count; a file that fails to decode is skipped). */
  size: number;
  /** The subset's files, in the order of the unshuffled dataset. */
  files: string[];
  /** Files skipped so far (relative to dir): those found at indexing, then any that failed to decode. */
  skipped: string[];
  imageSize: [number, number];
  batchSize: number;
  labelMode: LabelMode;
  batches(epoch?: number): AsyncGenerator<ImageBatch>;
}

/** One indexed image: its name (relative to the dataset's source), its class and how to get its bytes. */
export interface ImageEntry {
  /** Where it is (a file's full path), for the dataset's `files` and error messages. */
  path: string;
  /** Its name relative to the source, for the `skipped` list and warnings. */
  name: string;
  label: number;
  read(): Uint8Array;
}

/** Mixes several integers into one 32-bit seed (a murmur3-style finaliser per word). */
function mixSeed(...words: number[]): number {
  let h = 0x9e3779b9;
  for (const w of words) {
    h = Math.imul(h ^ (w >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}


/** Runs `fn` as a macrotask: setImmediate on Node, a zero timeout where there is none (browsers). */
const macrotask: (fn: () => void) => void =
  typeof (globalThis as { setImmediate?: unknown }).setImmediate === 'function' ? (fn) => void setImmediate(fn) : (fn) => void setTimeout(fn, 0);

export function skipWarning(fn: string, source: string, files: string[], why: string): string {
  return `${fn}: skipped ${files.length} file${files.length === 1 ? '' : 's'} in ${source} ${why}: ${files.join(', ')}`;
}

// ---- augmentation ------------------------------------------------------------------------------------------

/** Applies the requested flip/zoom/rotation to an RGB image by bilinear sampling of the inverse map. */
export function augmentImage(img: RgbImage, aug: Augmentation, random: () => number): RgbImage {
  const flip = aug.flip === true && random() < 0.5;
  const zoom = aug.zoom ? 1 + (2 * random() - 1) * aug.zoom : 1;
  const angle = aug.rotation ? (2 * random() - 1) * aug.rotation : 0;
  if (!flip && zoom === 1 && angle === 0) return img;
  const { width, height, data } = img;
  return { width, height, data: resampleImage(data, width, height, 3, { ...IDENTITY, flip, zoom, angle }, 'edge') };
}

// ---- the dataset -------------------------------------------------------------------------------------------

/** Checks the options shared by both sources; returns them with defaults filled in (and a seed drawn if none). */
export function checkDatasetOptions(fn: string, options: ImageDatasetOptions) {
  const {
    validationSplit, subset, imageSize = [256, 256], batchSize = 32, shuffle = true, labelMode = 'int',
    preprocessing = 'none', augment, cropToAspectRatio: crop = false, onWarning = (m: string) => console.warn(m),
  } = options;
  let seed = options.seed;
  if (validationSplit !== undefined && !(validationSplit > 0 && validationSplit < 1)) {
    throw new ArgumentError(`${fn}: validationSplit must be in (0, 1), got ${validationSplit}.`);
  }
  if ((validationSplit === undefined) !== (subset === undefined)) {
    throw new ArgumentError(`${fn}: validationSplit and subset must be given together, got validationSplit=${validationSplit}, subset=${subset}.`);
  }
  if (subset !== undefined && !['training', 'validation', 'both'].includes(subset)) {
    throw new ArgumentError(`${fn}: subset must be 'training', 'validation' or 'both', got '${subset}'.`);
  }
  if (validationSplit !== undefined && shuffle && seed === undefined) {
    throw new ArgumentError(`${fn}: validationSplit with shuffle needs a seed, so that the training and validation subsets do not overlap.`);
  }
  if (!['int', 'categorical', 'binary'].includes(labelMode)) {
    throw new ArgumentError(`${fn}: labelMode must be 'int', 'categorical' or 'binary', got '${labelMode}'.`);
  }
  if (!['caffe', 'torch', 'none'].includes(preprocessing)) {
    throw new ArgumentError(`${fn}: preprocessing must be 'caffe', 'torch' or 'none', got '${preprocessing}'.`);
  }
  if (imageSize.length !== 2 || !imageSize.every((s) => Number.isInteger(s) && s > 0)) {
    throw new ArgumentError(`${fn}: imageSize must be [height, width] of positive integers, got [${imageSize.join(', ')}].`);
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new ArgumentError(`${fn}: batchSize must be a positive integer, got ${batchSize}.`);
  if (augment) {
    for (const key of Object.keys(augment)) {
      if (!['flip', 'zoom', 'rotation'].includes(key)) throw new ArgumentError(`${fn}: augment.${key} is not supported (flip, zoom, rotation are).`);
    }
    if (augment.zoom !== undefined && !(augment.zoom >= 0 && augment.zoom < 1)) {
      throw new ArgumentError(`${fn}: augment.zoom must be in [0, 1), got ${augment.zoom}.`);
    }
    if (augment.rotation !== undefined && !(augment.rotation >= 0)) {
      throw new ArgumentError(`${fn}: augment.rotation must be ≥ 0 radians, got ${augment.rotation}.`);
    }
  }
  // As Keras: shuffling without a seed draws one, so the orders are fixed for this dataset object.
  if (seed === undefined) seed = Math.floor(Math.random() * 2 ** 31);

  return { fn, validationSplit, subset, imageSize, batchSize, shuffle, labelMode, preprocessing, augment, crop, onWarning, seed };
}

/**
 * Splits the indexed entries (as Keras) and makes the requested subset(s). `source` names where they came from
 * in warnings; `skippedAtIndex` lists files already skipped while indexing.
 */
export function splitImageEntries(
  source: string,
  entries: ImageEntry[],
  classNames: string[],
  o: ReturnType<typeof checkDatasetOptions>,
  skippedAtIndex: string[],
): ImageDataset | [ImageDataset, ImageDataset] {
  const { fn, validationSplit, subset, imageSize, batchSize, shuffle, labelMode, preprocessing, augment, crop, onWarning, seed } = o;
  if (shuffle) shuffleInPlace(entries, mulberry32(seed));
  const numVal = validationSplit === undefined ? 0 : Math.floor(validationSplit * entries.length);
  const training = entries.slice(0, entries.length - numVal);
  const validation = entries.slice(entries.length - numVal);

  const make = (files: ImageEntry[], salt: number, augmentation: Augmentation | undefined): ImageDataset =>
    makeDataset(source, files, {
      fn, classNames, seed, salt, imageSize, batchSize, shuffle, labelMode, preprocessing,
      augment: augmentation, cropToAspectRatio: crop, onWarning, skipped: [...skippedAtIndex],
    });
  if (subset === 'both') return [make(training, 1, augment), make(validation, 2, augment)];
  if (subset === 'validation') return make(validation, 2, augment);
  return make(training, 1, augment);
}


/** An image held in memory: a name (e.g. "ants/1.jpg"), its class and its encoded bytes (JPEG or PNG). */
export interface ImageFile {
  name: string;
  className: string;
  bytes: Uint8Array;
}

export function imageDatasetFromFiles(files: ImageFile[], options: ImageDatasetOptions & { subset: 'both' }): [ImageDataset, ImageDataset];
export function imageDatasetFromFiles(files: ImageFile[], options?: ImageDatasetOptions): ImageDataset;
/**
 * A dataset from images in memory, with the semantics of `imageDatasetFromDirectory`: class names are the
 * sorted distinct `className`s (or `options.classNames`), files are ordered by class and then name, and
 * anything that is not JPEG or PNG is skipped with one warning. For a browser's dropped files or fetched bytes.
 */
export function imageDatasetFromFiles(files: ImageFile[], options: ImageDatasetOptions = {}): ImageDataset | [ImageDataset, ImageDataset] {
  const fn = 'imageDatasetFromFiles';
  const o = checkDatasetOptions(fn, options);
  const found = [...new Set(files.map((f) => f.className))].sort();
  let classNames = found;
  if (options.classNames) {
    const unknown = files.filter((f) => !options.classNames!.includes(f.className)).map((f) => f.className);
    if (unknown.length > 0) throw new ArgumentError(`${fn}: files of class ${[...new Set(unknown)].join(', ')} are not in classNames (${options.classNames.join(', ')}).`);
    classNames = [...options.classNames];
  }
  if (classNames.length === 0) throw new ArgumentError(`${fn}: no files were given.`);
  if (o.labelMode === 'binary' && classNames.length !== 2) {
    throw new ArgumentError(`${fn}: labelMode 'binary' needs exactly 2 classes, found ${classNames.length} (${classNames.join(', ')}).`);
  }
  const entries: ImageEntry[] = [];
  const skipped: string[] = [];
  classNames.forEach((className, label) => {
    const ofClass = files.filter((f) => f.className === className).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const f of ofClass) {
      const kind = imageKind(f.bytes.subarray(0, 8));
      if (kind === 'jpeg' || kind === 'png') entries.push({ path: f.name, name: f.name, label, read: () => f.bytes });
      else skipped.push(f.name);
    }
  });
  const source = 'the given files';
  if (skipped.length > 0) o.onWarning(skipWarning(fn, source, skipped, 'that are not JPEG or PNG images'));
  return splitImageEntries(source, entries, classNames, o, skipped);
}

interface DatasetConfig {
  /** The public function, for warnings. */
  fn: string;
  classNames: string[];
  seed: number;
  /** Distinguishes the training and validation orders drawn from one seed. */
  salt: number;
  imageSize: [number, number];
  batchSize: number;
  shuffle: boolean;
  labelMode: LabelMode;
  preprocessing: Preprocessing;
  augment: Augmentation | undefined;
  cropToAspectRatio: boolean;
  onWarning: (message: string) => void;
  skipped: string[];
}

function makeDataset(source: string, files: ImageEntry[], cfg: DatasetConfig): ImageDataset {
  const [height, width] = cfg.imageSize;
  const pixels = height * width * 3;
  const numClasses = cfg.classNames.length;

  /** Reads, decodes, resizes, augments and preprocesses the files at `order[start..end)`. */
  function loadBatch(order: number[], start: number, end: number, epoch: number, failures: string[]): ImageBatch {
    const x = new Float32Array((end - start) * pixels);
    const labels: number[] = [];
    for (let i = start; i < end; i++) {
      const fileIndex = order[i]!;
      const entry = files[fileIndex]!;
      let img: RgbImage;
      try {
        img = decodeImage(entry.read(), entry.path);
      } catch {
        // Unreadable (deleted since indexing, no permission) or undecodable: skip it, report at epoch end.
        failures.push(entry.name);
        continue;
      }
      if (cfg.cropToAspectRatio) img = cropToAspectRatio(img, width, height);
      if (img.width !== width || img.height !== height) img = resizeBilinear(img, width, height);
      if (cfg.augment) img = augmentImage(img, cfg.augment, mulberry32(mixSeed(cfg.seed, cfg.salt, epoch, fileIndex)));
      x.set(preprocess(img.data, cfg.preprocessing), labels.length * pixels);
      labels.push(entry.label);
    }
    const count = labels.length;
    let y: Int32Array | Float32Array;
    if (cfg.labelMode === 'int') y = Int32Array.from(labels);
    else if (cfg.labelMode === 'binary') y = Float32Array.from(labels);
    else {
      y = new Float32Array(count * numClasses);
      labels.forEach((l, i) => (y[i * numClasses + l] = 1));
    }
    return { x: count * pixels === x.length ? x : x.slice(0, count * pixels), y, count };
  }

  function epochOrder(epoch: number): number[] {
    const order = files.map((_, i) => i);
    return cfg.shuffle ? shuffleInPlace(order, mulberry32(mixSeed(cfg.seed, cfg.salt, epoch, 0x5eed))) : order;
  }

  const dataset: ImageDataset = {
    classNames: cfg.classNames,
    fileCount: files.length,
    size: files.length,
    files: files.map((f) => f.path),
    skipped: cfg.skipped,
    imageSize: cfg.imageSize,
    batchSize: cfg.batchSize,
    labelMode: cfg.labelMode,
    async *batches(epoch = 0) {
      if (!Number.isInteger(epoch) || epoch < 0) {
        throw new ArgumentError(`imageDatasetFromDirectory: batches(epoch) needs a non-negative integer epoch, got ${epoch}.`);
      }
      const order = epochOrder(epoch);
      const failures: string[] = [];
      const schedule = (start: number): Promise<ImageBatch> => {
        const p = new Promise<ImageBatch>((resolve, reject) =>
          macrotask(() => {
            try {
              resolve(loadBatch(order, start, Math.min(start + cfg.batchSize, order.length), epoch, failures));
            } catch (e) {
              reject(e);
            }
          }),
        );
        p.catch(() => {}); // a rejection is rethrown where the batch is awaited, never left unhandled
        return p;
      };
      let pending = order.length > 0 ? schedule(0) : undefined;
      for (let start = 0; pending; start += cfg.batchSize) {
        const batch = await pending;
        const next = start + cfg.batchSize;
        pending = next < order.length ? schedule(next) : undefined;
        if (batch.count > 0) yield batch;
      }
      if (failures.length > 0) {
        for (const f of failures) if (!dataset.skipped.includes(f)) dataset.skipped.push(f);
        cfg.onWarning(skipWarning(cfg.fn, source, failures, `(epoch ${epoch}) that failed to decode`));
      }
    },
  };
  return dataset;
}
