/**
 * PNG plots for training reports, drawn on the pure-TypeScript Canvas (no native dependency):
 *
 * - plotTrainingHistory: the two panels of the Keras transfer-learning tutorial's plot_training_history,
 *   accuracy (train vs validation) and loss (train vs validation) against the epoch, with ticks, tick
 *   labels, axis labels, a legend per panel and a title.
 * - plotConfusionMatrix: one square cell per (true, predicted) pair coloured on a white-to-blue scale,
 *   the count (or row fraction when normalized) written in each cell, class names on both axes and a
 *   colour bar.
 *
 * Axis ticks use the "nice numbers" rule (Heckbert, Graphics Gems, 1990): the step is 1, 2 or 5 times a
 * power of ten, chosen so that about five ticks cover the data range.
 */

import { ArgumentError } from '../errors.js';
import { measureText } from './bitmap-font.js';
import { Canvas, type Color } from './canvas.js';

export interface TrainingHistory {
  loss: number[];
  val_loss?: number[];
  accuracy?: number[];
  val_accuracy?: number[];
}

const BLACK: Color = [0, 0, 0];
const GREY: Color = [110, 110, 110];
const GRID: Color = [228, 228, 228];
const WHITE: Color = [255, 255, 255];
const TRAIN_COLOR: Color = [31, 119, 180]; // matplotlib's first two default colours
const VAL_COLOR: Color = [255, 127, 14];
const TEXT = 2; // scale of ordinary text: 10×14-pixel glyphs
const TITLE = 3;

/** Ticks covering [lo, hi] with a 1-2-5 step; returns the ticks and the number of decimals they need. */
export function niceTicks(lo: number, hi: number, target = 5, integer = false): { ticks: number[]; decimals: number } {
  if (!(hi > lo)) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / target;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const fraction = raw / power;
  let step = (fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10) * power;
  if (integer) step = Math.max(1, Math.round(step));
  const first = Math.floor(lo / step + 1e-9) * step;
  const last = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let i = 0; first + i * step <= last + step * 1e-9; i++) ticks.push(+(first + i * step).toFixed(12));
  const decimals = integer ? 0 : Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return { ticks, decimals };
}

interface Series {
  label: string;
  values: number[];
  color: Color;
}

type Rect = { x: number; y: number; w: number; h: number };

function checkSeries(fn: string, name: string, values: unknown): void {
  if (!Array.isArray(values) || values.length === 0 || values.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
    throw new ArgumentError(`${fn}: history.${name} must be a non-empty array of finite numbers`);
  }
}

/**
 * One line-chart panel inside `area`: subtitle on top, y tick labels and y label on the left, x ticks
 * (1, 2, … : epochs unless `xLabel` says otherwise) and the x label below, legend inside the plot at the given corner.
 */
