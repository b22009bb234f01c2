/**
 * Geometric resampling of one HWC image: the inverse map of a zoom, rotation, shift and left-right flip about
 * the image's centre, sampled bilinearly. Both augmentations use it: the image datasets' flip/zoom/rotation
 * (labelled-images.ts, Keras's 'nearest' fill) and the digit domains' zoomed and shifted views
 * (domain-augment.ts, zero fill, since a digit's background is 0).
 *
 * For each output pixel (x, y) the source point is found by undoing, in reverse order, what the forward map
 * does to a source pixel: flip, zoom by `zoom`, rotate by `angle`, shift by (shiftX, shiftY):
 *
 *   d = (x − cx − shiftX, y − cy − shiftY)                     undo the shift
 *   s = R(−angle) · d / zoom + c                              undo the rotation and the zoom
 *   sx = w − 1 − sx if flipped                                 undo the flip
 */

export interface Placement {
  /** Scale factor about the centre: above 1 enlarges the content (zooms in), below 1 shrinks it. */
  zoom: number;
  /** Rotation about the centre in radians. */
  angle: number;
  /** Shift of the content in pixels, applied after zoom and rotation. */
  shiftX: number;
  shiftY: number;
  /** Mirror left-right. */
  flip: boolean;
}

/** What a source point outside the image takes: the nearest edge pixel, or 0. */
export type Fill = 'edge' | 'zero';

export const IDENTITY: Placement = { zoom: 1, angle: 0, shiftX: 0, shiftY: 0, flip: false };

/** `data` ([height, width, channels], row-major) resampled under `placement`; a new array. */
export function resampleImage(data: Float32Array, width: number, height: number, channels: number, placement: Placement, fill: Fill): Float32Array {
  const { zoom, angle, shiftX, shiftY, flip } = placement;
  const out = new Float32Array(width * height * channels);
  const cx = (width - 1) / 2, cy = (height - 1) / 2;
  const cos = Math.cos(angle), sin = Math.sin(angle);
  // Where pixel (x, y) starts in `data`, or −1 outside the image with zero fill.
  const start = (x: number, y: number): number => {
    if (fill === 'edge') {
      x = Math.min(Math.max(x, 0), width - 1);
      y = Math.min(Math.max(y, 0), height - 1);
    } else if (x < 0 || x >= width || y < 0 || y >= height) {
      return -1;
    }
    return (y * width + x) * channels;
  };
  const value = (at: number, c: number) => (at < 0 ? 0 : data[at + c]!);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const dx = x - cx - shiftX, dy = y - cy - shiftY;
      let sx = (cos * dx + sin * dy) / zoom + cx;
      let sy = (-sin * dx + cos * dy) / zoom + cy;
      if (flip) sx = width - 1 - sx;
      // With edge fill the point is clamped first, so the 2×2 neighbourhood never reaches outside.
      if (fill === 'edge') {
        sx = Math.min(Math.max(sx, 0), width - 1);
        sy = Math.min(Math.max(sy, 0), height - 1);
      }
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      const wx = sx - x0, wy = sy - y0;
      const [p00, p01, p10, p11] = [start(x0, y0), start(x0 + 1, y0), start(x0, y0 + 1), start(x0 + 1, y0 + 1)];
      for (let c = 0; c < channels; c++) {
        const top = value(p00, c) * (1 - wx) + value(p01, c) * wx;
        const bottom = value(p10, c) * (1 - wx) + value(p11, c) * wx;
        out[(y * width + x) * channels + c] = top * (1 - wy) + bottom * wy;
      }
    }
  }
  return out;
}
