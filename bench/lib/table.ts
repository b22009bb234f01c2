/**
 * Benchmark output: an aligned text table on stdout, and the same results as JSON in bench/out/<name>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';

export type Cell = string | number | null;

export interface Column {
  key: string;
  title: string;
  /** Digits after the point for numbers (default 2). */
  digits?: number;
}

function format(v: Cell, digits: number): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return Number.isFinite(v) ? v.toFixed(digits) : String(v);
  return v;
}

/** Renders rows as a table: the first column left-aligned, the others right-aligned. */
export function renderTable(columns: readonly Column[], rows: ReadonlyArray<Record<string, Cell>>): string {
  const cells = rows.map((r) => columns.map((c) => format(r[c.key] ?? null, c.digits ?? 2)));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  ');
  return [line(columns.map((c) => c.title)), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

export function printTable(columns: readonly Column[], rows: ReadonlyArray<Record<string, Cell>>): void {
  console.log(renderTable(columns, rows));
}

/** Writes `data` as pretty JSON to bench/out/<name>.json and returns the path. */
export function writeJson(name: string, data: unknown): string {
  const dir = new URL('../out/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`${name}.json`, dir);
  writeFileSync(file, JSON.stringify(data, null, 2) + '\n');
  return file.pathname;
}
