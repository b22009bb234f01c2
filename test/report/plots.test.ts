import { mkdirSync, writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { ArgumentError } from '../../src/errors.js';
import { CELL_WIDTH, GLYPH_HEIGHT, GLYPH_WIDTH, glyph, measureText } from '../../src/report/bitmap-font.js';
import { Canvas } from '../../src/report/canvas.js';
import { niceTicks, plotConfusionMatrix, plotTrainingHistory } from '../../src/report/plots.js';

const OUT = 'test-output/report';
const save = (name: string, bytes: Uint8Array) => {
  mkdirSync(OUT, { recursive: true });
  writeFileSync(`${OUT}/${name}`, bytes);
};
const decode = (bytes: Uint8Array) => PNG.sync.read(Buffer.from(bytes));

/** Counts pixels inside [x0, x1) × [y0, y1) that are not pure white. */
function inkCount(png: PNG, x0: number, x1: number, y0: number, y1: number): number {
  let count = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const i = (y * png.width + x) * 4;
      if (png.data[i] !== 255 || png.data[i + 1] !== 255 || png.data[i + 2] !== 255) count++;
    }
  }
  return count;
}

const epochs = 12;
const history = {
  loss: Array.from({ length: epochs }, (_, i) => 1.2 * Math.exp(-i / 4) + 0.15),
  val_loss: Array.from({ length: epochs }, (_, i) => 1.1 * Math.exp(-i / 5) + 0.25),
  accuracy: Array.from({ length: epochs }, (_, i) => 0.95 - 0.5 * Math.exp(-i / 3)),
  val_accuracy: Array.from({ length: epochs }, (_, i) => 0.9 - 0.45 * Math.exp(-i / 3.5)),
};

describe('bitmap font and canvas', () => {
  it('defines every printable ASCII glyph at 5×7', () => {
    for (let code = 32; code < 127; code++) {
      const rows = glyph(String.fromCharCode(code));
      expect(rows.length).toBe(GLYPH_HEIGHT);
      for (const row of rows) expect(row.length).toBe(GLYPH_WIDTH);
      if (code > 32) expect(rows.flat().some(Boolean)).toBe(true);
    }
  });

  it('text lights exactly the font pixels, at an integer scale', () => {
    const text = 'Hg7%';
    const scale = 2;
    const ox = 3, oy = 4;
    const canvas = new Canvas(measureText(text, scale).width + 8, GLYPH_HEIGHT * scale + 8);
    canvas.text(ox, oy, text, [0, 0, 0], scale);
    for (let y = 0; y < canvas.height; y++) {
      for (let x = 0; x < canvas.width; x++) {
        const gx = Math.floor((x - ox) / scale);
        const gy = Math.floor((y - oy) / scale);
        const charIndex = Math.floor(gx / CELL_WIDTH);
        const col = gx - charIndex * CELL_WIDTH;
        const lit = x >= ox && y >= oy && gy < GLYPH_HEIGHT && charIndex < text.length && col < GLYPH_WIDTH && glyph(text[charIndex])[gy][col];
        expect(canvas.getPixel(x, y)[0], `pixel (${x}, ${y})`).toBe(lit ? 0 : 255);
      }
    }
  });

  it('draws Bresenham lines with both end points and no gaps', () => {
    const canvas = new Canvas(20, 20);
    canvas.line(2, 3, 17, 11, [0, 0, 0]);
    expect(canvas.getPixel(2, 3)[0]).toBe(0);
    expect(canvas.getPixel(17, 11)[0]).toBe(0);
    // An x-major line lights exactly one pixel per column between its ends.
    for (let x = 2; x <= 17; x++) {
      let lit = 0;
      for (let y = 0; y < 20; y++) if (canvas.getPixel(x, y)[0] === 0) lit++;
      expect(lit).toBe(1);
    }
  });

  it('rejects bad sizes and scales', () => {
    expect(() => new Canvas(0, 10)).toThrow(ArgumentError);
    expect(() => new Canvas(10, 10).text(0, 0, 'a', [0, 0, 0], 1.5)).toThrow(/scale/);
  });
});

describe('niceTicks', () => {
  it('uses 1-2-5 steps that cover the range', () => {
    for (const [lo, hi] of [[0.45, 0.95], [0.15, 1.35], [1, 12], [3, 3], [-2.5, 7.1]]) {
      const { ticks } = niceTicks(lo, hi);
      expect(ticks[0]).toBeLessThanOrEqual(lo);
      expect(ticks[ticks.length - 1]).toBeGreaterThanOrEqual(hi);
      const step = ticks[1] - ticks[0];
      const mantissa = step / Math.pow(10, Math.floor(Math.log10(step) + 1e-9));
      expect([1, 2, 5, 10].some((m) => Math.abs(mantissa - m) < 1e-6)).toBe(true);
      expect(ticks.length).toBeGreaterThanOrEqual(3);
      expect(ticks.length).toBeLessThanOrEqual(12);
    }
  });
});

