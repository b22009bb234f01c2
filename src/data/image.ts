/**
 * Decoding images (JPEG with jpeg-js, PNG with pngjs), bilinear resizing, and the two ImageNet preprocessing
 * conventions that travel with converted weights:
 *   caffe  Keras's VGG16/ResNet50: RGB → BGR, subtract the ImageNet channel means, no scaling (0..255 input);
 *   torch  torchvision: scale to 0..1, subtract mean [0.485, 0.456, 0.406], divide by std [0.229, 0.224, 0.225].
 * Images are HWC float arrays in RGB order until preprocessing.
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { GraftFormatError } from '../errors.js';

export interface RgbImage {
  width: number;
  height: number;
  /** RGB, row-major HWC, values 0..255. */
  data: Float32Array;
}

/** Refuse images whose decoded size would be absurd (a corrupt or hostile header). */
const MAX_PIXELS = 64 * 1024 * 1024;

function rgbaToRgb(width: number, height: number, rgba: Uint8Array | Buffer): RgbImage {
  const data = new Float32Array(width * height * 3);
  for (let i = 0, j = 0; i < width * height; i++, j += 4) {
    data[3 * i] = rgba[j]!;
    data[3 * i + 1] = rgba[j + 1]!;
    data[3 * i + 2] = rgba[j + 2]!;
  }
  return { width, height, data };
}

export function imageKind(bytes: Uint8Array): 'jpeg' | 'png' | 'gif' | 'unknown' {
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return 'jpeg';
  if (bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  if (bytes[0] === 0x47 && bytes[1] === 0x49 && bytes[2] === 0x46) return 'gif';
  return 'unknown';
}

/** Decodes a JPEG or PNG file's bytes; anything else, or a corrupt file, is a GraftFormatError naming `file`. */
export function decodeImage(bytes: Uint8Array, file: string): RgbImage {
  const kind = imageKind(bytes);
  try {
    if (kind === 'jpeg') {
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_PIXELS / 1e6, maxMemoryUsageInMB: 1024 });
      return rgbaToRgb(img.width, img.height, img.data);
    }
    if (kind === 'png') {
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      if (png.width * png.height > MAX_PIXELS) throw new Error(`${png.width}×${png.height} pixels is too large`);
      return rgbaToRgb(png.width, png.height, png.data);
    }
  } catch (e) {
    throw new GraftFormatError(`${file}: cannot decode ${kind.toUpperCase()} (${(e as Error).message}).`);
  }
  throw new GraftFormatError(`${file}: not a JPEG or PNG image (${kind === 'gif' ? 'a GIF, which Graft does not decode' : 'unknown format'}).`);
}

/** Bilinear resize with half-pixel centres (as TF's resize with antialias off, and PIL's bilinear on upsampling). */
export function resizeBilinear(img: RgbImage, width: number, height: number): RgbImage {
  const out = new Float32Array(width * height * 3);
  const sx = img.width / width;
  const sy = img.height / height;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), img.height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, img.height - 1);
    const wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), img.width - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, img.width - 1);
      const wx = fx - x0;
      for (let c = 0; c < 3; c++) {
        const p = (yy: number, xx: number) => img.data[(yy * img.width + xx) * 3 + c]!;
        const top = p(y0, x0) * (1 - wx) + p(y0, x1) * wx;
        const bottom = p(y1, x0) * (1 - wx) + p(y1, x1) * wx;
        out[(y * width + x) * 3 + c] = top * (1 - wy) + bottom * wy;
      }
    }
  }
  return { width, height, data: out };
}

export type Preprocessing = 'caffe' | 'torch' | 'none';

export const CAFFE_MEANS_BGR = [103.939, 116.779, 123.68] as const;
const TORCH_MEAN = [0.485, 0.456, 0.406] as const;
const TORCH_STD = [0.229, 0.224, 0.225] as const;

/** Applies a model's preprocessing to RGB 0..255 HWC data, in place; returns it. */
export function preprocess(data: Float32Array, mode: Preprocessing): Float32Array {
  if (mode === 'none') return data;
  for (let i = 0; i < data.length; i += 3) {
    const r = data[i]!, g = data[i + 1]!, b = data[i + 2]!;
    if (mode === 'caffe') {
      data[i] = b - CAFFE_MEANS_BGR[0];
      data[i + 1] = g - CAFFE_MEANS_BGR[1];
      data[i + 2] = r - CAFFE_MEANS_BGR[2];
    } else {
      data[i] = (r / 255 - TORCH_MEAN[0]) / TORCH_STD[0];
      data[i + 1] = (g / 255 - TORCH_MEAN[1]) / TORCH_STD[1];
      data[i + 2] = (b / 255 - TORCH_MEAN[2]) / TORCH_STD[2];
    }
  }
  return data;
}
