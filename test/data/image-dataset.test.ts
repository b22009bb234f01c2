/**
 * imageDatasetFromDirectory on a synthetic folder of PNGs with known pixels, and on the real hymenoptera
 * train folder (../shared/data/hymenoptera; see ../shared/data/README.md).
 *
 * Synthetic image `id` (label `label`) is 4×6 (H×W) with R = 20·x, G = 10·id, B = 50·label + y, so each
 * decoded image says which file it came from (G), its class (B) and its orientation (R, B).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { imageDatasetFromDirectory, imageDatasetFromFiles, type ImageBatch, type ImageDataset, type ImageFile } from '../../src/data/image-dataset.js';
import { preprocess } from '../../src/data/image.js';
import { ArgumentError } from '../../src/errors.js';

const H = 4, W = 6, PIX = H * W * 3;
const CATS = 5, DOGS = 7, TOTAL = CATS + DOGS;
let root: string;
let dir: string;

function pngBytes(id: number, label: number): Buffer {
  const png = new PNG({ width: W, height: H });
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const o = (y * W + x) * 4;
      png.data[o] = 20 * x;
      png.data[o + 1] = 10 * id;
      png.data[o + 2] = 50 * label + y;
      png.data[o + 3] = 255;
    }
  }
  return PNG.sync.write(png);
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'graft-imgds-'));
  dir = join(root, 'pets');
  for (const c of ['cat', 'dog', 'empty']) mkdirSync(join(dir, c), { recursive: true });
  for (let i = 0; i < CATS; i++) writeFileSync(join(dir, 'cat', `c${i}.png`), pngBytes(i, 0));
  for (let i = 0; i < DOGS; i++) writeFileSync(join(dir, 'dog', `d${i}.png`), pngBytes(CATS + i, 1));
  writeFileSync(join(dir, 'dog', 'notes.txt'), 'not an image\n');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const quiet = { onWarning: () => {} };

async function collect(ds: ImageDataset, epoch = 0): Promise<ImageBatch[]> {
  const out: ImageBatch[] = [];
  for await (const b of ds.batches(epoch)) out.push(b);
  return out;
}

/** The ids (G / 10 of the first pixel) of every image, in batch order, with their int labels. */
async function idsOf(ds: ImageDataset, epoch = 0): Promise<{ ids: number[]; labels: number[] }> {
  const ids: number[] = [], labels: number[] = [];
  for (const b of await collect(ds, epoch)) {
    for (let i = 0; i < b.count; i++) {
      ids.push(Math.round(b.x[i * PIX + 1]! / 10));
      labels.push(b.y[i]!);
    }
  }
  return { ids, labels };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const labelOfId = (id: number) => (id < CATS ? 0 : 1);

describe('imageDatasetFromDirectory: indexing', () => {
  test('class names, file count, skipped junk reported in one warning', async () => {
    const warnings: string[] = [];
    const ds = await imageDatasetFromDirectory(dir, { imageSize: [H, W], shuffle: false, onWarning: (m) => warnings.push(m) });
    expect(ds.classNames).toEqual(['cat', 'dog', 'empty']);
    expect(ds.fileCount).toBe(TOTAL);
    expect(ds.skipped).toEqual([join('dog', 'notes.txt')]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/skipped 1 file .*notes\.txt/);
  });

  test('sorted order and exact pixels and labels without shuffling', async () => {
    const ds = await imageDatasetFromDirectory(dir, { imageSize: [H, W], shuffle: false, batchSize: 5, ...quiet });
    const batches = await collect(ds);
    expect(batches.map((b) => b.count)).toEqual([5, 5, 2]);
    const { ids, labels } = await idsOf(ds);
    expect(ids).toEqual(range(TOTAL)); // c0..c4 then d0..d6 (string sort matches numeric here)
    expect(labels).toEqual(ids.map(labelOfId));
    const b = batches[1]!;
    expect(b.x.length).toBe(b.count * PIX);
    expect(b.y).toBeInstanceOf(Int32Array);
    const id = 5; // first image of batch 1
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
      const o = (y * W + x) * 3;
      expect([b.x[o], b.x[o + 1], b.x[o + 2]]).toEqual([20 * x, 10 * id, 50 * labelOfId(id) + y]);
    }
  });

  test('classNames fixes the order and restricts the folders; unknown names fail', async () => {
    const ds = await imageDatasetFromDirectory(dir, { imageSize: [H, W], shuffle: false, classNames: ['dog', 'cat'], ...quiet });
    expect(ds.classNames).toEqual(['dog', 'cat']);
    const { ids, labels } = await idsOf(ds);
    expect(ids).toEqual([...range(DOGS).map((i) => CATS + i), ...range(CATS)]);
    expect(labels).toEqual(ids.map((id) => 1 - labelOfId(id)));
    await expect(imageDatasetFromDirectory(dir, { classNames: ['cat', 'horse'], ...quiet })).rejects.toThrow(/horse/);
  });

  test('resizes to imageSize and applies preprocessing', async () => {
    const small = await imageDatasetFromDirectory(dir, { imageSize: [2, 3], shuffle: false, batchSize: 64, ...quiet });
    const [b] = await collect(small);
    expect(b!.count).toBe(TOTAL);
    expect(b!.x.length).toBe(TOTAL * 2 * 3 * 3);
    const plain = (await collect(await imageDatasetFromDirectory(dir, { imageSize: [H, W], shuffle: false, batchSize: 64, ...quiet })))[0]!;
    const torch = (await collect(await imageDatasetFromDirectory(dir, { imageSize: [H, W], shuffle: false, batchSize: 64, preprocessing: 'torch', ...quiet })))[0]!;
    expect(Array.from(torch.x)).toEqual(Array.from(preprocess(Float32Array.from(plain.x), 'torch')));
  });
});

