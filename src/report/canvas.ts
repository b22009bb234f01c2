/**
 * A tiny RGBA raster for report images: filled rectangles, 1-pixel lines (Bresenham's algorithm),
 * thick lines and polylines, text in the built-in 5×7 bitmap font at an integer scale, and PNG encoding
 * through pngjs. Everything is integer pixel work, so the same drawing always gives the same bytes.
 *
 * Coordinates are pixels, (0, 0) is the top-left corner, x grows right and y grows down. Drawing outside
 * the canvas is clipped silently (it is the normal case for clipped plot lines, not an error).
 */

import { PNG } from 'pngjs';
import { ArgumentError } from '../errors.js';
import { pngBuffer } from '../data/image.js';
import { CELL_WIDTH, GLYPH_HEIGHT, GLYPH_WIDTH, glyph, measureText } from './bitmap-font.js';

/** [red, green, blue] or [red, green, blue, alpha], each 0–255. */
export type Color = readonly [number, number, number] | readonly [number, number, number, number];

export class Canvas {
  readonly width: number;
  readonly height: number;
  /** Row-major RGBA bytes, 4 per pixel. */
  readonly data: Uint8Array;

  constructor(width: number, height: number, background: Color = [255, 255, 255]) {
    for (const [name, v] of [['width', width], ['height', height]] as const) {
      if (!Number.isInteger(v) || v < 1 || v > 16384) {
        throw new ArgumentError(`Canvas: ${name} must be an integer in [1, 16384], received ${v}`);
      }
    }
    this.width = width;
    this.height = height;
    this.data = new Uint8Array(width * height * 4);
    this.fillRect(0, 0, width, height, background);
  }

