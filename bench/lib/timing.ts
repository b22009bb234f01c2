/**
 * Timing helpers for the benchmarks: repeated wall-clock runs after a warm-up, and GPU time from Graft's
 * timestamp profiler.
 *
 * Wall-clock runs time the whole call including its wait for completion (the caller's `fn` must await
 * it), so they include submit and synchronisation overhead; GPU time covers only the kernels themselves.
 */
import { runtime } from '../../src/gpu/runtime.js';

export interface RunStats {
  /** Milliseconds of each timed run, in the order they ran. */
  times: number[];
  bestMs: number;
  medianMs: number;
}

export interface RunOptions {
  /** Untimed runs first (pipeline JIT, buffer pool warm-up). */
  warmup?: number;
  /** Timed runs at most. */
  runs?: number;
  /** Timed runs at least, even past the time budget. */
  minRuns?: number;
  /** Stop adding runs once the timed runs took this long in total. */
  budgetMs?: number;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Runs `fn` `warmup` times untimed, then times it until `runs` runs or the budget is spent. */
export async function timeRuns(fn: () => Promise<void>, options: RunOptions = {}): Promise<RunStats> {
  const { warmup = 1, runs = 5, minRuns = 2, budgetMs = 5000 } = options;
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  let total = 0;
  while (times.length < runs && (times.length < minRuns || total < budgetMs)) {
    const t0 = performance.now();
    await fn();
    const ms = performance.now() - t0;
    times.push(ms);
    total += ms;
  }
  return { times, bestMs: Math.min(...times), medianMs: median(times) };
}

/**
 * Milliseconds of GPU time of the kernels that `fn` dispatches, from timestamp queries: the best of
 * `runs` profiled runs, or null when the adapter has no `timestamp-query`. `fn` must finish its GPU work
 * (await sync) before returning.
 */
export async function gpuTimeMs(fn: () => Promise<void>, runs = 3): Promise<number | null> {
  const profiler = runtime().profiler;
  if (!profiler.available) return null;
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    profiler.start();
    let records;
    try {
      await fn();
    } finally {
      records = await profiler.stop();
    }
    best = Math.min(best, records.reduce((s, r) => s + r.ms, 0));
  }
  return best;
}

/** GFLOP/s of `flops` floating-point operations done in `ms` milliseconds. */
export function gflops(flops: number, ms: number): number {
  return flops / (ms * 1e6);
}