describe('imageDatasetFromDirectory: split and shuffle', () => {
  test('training and validation are disjoint, complete, sized as Keras, and fixed by the seed', async () => {
    const opts = { imageSize: [H, W] as [number, number], validationSplit: 0.25, seed: 42, ...quiet };
    const [train, val] = await imageDatasetFromDirectory(dir, { ...opts, subset: 'both' });
    expect(val.fileCount).toBe(Math.floor(0.25 * TOTAL));
    expect(train.fileCount).toBe(TOTAL - val.fileCount);
    const t = await idsOf(train), v = await idsOf(val);
    expect(t.labels).toEqual(t.ids.map(labelOfId));
    expect(v.labels).toEqual(v.ids.map(labelOfId));
    expect(new Set([...t.ids, ...v.ids]).size).toBe(TOTAL);
    expect([...t.ids, ...v.ids].sort((a, b) => a - b)).toEqual(range(TOTAL));
    // The same seed gives the same subsets through the single-subset calls.
    const valAgain = await imageDatasetFromDirectory(dir, { ...opts, subset: 'validation' });
    expect((await idsOf(valAgain)).ids.sort()).toEqual([...v.ids].sort());
    const trainAgain = await imageDatasetFromDirectory(dir, { ...opts, subset: 'training' });
    expect((await idsOf(trainAgain)).ids.sort()).toEqual([...t.ids].sort());
    // Another seed gives another validation subset (checked over a few seeds: some must differ).
    const others = await Promise.all([1, 2, 3].map(async (seed) =>
      (await idsOf(await imageDatasetFromDirectory(dir, { ...opts, seed, subset: 'validation' }))).ids.sort().join()));
    expect(others.some((s) => s !== [...v.ids].sort().join())).toBe(true);
  });

  test('a split with shuffling needs a seed; without shuffling validation is the last files', async () => {
    await expect(imageDatasetFromDirectory(dir, { validationSplit: 0.2, subset: 'training', ...quiet })).rejects.toThrow(ArgumentError);
    await expect(imageDatasetFromDirectory(dir, { validationSplit: 0.2, seed: 1, ...quiet })).rejects.toThrow(/subset/);
    await expect(imageDatasetFromDirectory(dir, { validationSplit: 1.5, subset: 'training', seed: 1, ...quiet })).rejects.toThrow(/validationSplit/);
    const val = await imageDatasetFromDirectory(dir, { imageSize: [H, W], validationSplit: 0.25, subset: 'validation', shuffle: false, ...quiet });
    expect((await idsOf(val)).ids).toEqual([9, 10, 11]);
  });

  test('each epoch has its own order, fixed by (seed, epoch)', async () => {
    const ds = await imageDatasetFromDirectory(dir, { imageSize: [H, W], seed: 7, batchSize: 4, ...quiet });
    const e0 = (await idsOf(ds, 0)).ids, e0again = (await idsOf(ds, 0)).ids, e1 = (await idsOf(ds, 1)).ids;
    expect(e0again).toEqual(e0);
    expect(e1).not.toEqual(e0);
    expect([...e1].sort((a, b) => a - b)).toEqual(range(TOTAL));
    const twin = await imageDatasetFromDirectory(dir, { imageSize: [H, W], seed: 7, batchSize: 4, ...quiet });
    expect((await idsOf(twin, 1)).ids).toEqual(e1);
  });
});