function drawPanel(canvas: Canvas, area: Rect, subtitle: string, yLabel: string, series: Series[], legendCorner: 'upper' | 'lower', marker?: PlotMarker, xLabel = 'epoch'): void {
  const lineH = measureText('0', TEXT).height;
  canvas.textAligned(area.x + area.w / 2, area.y, subtitle, BLACK, { scale: TEXT, align: 'center' });
  if (series.length === 0) {
    canvas.textAligned(area.x + area.w / 2, area.y + area.h / 2, `no ${yLabel} recorded`, GREY, { scale: TEXT, align: 'center', baseline: 'middle' });
    return;
  }
  const all = series.flatMap((s) => s.values);
  const epochs = Math.max(...series.map((s) => s.values.length));
  const y = niceTicks(Math.min(...all), Math.max(...all));
  const x = niceTicks(1, Math.max(2, epochs), 6, true);
  const xTicks = x.ticks.filter((t) => t >= 1 && t <= epochs);
  // Like matplotlib's default margins, keep the first and last points off the frame.
  const xPad = epochs === 1 ? 0.5 : (epochs - 1) * 0.03;
  const yLabels = y.ticks.map((t) => t.toFixed(y.decimals));
  const yLabelWidth = Math.max(...yLabels.map((s) => measureText(s, TEXT).width));

  const plot: Rect = {
    x: area.x + lineH + 12 + yLabelWidth + 8,
    y: area.y + lineH + 14,
    w: 0,
    h: 0,
  };
  plot.w = area.x + area.w - 16 - plot.x;
  plot.h = area.y + area.h - (lineH * 2 + 22) - plot.y;
  const yMin = y.ticks[0];
  const yMax = y.ticks[y.ticks.length - 1];
  const xMin = 1 - xPad;
  const xMax = epochs + xPad;
  const px = (e: number) => plot.x + ((e - xMin) / (xMax - xMin)) * (plot.w - 1);
  const py = (v: number) => plot.y + plot.h - 1 - ((v - yMin) / (yMax - yMin)) * (plot.h - 1);

  // Grid and ticks.
  y.ticks.forEach((t, i) => {
    const ty = Math.round(py(t));
    canvas.line(plot.x, ty, plot.x + plot.w - 1, ty, GRID);
    canvas.line(plot.x - 5, ty, plot.x - 1, ty, BLACK);
    canvas.textAligned(plot.x - 8, ty, yLabels[i], BLACK, { scale: TEXT, align: 'right', baseline: 'middle' });
  });
  for (const t of xTicks) {
    const tx = Math.round(px(t));
    canvas.line(tx, plot.y, tx, plot.y + plot.h - 1, GRID);
    canvas.line(tx, plot.y + plot.h, tx, plot.y + plot.h + 4, BLACK);
    canvas.textAligned(tx, plot.y + plot.h + 8, String(t), BLACK, { scale: TEXT, align: 'center' });
  }
  canvas.strokeRect(plot.x - 1, plot.y - 1, plot.w + 2, plot.h + 2, BLACK);
  canvas.textAligned(plot.x + plot.w / 2, area.y + area.h - 2, xLabel, BLACK, { scale: TEXT, align: 'center', baseline: 'bottom' });
  canvas.textVertical(area.x + lineH / 2 + 2, plot.y + plot.h / 2, yLabel, BLACK, TEXT);

  // A phase boundary (e.g. where fine-tuning began): a dashed vertical line between two epochs.
  const showMarker = marker !== undefined && marker.at > 0 && marker.at < epochs;
  const markerX = showMarker ? Math.round(px(marker.at + 0.5)) : 0;
  if (showMarker) for (let yy = plot.y; yy < plot.y + plot.h; yy += 8) canvas.line(markerX, yy, markerX, Math.min(yy + 4, plot.y + plot.h - 1), GREY, 2);

  // Curves, with a marker at each epoch when there are few enough to see them.
  for (const s of series) {
    const points = s.values.map((v, i) => [px(i + 1), py(v)] as const);
    canvas.polyline(points, s.color, 2);
    if (s.values.length <= 40) for (const [mx, my] of points) canvas.fillRect(mx - 2, my - 2, 5, 5, s.color);
  }

  // Legend box in a corner of the plot; a phase boundary gets a row with a dashed swatch.
  const rows = [...series.map((s) => s.label), ...(showMarker ? [marker!.label] : [])];
  const swatch = 24;
  const legendW = 12 + swatch + 8 + Math.max(...rows.map((r) => measureText(r, TEXT).width)) + 12;
  const legendH = 10 + rows.length * (lineH + 8) + 2;
  const lx = plot.x + plot.w - legendW - 10;
  const ly = legendCorner === 'upper' ? plot.y + 10 : plot.y + plot.h - legendH - 10;
  canvas.fillRect(lx, ly, legendW, legendH, WHITE);
  canvas.strokeRect(lx, ly, legendW, legendH, GREY);
  rows.forEach((label, i) => {
    const rowY = ly + 10 + i * (lineH + 8);
    const midY = rowY + lineH / 2;
    if (i < series.length) canvas.line(lx + 12, midY, lx + 12 + swatch, midY, series[i]!.color, 2);
    else for (let xx = lx + 12; xx < lx + 12 + swatch; xx += 8) canvas.line(xx, midY, Math.min(xx + 4, lx + 12 + swatch), midY, GREY, 2);
    canvas.text(lx + 12 + swatch + 8, rowY, label, BLACK, TEXT);
  });
}

/** A vertical line after epoch index `at` (0-based: the line falls between epochs at and at + 1). */
export interface PlotMarker {
  at: number;
  label: string;
}

/**
 * The two-panel training-history figure (accuracy, loss) as PNG bytes. `marker` draws a phase boundary, as
 * the Keras tutorial's "Start Fine Tuning" line: `{ at: initialEpochs - 1, label: 'start fine-tuning' }`.
 */