describe('plotTrainingHistory', () => {
  it('encodes a PNG of the requested size with ink in both panels', () => {
    const bytes = plotTrainingHistory(history, { title: 'Training history' });
    save('training-history.png', bytes);
    const png = decode(bytes);
    expect([png.width, png.height]).toEqual([1200, 560]);
    // Below the title, each half holds its own axes, ticks and curves.
    const half = png.width / 2;
    expect(inkCount(png, 0, half, 60, png.height)).toBeGreaterThan(2000);
    expect(inkCount(png, half, png.width, 60, png.height)).toBeGreaterThan(2000);
    // Both curve colours appear in both panels (train blue, validation orange).
    for (const [x0, x1] of [[0, half], [half, png.width]]) {
      let blue = 0, orange = 0;
      for (let y = 0; y < png.height; y++) {
        for (let x = x0; x < x1; x++) {
          const i = (y * png.width + x) * 4;
          if (png.data[i] === 31 && png.data[i + 1] === 119 && png.data[i + 2] === 180) blue++;
          if (png.data[i] === 255 && png.data[i + 1] === 127 && png.data[i + 2] === 14) orange++;
        }
      }
      expect(blue).toBeGreaterThan(100);
      expect(orange).toBeGreaterThan(100);
    }
  });

  it('is deterministic: same input, same bytes', () => {
    expect(Buffer.from(plotTrainingHistory(history)).equals(Buffer.from(plotTrainingHistory(history)))).toBe(true);
  });

  it('draws loss only when accuracy is missing, and a single epoch', () => {
    const bytes = plotTrainingHistory({ loss: [0.9] }, { width: 800, height: 400 });
    save('training-history-loss-only.png', bytes);
    const png = decode(bytes);
    expect([png.width, png.height]).toEqual([800, 400]);
    expect(inkCount(png, 400, 800, 60, 400)).toBeGreaterThan(500);
  });

  it('marks a phase boundary with a dashed grey line in both panels, and a legend row', () => {
    const grey = (png: PNG, x0: number, x1: number) => {
      let n = 0;
      for (let y = 80; y < png.height - 60; y++) {
        for (let x = x0; x < x1; x++) {
          const i = (y * png.width + x) * 4;
          if (png.data[i] === 110 && png.data[i + 1] === 110 && png.data[i + 2] === 110) n++;
        }
      }
      return n;
    };
    const plain = decode(plotTrainingHistory(history));
    const marked = decode(plotTrainingHistory(history, { marker: { at: 2, label: 'start fine-tuning' } }));
    save('training-history-marker.png', plotTrainingHistory(history, { marker: { at: 2, label: 'start fine-tuning' } }));
    const half = plain.width / 2;
    for (const [x0, x1] of [[0, half], [half, plain.width]] as const) expect(grey(marked, x0, x1) - grey(plain, x0, x1)).toBeGreaterThan(150);
    // A boundary outside the epochs draws nothing.
    expect(Buffer.from(plotTrainingHistory(history, { marker: { at: 99, label: 'x' } })).equals(Buffer.from(plotTrainingHistory(history)))).toBe(true);
  });

  it('validates the history', () => {
    expect(() => plotTrainingHistory({ loss: [] })).toThrow(/history.loss/);
    expect(() => plotTrainingHistory({ loss: [1], accuracy: [NaN] })).toThrow(/history.accuracy/);
  });
});

describe('plotConfusionMatrix', () => {
  const matrix = [
    [50, 2, 3, 0, 1],
    [4, 40, 1, 2, 0],
    [0, 3, 45, 5, 2],
    [1, 0, 6, 38, 1],
    [0, 1, 2, 0, 47],
  ];
  const names = ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips'];

  it('encodes a PNG whose darkest cell is the largest count', () => {
    const bytes = plotConfusionMatrix(matrix, names, { title: 'Flowers' });
    save('confusion-matrix.png', bytes);
    const png = decode(bytes);
    expect(png.width).toBeGreaterThan(400);
    expect(png.height).toBeGreaterThan(400);
    // The colour scale's darkest blue (8, 48, 107) is used by the cell holding 50.
    let darkest = 0;
    for (let i = 0; i < png.data.length; i += 4) if (png.data[i] === 8 && png.data[i + 1] === 48 && png.data[i + 2] === 107) darkest++;
    expect(darkest).toBeGreaterThan(1000);
    expect(Buffer.from(bytes).equals(Buffer.from(plotConfusionMatrix(matrix, names, { title: 'Flowers' })))).toBe(true);
  });

  it('normalizes rows', () => {
    const bytes = plotConfusionMatrix([[50, 2, 3], [4, 40, 1], [0, 0, 0]], ['cat', 'dog', 'bird'], { normalize: true });
    save('confusion-matrix-normalized.png', bytes);
    expect(decode(bytes).width).toBeGreaterThan(300);
  });

  it('validates the matrix against the class names', () => {
    expect(() => plotConfusionMatrix([[1, 2]], ['a', 'b'])).toThrow(/2×2/);
    expect(() => plotConfusionMatrix([[1, -1], [0, 1]], ['a', 'b'])).toThrow(/non-negative/);
    expect(() => plotConfusionMatrix([], [])).toThrow(/classNames/);
  });
});