describe('imageDatasetFromDirectory: labels and augmentation', () => {
  test('categorical is one-hot; binary is 0/1 and needs two classes', async () => {
    const cat = await imageDatasetFromDirectory(dir, { imageSize: [H, W], seed: 3, labelMode: 'categorical', batchSize: 64, ...quiet });
    const [b] = await collect(cat);
    expect(b!.y).toBeInstanceOf(Float32Array);
    expect(b!.y.length).toBe(TOTAL * 3);
    for (let i = 0; i < b!.count; i++) {
      const id = Math.round(b!.x[i * PIX + 1]! / 10);
      const row = Array.from(b!.y.subarray(i * 3, i * 3 + 3));
      expect(row).toEqual([0, 1, 2].map((c) => (c === labelOfId(id) ? 1 : 0)));
    }
    await expect(imageDatasetFromDirectory(dir, { labelMode: 'binary', ...quiet })).rejects.toThrow(/exactly 2 classes/);
    const bin = await imageDatasetFromDirectory(dir, { imageSize: [H, W], seed: 3, labelMode: 'binary', classNames: ['cat', 'dog'], batchSize: 64, ...quiet });
    const [c] = await collect(bin);
    expect(c!.y).toBeInstanceOf(Float32Array);
    for (let i = 0; i < c!.count; i++) expect(c!.y[i]).toBe(labelOfId(Math.round(c!.x[i * PIX + 1]! / 10)));
  });

  test('flip mirrors some images and leaves the rest; deterministic per (seed, epoch)', async () => {
    const ds = await imageDatasetFromDirectory(dir, { imageSize: [H, W], shuffle: false, batchSize: 64, augment: { flip: true }, seed: 5, ...quiet });
    const [b] = await collect(ds);
    let flipped = 0;
    for (let i = 0; i < b!.count; i++) {
      const r0 = b!.x[i * PIX]!; // R of pixel (0, 0): 0 if unflipped, 20·(W−1) if mirrored
      expect([0, 20 * (W - 1)]).toContain(r0);
      for (let x = 0; x < W; x++) expect(b!.x[i * PIX + x * 3]).toBe(r0 === 0 ? 20 * x : 20 * (W - 1 - x));
      if (r0 !== 0) flipped++;
    }
    expect(flipped).toBeGreaterThan(0);
    expect(flipped).toBeLessThan(TOTAL);
    expect(Array.from((await collect(ds))[0]!.x)).toEqual(Array.from(b!.x));
  });

  test('zoom and rotation change images, the same way for the same seed and epoch', async () => {
    const aug = { zoom: 0.3, rotation: 0.5 };
    const mk = (seed: number) => imageDatasetFromDirectory(dir, { imageSize: [H, W], shuffle: false, batchSize: 64, augment: aug, seed, ...quiet });
    const a = (await collect(await mk(9)))[0]!.x;
    const again = (await collect(await mk(9)))[0]!.x;
    const nextEpoch = (await collect(await mk(9), 1))[0]!.x;
    const plain = (await collect(await imageDatasetFromDirectory(dir, { imageSize: [H, W], shuffle: false, batchSize: 64, ...quiet })))[0]!.x;
    expect(Array.from(again)).toEqual(Array.from(a));
    expect(Array.from(nextEpoch)).not.toEqual(Array.from(a));
    expect(Array.from(a)).not.toEqual(Array.from(plain));
    // Bilinear sampling with edge clamping stays inside each image's value range; G (the id) is untouched.
    for (let i = 0; i < TOTAL; i++) {
      for (let p = 0; p < H * W; p++) {
        const o = i * PIX + p * 3;
        expect(a[o]).toBeGreaterThanOrEqual(-1e-3);
        expect(a[o]).toBeLessThanOrEqual(20 * (W - 1) + 1e-3);
        expect(a[o + 1]).toBeCloseTo(10 * i, 3);
      }
    }
    await expect(imageDatasetFromDirectory(dir, { augment: { shear: 1 } as never, ...quiet })).rejects.toThrow(/shear/);
  });
});