export function plotTrainingHistory(history: TrainingHistory, opts: { title?: string; width?: number; height?: number; marker?: PlotMarker } = {}): Uint8Array {
  const fn = 'plotTrainingHistory';
  checkSeries(fn, 'loss', history?.loss);
  for (const key of ['val_loss', 'accuracy', 'val_accuracy'] as const) {
    if (history[key] !== undefined) checkSeries(fn, key, history[key]);
  }
  const width = opts.width ?? 1200;
  const height = opts.height ?? 560;
  if (width < 600 || height < 300) {
    throw new ArgumentError(`${fn}: the figure must be at least 600×300 pixels, received ${width}×${height}`);
  }
  const canvas = new Canvas(width, height);
  const title = opts.title ?? 'Training history';
  canvas.textAligned(width / 2, 18, title, BLACK, { scale: TITLE, align: 'center' });
  const top = 18 + measureText('0', TITLE).height + 22;
  const panelW = Math.floor((width - 40) / 2);
  const make = (train?: number[], val?: number[]): Series[] => [
    ...(train ? [{ label: 'train', values: train, color: TRAIN_COLOR }] : []),
    ...(val ? [{ label: 'validation', values: val, color: VAL_COLOR }] : []),
  ];
  drawPanel(canvas, { x: 16, y: top, w: panelW, h: height - top - 16 }, 'Model accuracy', 'accuracy', make(history.accuracy, history.val_accuracy), 'lower', opts.marker);
  drawPanel(canvas, { x: 24 + panelW, y: top, w: panelW, h: height - top - 16 }, 'Model loss', 'loss', make(history.loss, history.val_loss), 'upper', opts.marker);
  return canvas.toPNG();
}

/** matplotlib's "Blues" end points, interpolated linearly through a middle blue: t in [0, 1]. */
function blues(t: number): Color {
  const stops: [number, number, number][] = [[247, 251, 255], [107, 174, 214], [8, 48, 107]];
  const u = Math.min(1, Math.max(0, t)) * 2;
  const i = Math.min(1, Math.floor(u));
  const f = u - i;
  return [0, 1, 2].map((c) => Math.round(stops[i][c] + (stops[i + 1][c] - stops[i][c]) * f)) as unknown as Color;
}

/**
 * The confusion matrix as a PNG. Rows are true classes, columns predicted classes. With
 * normalize: true each row is divided by its sum (the recall of that class lies on the diagonal) and the
 * cells show fractions with two decimals; a row with no samples stays 0.
 */
