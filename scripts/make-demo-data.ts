/**
 * Builds the bundled ants/bees subset (examples/data/hymenoptera-mini) from ../shared/data/hymenoptera:
 * per class, 40 training and 25 validation images picked at evenly spaced positions of the sorted file
 * lists, downscaled so the longer side is 192 pixels (aspect ratio kept) and re-encoded as baseline JPEG at
 * quality 85. Deterministic: the same source gives the same files.
 *
 *   npx tsx scripts/make-demo-data.ts [SOURCE_DIR] [OUT_DIR]
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { decodeImage, resizeBilinear, imageKind } from '../src/data/image.js';

const source = process.argv[2] ?? '../shared/data/hymenoptera/hymenoptera_data';
const out = process.argv[3] ?? 'examples/data/hymenoptera-mini';
const PER_CLASS = { train: 40, val: 25 };
const LONG_SIDE = 192;

for (const [split, count] of Object.entries(PER_CLASS)) {
  for (const cls of ['ants', 'bees']) {
    const dir = join(source, split, cls);
    const files = readdirSync(dir).sort().filter((f) => imageKind(readFileSync(join(dir, f)).subarray(0, 8)) === 'jpeg');
    const picked = Array.from({ length: count }, (_, i) => files[Math.floor((i * files.length) / count)]!);
    mkdirSync(join(out, split, cls), { recursive: true });
    for (const f of picked) {
      const img = decodeImage(readFileSync(join(dir, f)), join(dir, f));
      const scale = LONG_SIDE / Math.max(img.width, img.height);
      const w = Math.max(1, Math.round(img.width * scale));
      const h = Math.max(1, Math.round(img.height * scale));
      const small = resizeBilinear(img, w, h);
      const rgba = Buffer.alloc(w * h * 4);
      for (let p = 0; p < w * h; p++) {
        for (let c = 0; c < 3; c++) rgba[p * 4 + c] = Math.max(0, Math.min(255, Math.round(small.data[p * 3 + c]!)));
        rgba[p * 4 + 3] = 255;
      }
      writeFileSync(join(out, split, cls, f), jpeg.encode({ data: rgba, width: w, height: h }, 85).data);
    }
    console.log(`${split}/${cls}: ${picked.length} of ${files.length} images`);
  }
}
