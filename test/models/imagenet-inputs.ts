/**
 * The four photographs of the ImageNet parity test (test/models/resnet50-imagenet-parity.test.ts), and how the
 * committed 224×224 inputs in test/fixtures/imagenet/ are made from them: Graft decodes the JPEG, resizes it
 * bilinearly to 224×224 and rounds every channel to a byte. The bytes (RGB, row-major HWC, 150,528 of them)
 * are then the one input that both Graft and the independent NumPy ResNet50 (test/golden/resnet50_numpy.py)
 * read, so the parity test compares networks and not JPEG decoders or resizers.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { decodeImage, resizeBilinear } from '../../src/data/image.js';

export const IMAGENET_FIXTURES = join('test', 'fixtures', 'imagenet');
export const HYMENOPTERA_VAL = join('..', 'shared', 'data', 'hymenoptera', 'hymenoptera_data', 'val');
export const SIZE = 224;

export interface ImagenetInput {
  /** Fixture name: test/fixtures/imagenet/<name>.rgb.gz. */
  name: string;
  /** The source photograph, relative to the hymenoptera val folder. */
  source: string;
  /** The ImageNet class it must be: 309 bee, 310 ant. */
  label: 'bee' | 'ant';
  index: 309 | 310;
}

export const IMAGENET_INPUTS: readonly ImagenetInput[] = [
  { name: 'bee-abeja', source: 'bees/abeja.jpg', label: 'bee', index: 309 },
  { name: 'bee-1297972485', source: 'bees/1297972485_33266a18d9.jpg', label: 'bee', index: 309 },
  { name: 'ant-1053149811', source: 'ants/1053149811_f62a3410d3.jpg', label: 'ant', index: 310 },
  { name: 'ant-1119630822', source: 'ants/1119630822_cd325ea21a.jpg', label: 'ant', index: 310 },
];

/** Decode, bilinear resize to 224×224, round to bytes: the fixture's content for one photograph. */
export function rgb224FromJpeg(file: string): Uint8Array {
  const img = resizeBilinear(decodeImage(readFileSync(file), file), SIZE, SIZE);
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.min(255, Math.max(0, Math.round(img.data[i]!)));
  return out;
}

/** The committed fixture of one input: 224·224·3 bytes. */
export function readRgbFixture(name: string): Uint8Array {
  const bytes = new Uint8Array(gunzipSync(readFileSync(join(IMAGENET_FIXTURES, `${name}.rgb.gz`))));
  if (bytes.length !== SIZE * SIZE * 3) throw new Error(`${name}.rgb.gz: ${bytes.length} bytes, expected ${SIZE * SIZE * 3}.`);
  return bytes;
}