  /** Writes one pixel (no blending: the colour, alpha included, replaces what was there). */
  setPixel(x: number, y: number, color: Color): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y * this.width + x) * 4;
    this.data[i] = color[0];
    this.data[i + 1] = color[1];
    this.data[i + 2] = color[2];
    this.data[i + 3] = color.length === 4 ? color[3] : 255;
  }

  getPixel(x: number, y: number): [number, number, number, number] {
    const i = (y * this.width + x) * 4;
    return [this.data[i], this.data[i + 1], this.data[i + 2], this.data[i + 3]];
  }

  /** Fills the rectangle with top-left (x, y), w pixels wide and h tall. */
  fillRect(x: number, y: number, w: number, h: number, color: Color): void {
    const x0 = Math.max(0, Math.round(x));
    const y0 = Math.max(0, Math.round(y));
    const x1 = Math.min(this.width, Math.round(x + w));
    const y1 = Math.min(this.height, Math.round(y + h));
    for (let py = y0; py < y1; py++) for (let px = x0; px < x1; px++) this.setPixel(px, py, color);
  }

  /** A 1-pixel outline of the rectangle. */
  strokeRect(x: number, y: number, w: number, h: number, color: Color): void {
    this.line(x, y, x + w - 1, y, color);
    this.line(x, y + h - 1, x + w - 1, y + h - 1, color);
    this.line(x, y, x, y + h - 1, color);
    this.line(x + w - 1, y, x + w - 1, y + h - 1, color);
  }

  /**
   * Bresenham's line from (x0, y0) to (x1, y1), both ends included. The error term tracks how far the
   * ideal line is from the current pixel; each step moves along x, along y or both, whichever keeps it
   * smallest, using only integer additions.
   */
  line(x0: number, y0: number, x1: number, y1: number, color: Color, thickness = 1): void {
    x0 = Math.round(x0); y0 = Math.round(y0); x1 = Math.round(x1); y1 = Math.round(y1);
    const dx = Math.abs(x1 - x0);
    const dy = -Math.abs(y1 - y0);
    const sx = x0 < x1 ? 1 : -1;
    const sy = y0 < y1 ? 1 : -1;
    let err = dx + dy;
    const half = Math.floor((thickness - 1) / 2);
    for (;;) {
      if (thickness <= 1) this.setPixel(x0, y0, color);
      else this.fillRect(x0 - half, y0 - half, thickness, thickness, color);
      if (x0 === x1 && y0 === y1) break;
      const e2 = 2 * err;
      if (e2 >= dy) { err += dy; x0 += sx; }
      if (e2 <= dx) { err += dx; y0 += sy; }
    }
  }

  /** Joins consecutive points with lines. */
  polyline(points: ReadonlyArray<readonly [number, number]>, color: Color, thickness = 1): void {
    for (let i = 1; i < points.length; i++) {
      this.line(points[i - 1][0], points[i - 1][1], points[i][0], points[i][1], color, thickness);
    }
    if (points.length === 1) this.line(points[0][0], points[0][1], points[0][0], points[0][1], color, thickness);
  }

  /** A dashed horizontal or vertical-ish line: `dash` pixels on, `gap` off, along the longer axis. */
  dashedLine(x0: number, y0: number, x1: number, y1: number, color: Color, dash = 4, gap = 3, thickness = 1): void {
    const length = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0));
    if (length === 0) return this.line(x0, y0, x1, y1, color, thickness);
    for (let s = 0; s <= length; s += dash + gap) {
      const e = Math.min(length, s + dash - 1);
      const at = (t: number) => [x0 + ((x1 - x0) * t) / length, y0 + ((y1 - y0) * t) / length] as const;
      const [ax, ay] = at(s);
      const [bx, by] = at(e);
      this.line(ax, ay, bx, by, color, thickness);
    }
  }

  /**
   * Draws a single line of text with its top-left corner at (x, y); each font pixel becomes a
   * scale×scale block. Returns the width drawn.
   */
  text(x: number, y: number, text: string, color: Color, scale = 1): number {
    if (!Number.isInteger(scale) || scale < 1) {
      throw new ArgumentError(`Canvas.text: scale must be a positive integer, received ${scale}`);
    }
    x = Math.round(x);
    y = Math.round(y);
    for (let c = 0; c < text.length; c++) {
      const rows = glyph(text[c]);
      const gx = x + c * CELL_WIDTH * scale;
      for (let r = 0; r < GLYPH_HEIGHT; r++) {
        for (let col = 0; col < GLYPH_WIDTH; col++) {
          if (rows[r][col]) this.fillRect(gx + col * scale, y + r * scale, scale, scale, color);
        }
      }
    }
    return measureText(text, scale).width;
  }

  /** Text positioned by an anchor: align 'left' | 'center' | 'right' on x, baseline 'top' | 'middle' | 'bottom' on y. */
  textAligned(x: number, y: number, text: string, color: Color, opts: { scale?: number; align?: 'left' | 'center' | 'right'; baseline?: 'top' | 'middle' | 'bottom' } = {}): void {
    const scale = opts.scale ?? 1;
    const { width, height } = measureText(text, scale);
    const dx = opts.align === 'center' ? -Math.floor(width / 2) : opts.align === 'right' ? -width : 0;
    const dy = opts.baseline === 'middle' ? -Math.floor(height / 2) : opts.baseline === 'bottom' ? -height : 0;
    this.text(x + dx, y + dy, text, color, scale);
  }

  /** Text rotated 90° counter-clockwise (reads bottom to top), centred on (cx, cy): for y-axis labels. */
  textVertical(cx: number, cy: number, text: string, color: Color, scale = 1): void {
    const { width, height } = measureText(text, scale);
    const tmp = new Canvas(Math.max(1, width), Math.max(1, height), [0, 0, 0, 0]);
    tmp.text(0, 0, text, [255, 255, 255], scale);
    // Rotating CCW: source (sx, sy) lands at (sy, width - 1 - sx) in a height×width box.
    const left = Math.round(cx - height / 2);
    const top = Math.round(cy - width / 2);
    for (let sy = 0; sy < tmp.height; sy++) {
      for (let sx = 0; sx < tmp.width; sx++) {
        if (tmp.getPixel(sx, sy)[3] !== 0) this.setPixel(left + sy, top + (width - 1 - sx), color);
      }
    }
  }

  /** Encodes the canvas as an 8-bit RGBA PNG (deterministic: fixed filter and compression settings). */
  toPNG(): Uint8Array {
    const png = new PNG({ width: this.width, height: this.height, colorType: 6, inputHasAlpha: true });
    png.data = pngBuffer(this.data);
    const bytes = PNG.sync.write(png, { colorType: 6, deflateLevel: 9, filterType: -1 });
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
}
