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

/**
 * Refuse images whose decoded size would be absurd (a corrupt or hostile header): 64 Mpixels, an 8K × 8K
 * photo, is far more than any model input needs.
 */
export const MAX_PIXELS = 64 * 1024 * 1024;

export interface DecodeOptions {
  /** The largest width × height accepted, checked from the header before any pixel memory is allocated. */
  maxPixels?: number;
}

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

/**
 * A PNG's size from its IHDR chunk, which must come first: 8 bytes of signature, then the chunk's length
 * (4 bytes), its type 'IHDR' and width and height as big-endian u32. Null if the bytes are not laid out so
 * (pngjs then rejects the file itself).
 */
function pngHeaderSize(bytes: Uint8Array): { width: number; height: number } | null {
  if (bytes.length < 24) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(12, false) !== 0x49484452 /* 'IHDR' */) return null;
  return { width: view.getUint32(16, false), height: view.getUint32(20, false) };
}

/** Throws (a plain Error, wrapped by decodeImage) unless width × height is a sane, positive size. */
function checkSize(width: number, height: number, maxPixels: number): void {
  if (!(width > 0 && height > 0)) throw new Error(`the header gives a size of ${width}×${height} pixels`);
  if (width * height > maxPixels) throw new Error(`${width}×${height} pixels is more than the limit of ${maxPixels}`);
}

/**
 * Decodes a JPEG or PNG file's bytes; anything else, or a corrupt file, is a GraftFormatError naming `file`.
 *
 * A header claiming more than `maxPixels` pixels is refused before the decoder allocates anything: jpeg-js
 * checks its `maxResolutionInMP` when it reads the frame header, and for PNG we read IHDR ourselves, since
 * pngjs allocates the whole bitmap first. Whatever the decoders throw (their messages, RangeErrors, even
 * non-Error values) comes back as a GraftFormatError that names the file.
 */
export function decodeImage(bytes: Uint8Array, file: string, options: DecodeOptions = {}): RgbImage {
  const maxPixels = options.maxPixels ?? MAX_PIXELS;
  const kind = imageKind(bytes);
  try {
    if (kind === 'jpeg') {
      const img = jpeg.decode(bytes, {
        useTArray: true,
        formatAsRGBA: true,
        maxResolutionInMP: maxPixels / 1e6,
        // jpeg-js counts its own allocations; 16 bytes a pixel covers its component buffers and the output.
        maxMemoryUsageInMB: Math.max(16, Math.ceil((maxPixels * 16) / 2 ** 20)),
      });
      return checkedRgb(img.width, img.height, img.data, maxPixels);
    }
    if (kind === 'png') {
      const header = pngHeaderSize(bytes);
      if (header) checkSize(header.width, header.height, maxPixels);
      const png = PNG.sync.read(pngBuffer(bytes));
      return checkedRgb(png.width, png.height, png.data, maxPixels);
    }
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new GraftFormatError(`${file}: cannot decode ${kind.toUpperCase()} (${why}).`);
  }
  throw new GraftFormatError(`${file}: not a JPEG or PNG image (${kind === 'gif' ? 'a GIF, which Graft does not decode' : 'unknown format'}).`);
}

let BufferClass: typeof Buffer | undefined;

/**
 * `bytes` as the Buffer pngjs works on. Node and Deno have a global Buffer; a page has none, and the browser
 * build uses pngjs's own bundle (pngjs/browser.js), which carries a Buffer implementation inside: the class of
 * the value its encoder returns.
 */
export function pngBuffer(bytes: Uint8Array): Buffer {
  BufferClass ??= (globalThis as { Buffer?: typeof Buffer }).Buffer ?? (PNG.sync.write(new PNG({ width: 1, height: 1 })).constructor as typeof Buffer);
  return BufferClass.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The decoder's RGBA output as RGB, after checking that its size and length agree. */
function checkedRgb(width: number, height: number, rgba: Uint8Array | Buffer, maxPixels: number): RgbImage {
  checkSize(width, height, maxPixels);
  if (rgba.length < width * height * 4) throw new Error(`the decoder returned ${rgba.length} bytes for ${width}×${height} RGBA pixels`);
  return rgbaToRgb(width, height, rgba);
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

/**
 * The largest centred window of `img` with the aspect ratio width : height (Keras's `crop_to_aspect_ratio`),
 * so that a following resize to width × height does not distort the image.
 */
export function cropToAspectRatio(img: RgbImage, width: number, height: number): RgbImage {
  const cropW = Math.max(1, Math.min(img.width, Math.round((img.height * width) / height)));
  const cropH = Math.max(1, Math.min(img.height, Math.round((img.width * height) / width)));
  if (cropW === img.width && cropH === img.height) return img;
  const x0 = Math.floor((img.width - cropW) / 2);
  const y0 = Math.floor((img.height - cropH) / 2);
  const out = new Float32Array(cropW * cropH * 3);
  for (let y = 0; y < cropH; y++) out.set(img.data.subarray(((y0 + y) * img.width + x0) * 3, ((y0 + y) * img.width + x0 + cropW) * 3), y * cropW * 3);
  return { width: cropW, height: cropH, data: out };
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
