/**
 * Writes the inputs of the ImageNet parity test: test/fixtures/imagenet/<name>.rgb.gz (224×224 RGB bytes, made
 * by Graft's decoder and bilinear resize, see test/models/imagenet-inputs.ts) and inputs.json (the list, with
 * sources and sha256 of source and bytes). Run from the repository root:
 *
 *   npx tsx test/golden/imagenet-inputs.ts
 *
 * then regenerate the golden top-5 with test/golden/resnet50_numpy.py.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { HYMENOPTERA_VAL, IMAGENET_FIXTURES, IMAGENET_INPUTS, SIZE, rgb224FromJpeg } from '../../test/models/imagenet-inputs.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const manifest = [];
for (const input of IMAGENET_INPUTS) {
  const source = join(HYMENOPTERA_VAL, input.source);
  const rgb = rgb224FromJpeg(source);
  // mtime 0 in the gzip header (Node writes none), so the same bytes give the same file.
  writeFileSync(join(IMAGENET_FIXTURES, `${input.name}.rgb.gz`), gzipSync(rgb, { level: 9 }));
  manifest.push({ ...input, height: SIZE, width: SIZE, layout: 'HWC RGB uint8', source_sha256: sha256(readFileSync(source)), rgb_sha256: sha256(rgb) });
  console.log(`${input.name}: ${source} → ${rgb.length} bytes`);
}
writeFileSync(join(IMAGENET_FIXTURES, 'inputs.json'), `${JSON.stringify(manifest, null, 2)}\n`);
