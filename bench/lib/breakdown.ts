/**
 * Per-kernel breakdown of one step, from timestamp queries: where a model's time goes, kernel by kernel, and
 * how fast each kernel runs against the fastest one in the same step. It answers "what limits this step?":
 * a kernel family that takes a large share at a low GFLOP/s is where speed work pays; the gap between the
 * step's wall time and the sum of its kernels' GPU time is dispatch, readback and JavaScript overhead.
 *
 * While profiling, every dispatch gets its own compute pass (src/gpu/profiler.ts), which costs a little, so
 * the profiled step is an extra step, not one of the timed ones.
 */
import { runtime } from '../../src/gpu/runtime.js';
import type { KernelTiming } from '../../src/gpu/profiler.js';
import { type Cell, type Column, printTable } from './table.js';

export interface KernelFamily {
  /** The shader and entry point (e.g. conv2d_v2:main_vec4), without override constants. */
  kernel: string;
  calls: number;
  ms: number;
  /** Share of the step's summed GPU time. */
  share: number;
  /** null where the kernel does no counted arithmetic (copies, elementwise, reductions). */
  gflops: number | null;
}

export interface Breakdown {
  wallMs: number;
  gpuMs: number;
  dispatches: number;
  /** Slowest first. */
  kernels: KernelFamily[];
  /** The highest GFLOP/s of any family with counted arithmetic and at least 1% of the time. */
  bestGflops: number | null;
}

/** A kernel label without its override constants: "matmul_v3[TM=4,TN=4]" → "matmul_v3". */
export function kernelFamily(label: string): string {
  const i = label.indexOf('[');
  return i < 0 ? label : label.slice(0, i);
}

/** Groups one step's timings by kernel family. */
export function summarizeStep(records: KernelTiming[], wallMs: number): Breakdown {
  const by = new Map<string, { calls: number; ms: number; flops: number }>();
  for (const r of records) {
    const f = by.get(kernelFamily(r.kernel)) ?? { calls: 0, ms: 0, flops: 0 };
    f.calls++;
    f.ms += r.ms;
    f.flops += r.flops;
    by.set(kernelFamily(r.kernel), f);
  }
  const gpuMs = records.reduce((s, r) => s + r.ms, 0);
  const kernels = [...by.entries()]
    .map(([kernel, f]) => ({ kernel, calls: f.calls, ms: f.ms, share: gpuMs > 0 ? f.ms / gpuMs : 0, gflops: f.flops > 0 && f.ms > 0 ? f.flops / (f.ms * 1e6) : null }))
    .sort((a, b) => b.ms - a.ms);
  const counted = kernels.filter((k) => k.gflops !== null && k.share >= 0.01).map((k) => k.gflops!);
  return { wallMs, gpuMs, dispatches: records.length, kernels, bestGflops: counted.length ? Math.max(...counted) : null };
}

/** Runs `step` once under the profiler; null where the adapter has no timestamp-query. */
export async function profileStep(step: () => Promise<void>): Promise<Breakdown | null> {
  const profiler = runtime().profiler;
  if (!profiler.available) return null;
  profiler.start();
  const t0 = performance.now();
  let records: KernelTiming[];
  try {
    await step();
  } finally {
    records = await profiler.stop();
  }
  return summarizeStep(records, performance.now() - t0);
}

/** Prints the `top` slowest kernel families of a breakdown, with the step's GPU and overhead totals. */
export function printBreakdown(title: string, b: Breakdown, top = 8): void {
  const overhead = Math.max(0, b.wallMs - b.gpuMs);
  console.log(`\n${title}: ${b.dispatches} dispatches, ${b.gpuMs.toFixed(0)} ms of kernels in a ${b.wallMs.toFixed(0)} ms step (${overhead.toFixed(0)} ms outside kernels)`);
  const rows: Array<Record<string, Cell>> = b.kernels.slice(0, top).map((k) => ({
    kernel: k.kernel, calls: k.calls, ms: k.ms, share: `${(100 * k.share).toFixed(1)}%`, gf: k.gflops,
    vs: k.gflops !== null && b.bestGflops ? b.bestGflops / k.gflops : null,
  }));
  const rest = b.kernels.slice(top);
  if (rest.length) rows.push({ kernel: `(${rest.length} more)`, calls: rest.reduce((n, k) => n + k.calls, 0), ms: rest.reduce((n, k) => n + k.ms, 0), share: `${(100 * rest.reduce((n, k) => n + k.share, 0)).toFixed(1)}%`, gf: null, vs: null });
  const columns: Column[] = [
    { key: 'kernel', title: 'kernel' }, { key: 'calls', title: 'calls', digits: 0 }, { key: 'ms', title: 'GPU ms', digits: 1 },
    { key: 'share', title: 'share' }, { key: 'gf', title: 'GFLOP/s', digits: 2 }, { key: 'vs', title: 'best ÷ this', digits: 1 },
  ];
  printTable(columns, rows);
}
