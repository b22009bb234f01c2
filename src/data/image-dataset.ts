/**
 * Image datasets from a folder of class folders, after Keras's `image_dataset_from_directory`:
 *
 *   dir/ants/a.jpg, dir/ants/b.jpg, dir/bees/c.png, ...   →   batches {x: NHWC f32, y: labels}
 *
 * 1. Indexing. Class names are the sorted names of dir's sub-folders (or `classNames`, which also fixes their
 *    order and restricts indexing to those folders); an empty sub-folder is still a class. Inside each class
 *    folder, files are listed recursively in sorted order, class after class. Each file's first bytes are
 *    sniffed: anything that is not JPEG or PNG (a GIF, a text file, an unreadable file) is skipped right away,
 *    and all such skips are reported in ONE warning (`onWarning`, default console.warn) naming count and files.
 *
 * Splitting, batches, prefetch and augmentation are shared with in-memory files: see labelled-images.ts.
 */
import { readdirSync, readFileSync, statSync, openSync, readSync, closeSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ArgumentError, GraftError } from '../errors.js';
import { imageKind } from './image.js';
import { checkDatasetOptions, type ImageDataset, type ImageDatasetOptions, type ImageEntry, skipWarning, splitImageEntries } from './labelled-images.js';

export * from './labelled-images.js';

// ---- indexing ----------------------------------------------------------------------------------------------

function listFilesSorted(folder: string): string[] {
  const out: string[] = [];
  const names = readdirSync(folder, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const d of names) {
    const p = join(folder, d.name);
    const isDir = d.isDirectory() || (d.isSymbolicLink() && statSync(p).isDirectory());
    if (isDir) out.push(...listFilesSorted(p));
    else out.push(p);
  }
  return out;
}

/** The file's format from its first bytes; an unreadable file counts as 'unknown' (and so is skipped). */
function sniff(path: string): ReturnType<typeof imageKind> {
  const head = new Uint8Array(8);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return 'unknown';
  }
  try {
    readSync(fd, head, 0, 8, 0);
  } catch {
    return 'unknown';
  } finally {
    closeSync(fd);
  }
  return imageKind(head);
}

// ---- the dataset -------------------------------------------------------------------------------------------

export async function imageDatasetFromDirectory(
  dir: string,
  options: ImageDatasetOptions & { subset: 'both' },
): Promise<[ImageDataset, ImageDataset]>;
export async function imageDatasetFromDirectory(dir: string, options?: ImageDatasetOptions): Promise<ImageDataset>;
export async function imageDatasetFromDirectory(
  dir: string,
  options: ImageDatasetOptions = {},
): Promise<ImageDataset | [ImageDataset, ImageDataset]> {
  const fn = 'imageDatasetFromDirectory';
  const o = checkDatasetOptions(fn, options);
  const { labelMode, onWarning } = o;
  let folders: string[];
  try {
    folders = readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory() || (d.isSymbolicLink() && statSync(join(dir, d.name)).isDirectory()))
      .map((d) => d.name)
      .sort();
  } catch (e) {
    throw new GraftError(`${fn}: cannot read directory ${dir} (${(e as Error).message}).`);
  }
  let classNames = folders;
  if (options.classNames) {
    const missing = options.classNames.filter((c) => !folders.includes(c));
    if (missing.length > 0) {
      throw new ArgumentError(
        `${fn}: classNames must name sub-folders of ${dir}; not found: ${missing.join(', ')} (found: ${folders.join(', ')}).`,
      );
    }
    classNames = [...options.classNames];
  }
  if (classNames.length === 0) throw new ArgumentError(`${fn}: ${dir} has no class sub-folders.`);
  if (labelMode === 'binary' && classNames.length !== 2) {
    throw new ArgumentError(`${fn}: labelMode 'binary' needs exactly 2 classes, found ${classNames.length} (${classNames.join(', ')}).`);
  }

  const entries: ImageEntry[] = [];
  const skippedAtIndex: string[] = [];
  classNames.forEach((name, label) => {
    for (const path of listFilesSorted(join(dir, name))) {
      const kind = sniff(path);
      if (kind === 'jpeg' || kind === 'png') entries.push({ path, name: relative(dir, path), label, read: () => readFileSync(path) });
      else skippedAtIndex.push(relative(dir, path));
    }
  });
  if (skippedAtIndex.length > 0) onWarning(skipWarning(fn, dir, skippedAtIndex, 'that are not readable JPEG or PNG images'));

  return splitImageEntries(dir, entries, classNames, o, skippedAtIndex);
}