export function plotConfusionMatrix(matrix: number[][], classNames: string[], opts: { title?: string; normalize?: boolean } = {}): Uint8Array {
  const fn = 'plotConfusionMatrix';
  const k = classNames?.length ?? 0;
  if (k === 0) throw new ArgumentError(`${fn}: classNames must be a non-empty array`);
  if (!Array.isArray(matrix) || matrix.length !== k || matrix.some((r) => !Array.isArray(r) || r.length !== k)) {
    throw new ArgumentError(`${fn}: matrix must be ${k}×${k} to match classNames (${k} names)`);
  }
  if (matrix.some((r) => r.some((v) => !Number.isFinite(v) || v < 0))) {
    throw new ArgumentError(`${fn}: matrix entries must be finite and non-negative`);
  }
  const normalize = opts.normalize ?? false;
  const values = matrix.map((row) => {
    const sum = row.reduce((a, b) => a + b, 0);
    return normalize ? row.map((v) => (sum === 0 ? 0 : v / sum)) : row.slice();
  });
  const maxValue = Math.max(...values.flat(), normalize ? 1 : 1e-12);
  const format = (v: number) => (normalize ? v.toFixed(2) : Number.isInteger(v) ? String(v) : v.toFixed(2));

  const cell = Math.max(36, Math.min(96, Math.floor(640 / k)));
  const lineH = measureText('0', TEXT).height;
  const nameW = Math.max(...classNames.map((s) => measureText(s, TEXT).width));
  const verticalX = nameW > cell - 4; // x-axis class names rotated when they do not fit under a cell
  const titleH = measureText('0', TITLE).height;
  const gridX = 16 + lineH + 12 + nameW + 10;
  const gridY = 18 + titleH + 24;
  const gridSize = cell * k;
  const xNamesH = verticalX ? nameW : lineH;
  const barX = gridX + gridSize + 28;
  const barW = 22;
  const bar = niceTicks(0, maxValue, 5, !normalize && maxValue >= 5);
  const barTicks = bar.ticks.filter((t) => t <= maxValue + 1e-9);
  const barLabelW = Math.max(...barTicks.map((t) => measureText(t.toFixed(bar.decimals), TEXT).width));
  const title = opts.title ?? (normalize ? 'Confusion matrix (normalized)' : 'Confusion matrix');
  const width = Math.max(barX + barW + 10 + barLabelW + 20, measureText(title, TITLE).width + 40);
  const height = gridY + gridSize + 10 + xNamesH + 12 + lineH + 16;
  const canvas = new Canvas(width, height);
  canvas.textAligned(width / 2, 18, title, BLACK, { scale: TITLE, align: 'center' });

  for (let t = 0; t < k; t++) {
    for (let p = 0; p < k; p++) {
      const v = values[t][p];
      const shade = v / maxValue;
      canvas.fillRect(gridX + p * cell, gridY + t * cell, cell, cell, blues(shade));
      const label = format(v);
      const scale = measureText(label, TEXT).width <= cell - 6 ? TEXT : 1;
      canvas.textAligned(gridX + p * cell + cell / 2, gridY + t * cell + cell / 2, label, shade > 0.5 ? WHITE : BLACK, { scale, align: 'center', baseline: 'middle' });
    }
    canvas.textAligned(gridX - 10, gridY + t * cell + cell / 2, classNames[t], BLACK, { scale: TEXT, align: 'right', baseline: 'middle' });
    const cx = gridX + t * cell + cell / 2;
    if (verticalX) {
      const w = measureText(classNames[t], TEXT).width;
      canvas.textVertical(cx, gridY + gridSize + 10 + w / 2, classNames[t], BLACK, TEXT);
    } else {
      canvas.textAligned(cx, gridY + gridSize + 10, classNames[t], BLACK, { scale: TEXT, align: 'center' });
    }
  }
  canvas.strokeRect(gridX - 1, gridY - 1, gridSize + 2, gridSize + 2, BLACK);
  canvas.textAligned(gridX + gridSize / 2, height - 16, 'predicted', BLACK, { scale: TEXT, align: 'center', baseline: 'bottom' });
  canvas.textVertical(16 + lineH / 2, gridY + gridSize / 2, 'true', BLACK, TEXT);

  // Colour bar: top is maxValue, bottom 0.
  for (let r = 0; r < gridSize; r++) canvas.line(barX, gridY + r, barX + barW - 1, gridY + r, blues(1 - r / (gridSize - 1)));
  canvas.strokeRect(barX - 1, gridY - 1, barW + 2, gridSize + 2, BLACK);
  for (const t of barTicks) {
    const ty = Math.round(gridY + gridSize - 1 - (t / maxValue) * (gridSize - 1));
    canvas.line(barX + barW, ty, barX + barW + 4, ty, BLACK);
    canvas.textAligned(barX + barW + 8, ty, t.toFixed(bar.decimals), BLACK, { scale: TEXT, baseline: 'middle' });
  }
  return canvas.toPNG();
}

const PALETTE: Color[] = [TRAIN_COLOR, VAL_COLOR, [44, 160, 44], [214, 39, 40], [148, 103, 189], [140, 86, 75]];

/**
 * One panel of named curves against the epoch (1, 2, …), e.g. target accuracy and domain-classifier
 * accuracy of a domain-adaptation run. Colours follow matplotlib's default cycle.
 */
export function plotLines(
  series: Array<{ label: string; values: number[] }>,
  opts: { title?: string; subtitle?: string; yLabel?: string; xLabel?: string; width?: number; height?: number; legend?: 'upper' | 'lower' } = {},
): Uint8Array {
  const fn = 'plotLines';
  if (!Array.isArray(series) || series.length === 0 || series.length > PALETTE.length) {
    throw new ArgumentError(`${fn}: series must be a list of 1 to ${PALETTE.length} curves, received ${Array.isArray(series) ? series.length : typeof series}`);
  }
  series.forEach((s, i) => checkSeries(fn, `series[${i}] (${s?.label})`, s?.values));
  const width = opts.width ?? 800;
  const height = opts.height ?? 560;
  if (width < 400 || height < 300) throw new ArgumentError(`${fn}: the figure must be at least 400×300 pixels, received ${width}×${height}`);
  const canvas = new Canvas(width, height);
  canvas.textAligned(width / 2, 18, opts.title ?? '', BLACK, { scale: TITLE, align: 'center' });
  const top = 18 + measureText('0', TITLE).height + 22;
  const colored: Series[] = series.map((s, i) => ({ label: s.label, values: s.values, color: PALETTE[i]! }));
  drawPanel(canvas, { x: 16, y: top, w: width - 32, h: height - top - 16 }, opts.subtitle ?? '', opts.yLabel ?? 'value', colored, opts.legend ?? 'lower', undefined, opts.xLabel ?? 'epoch');
  return canvas.toPNG();
}