describe('imageDatasetFromDirectory: decode failures', () => {
  test('a file that sniffs as PNG but does not decode is dropped and reported once at the end of the epoch', async () => {
    const d = join(root, 'broken');
    mkdirSync(join(d, 'a'), { recursive: true });
    writeFileSync(join(d, 'a', 'good.png'), pngBytes(1, 0));
    writeFileSync(join(d, 'a', 'bad.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]));
    const warnings: string[] = [];
    const ds = await imageDatasetFromDirectory(d, { imageSize: [H, W], onWarning: (m) => warnings.push(m), seed: 1 });
    expect(ds.fileCount).toBe(2);
    expect(warnings).toEqual([]);
    const batches = await collect(ds);
    expect(batches.map((b) => b.count)).toEqual([1]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/skipped 1 file.*bad\.png/);
    expect(ds.skipped).toEqual([join('a', 'bad.png')]);
  });

  test('a file deleted after indexing is skipped, not a crash', async () => {
    const d = join(root, 'vanishing');
    mkdirSync(join(d, 'a'), { recursive: true });
    writeFileSync(join(d, 'a', 'stays.png'), pngBytes(1, 0));
    writeFileSync(join(d, 'a', 'goes.png'), pngBytes(2, 0));
    const warnings: string[] = [];
    const ds = await imageDatasetFromDirectory(d, { imageSize: [H, W], onWarning: (m) => warnings.push(m), seed: 1 });
    rmSync(join(d, 'a', 'goes.png'));
    expect((await collect(ds)).map((b) => b.count)).toEqual([1]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/goes\.png/);
  });
});

const HYM = '../shared/data/hymenoptera/hymenoptera_data/train';

describe('imageDatasetFromDirectory: hymenoptera train', () => {
  test('244 JPEGs decode, the one GIF is skipped with one warning', async () => {
    expect(existsSync(HYM), `missing ${HYM}; see ../shared/data/README.md`).toBe(true);
    const warnings: string[] = [];
    const ds = await imageDatasetFromDirectory(HYM, { imageSize: [16, 16], batchSize: 64, seed: 0, onWarning: (m) => warnings.push(m) });
    expect(ds.classNames).toEqual(['ants', 'bees']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/skipped 1 file .*imageNotFound\.gif/);
    expect(ds.skipped).toEqual([join('ants', 'imageNotFound.gif')]);
    let count = 0;
    const perClass = [0, 0];
    for await (const b of ds.batches(0)) {
      count += b.count;
      expect(b.x.length).toBe(b.count * 16 * 16 * 3);
      for (const l of b.y) perClass[l]!++;
      for (const v of b.x) if (!(v >= 0 && v <= 255)) throw new Error(`pixel ${v} outside 0..255`);
    }
    expect(count).toBe(244);
    expect(perClass).toEqual([123, 121]);
    expect(warnings).toHaveLength(1);
  }, 40_000);
});

describe('imageDatasetFromDirectory: prefetch', () => {
  test('batch k+1 is decoded while the consumer awaits after receiving batch k', async () => {
    const d = join(root, 'prefetch');
    mkdirSync(join(d, 'a'), { recursive: true });
    writeFileSync(join(d, 'a', 'p0.png'), pngBytes(1, 0));
    writeFileSync(join(d, 'a', 'p1.png'), pngBytes(2, 0));
    const ds = await imageDatasetFromDirectory(d, { imageSize: [H, W], batchSize: 1, shuffle: false, ...quiet });
    const it = ds.batches(0);
    const first = await it.next();
    expect(Math.round(first.value!.x[1]! / 10)).toBe(1);
    await new Promise((r) => setImmediate(r)); // the consumer yields to the event loop (e.g. waits on the GPU)
    writeFileSync(join(d, 'a', 'p1.png'), pngBytes(7, 0)); // too late: p1 was already read
    const second = await it.next();
    expect(Math.round(second.value!.x[1]! / 10)).toBe(2);
    expect((await it.next()).done).toBe(true);
  });
});

describe('imageDatasetFromFiles (in-memory files, as a browser has them)', () => {
  const files = () => {
    const out: ImageFile[] = [];
    for (let i = 0; i < CATS; i++) out.push({ name: `cat/c${i}.png`, className: 'cat', bytes: pngBytes(i, 0) });
    for (let i = DOGS - 1; i >= 0; i--) out.push({ name: `dog/d${i}.png`, className: 'dog', bytes: pngBytes(CATS + i, 1) });
    out.push({ name: 'dog/notes.txt', className: 'dog', bytes: new TextEncoder().encode('not an image\n') });
    return out;
  };

  test('the same split, orders, augmentation and pixels as the same files in a folder', async () => {
    const options = { imageSize: [H, W] as [number, number], batchSize: 5, seed: 7, validationSplit: 0.25, augment: { flip: true }, classNames: ['cat', 'dog'] };
    const warnings: string[] = [];
    const [fromFolder, fromFolderVal] = await imageDatasetFromDirectory(dir, { ...options, subset: 'both', onWarning: () => {} });
    const [inMemory, inMemoryVal] = imageDatasetFromFiles(files(), { ...options, subset: 'both', onWarning: (m) => warnings.push(m) });
    expect(warnings).toEqual(['imageDatasetFromFiles: skipped 1 file in the given files that are not JPEG or PNG images: dog/notes.txt']);
    for (const [a, b] of [[fromFolder, inMemory], [fromFolderVal, inMemoryVal]] as const) {
      expect(b.size).toBe(a.size);
      for (const epoch of [0, 1]) {
        const [x, y] = [await collect(a, epoch), await collect(b, epoch)];
        expect(y.map((t) => [...t.y])).toEqual(x.map((t) => [...t.y]));
        expect(y.map((t) => [...t.x])).toEqual(x.map((t) => [...t.x]));
      }
    }
  });

  test('class names from the files, or checked against classNames', () => {
    expect(imageDatasetFromFiles(files(), quiet).classNames).toEqual(['cat', 'dog']);
    expect(() => imageDatasetFromFiles(files(), { ...quiet, classNames: ['cat'] })).toThrow(/files of class dog are not in classNames \(cat\)/);
    expect(() => imageDatasetFromFiles([], quiet)).toThrow(/no files were given/);
  });
});
