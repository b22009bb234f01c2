/**
 * Matmul benchmark: GFLOP/s of each Graft kernel version against TensorFlow.js (WebGPU backend) on the
 * same adapter, on square sizes and on the dense-layer shapes of VGG16 and ResNet50 heads.
 *
 *   npm run bench -- matmul [--sizes 1024,fc2-b8] [--versions v2,v3] [--runs 5] [--no-tfjs]
 *
 * Graft is timed by wall clock around the dispatch plus `await runtime().sync()`; tfjs around `tf.matMul`
 * plus `await c.data()` (which also reads the result back, a few ms at most here). Each cell is a warm-up
 * run and then up to `runs` timed runs within a time budget; the table shows median / best GFLOP/s.
 * Graft's kernel GPU time comes from one extra run under the timestamp profiler. Every Graft output is
 * spot-checked against f64 dot products before it is timed.
 */
import { loadavg } from 'node:os';
import { ArgumentError } from '../src/errors.js';
import { runtime } from '../src/gpu/runtime.js';
import { adapterName } from '../src/gpu/device.js';
import { tensor } from '../src/tensor/create.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { type MatmulVersion, MATMUL_VERSIONS, forceMatmulVersion, matmul, matmulKernelFor, matmulProblem } from '../src/ops/matmul.js';
import { type RunStats, gflops, gpuTimeMs, timeRuns } from './lib/timing.js';
import { randomData } from './lib/data.js';
import { type Cell, type Column, printTable, writeJson } from './lib/table.js';
import { type Tf, loadTfjsWebgpu } from './lib/tfjs.js';

export const description = 'matmul GFLOP/s per kernel version vs tfjs-webgpu (square and dense-layer shapes)';

interface Size {
  id: string;
  what: string;
  M: number;
  K: number;
  N: number;
  transposeB?: boolean;
}

const SIZES: Size[] = [
  { id: '256', what: 'square', M: 256, K: 256, N: 256 },
  { id: '512', what: 'square', M: 512, K: 512, N: 512 },
  { id: '1024', what: 'square', M: 1024, K: 1024, N: 1024 },
  { id: '2048', what: 'square', M: 2048, K: 2048, N: 2048 },
  { id: 'fc1-b8', what: 'VGG16 fc1, batch 8', M: 8, K: 25088, N: 4096 },
  { id: 'fc2-b8', what: 'VGG16 fc2, batch 8', M: 8, K: 4096, N: 4096 },
  { id: 'fc2-b32', what: 'VGG16 fc2, batch 32', M: 32, K: 4096, N: 4096 },
  { id: 'fc2-b8-dx', what: 'VGG16 fc2 backward dX = dY·Wᵀ', M: 8, K: 4096, N: 4096, transposeB: true },
  { id: 'r50fc-b8', what: 'ResNet50 fc, batch 8', M: 8, K: 2048, N: 1000 },
  { id: 'head-b32', what: 'ResNet50 head 2048→512, batch 32', M: 32, K: 2048, N: 512 },
];

/** v1 is skipped above this many flops: at ~0.6 GFLOP/s one run would take seconds. */
const NAIVE_MAX_FLOPS = 0.6e9;
const CELL_BUDGET_MS = 4000;

interface Options {
  sizes: Size[];
  versions: MatmulVersion[];
  runs: number;
  tfjs: boolean;
}

function parseArgs(args: string[]): Options {
  const opts: Options = { sizes: SIZES, versions: [...MATMUL_VERSIONS], runs: 5, tfjs: true };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new ArgumentError(`matmul bench: ${a} needs a value`);
      return v;
    };
    if (a === '--sizes') {
      const ids = value().split(',');
      const unknown = ids.filter((id) => !SIZES.some((s) => s.id === id));
      if (unknown.length) throw new ArgumentError(`matmul bench: unknown sizes ${unknown.join(', ')}; known: ${SIZES.map((s) => s.id).join(', ')}`);
      opts.sizes = SIZES.filter((s) => ids.includes(s.id));
    } else if (a === '--versions') {
      opts.versions = value().split(',') as MatmulVersion[];
      const bad = opts.versions.filter((v) => !MATMUL_VERSIONS.includes(v));
      if (bad.length) throw new ArgumentError(`matmul bench: unknown versions ${bad.join(', ')}; known: ${MATMUL_VERSIONS.join(', ')}`);
    } else if (a === '--runs') {
      opts.runs = Number(value());
      if (!(opts.runs >= 1)) throw new ArgumentError('matmul bench: --runs must be at least 1');
    } else if (a === '--no-tfjs') {
      opts.tfjs = false;
    } else {
      throw new ArgumentError(`matmul bench: unknown option ${a}; options: --sizes, --versions, --runs, --no-tfjs`);
    }
  }
  return opts;
}

/** Compares 32 sampled outputs with f64 dot products; returns the worst error relative to the largest |ref|. */
function spotCheck(c: Float32Array, a: Float32Array, b: Float32Array, s: Size): number {
  let worst = 0;
  let scale = 1e-30;
  for (let t = 0; t < 32; t++) {
    const m = (t * 7919) % s.M;
    const n = (t * 104729 + 13) % s.N;
    let ref = 0;
    for (let k = 0; k < s.K; k++) ref += a[m * s.K + k]! * b[s.transposeB ? n * s.K + k : k * s.N + n]!;
    worst = Math.max(worst, Math.abs(c[m * s.N + n]! - ref));
    scale = Math.max(scale, Math.abs(ref));
  }
  return worst / scale;
}

const fmt = (st: { median: number; best: number } | null) => (st ? `${st.median.toFixed(2)} / ${st.best.toFixed(2)}` : null);

export async function run(args: string[]): Promise<void> {
  const opts = parseArgs(args);
  const rt = runtime();
  const adapter = adapterName(rt.gpu.info);
  const maxBinding = rt.gpu.limits.maxStorageBufferBindingSize;
  console.log(`Adapter: ${adapter}`);
  console.log(`Features: subgroups ${rt.gpu.features.subgroups}, shader-f16 ${rt.gpu.features.f16}, timestamp-query ${rt.gpu.features.timestampQuery}`);
  console.log(`Load average at start: ${loadavg().map((l) => l.toFixed(2)).join(', ')}\n`);

  let tf: Tf | null = null;
  let tfjsNote: string | null = opts.tfjs ? null : 'disabled (--no-tfjs)';
  if (opts.tfjs) {
    const r = await loadTfjsWebgpu();
    if ('tf' in r) tf = r.tf;
    else {
      tfjsNote = `tfjs-webgpu failed to initialise: ${r.error}`;
      console.log(`${tfjsNote}; continuing without it.\n`);
    }
  }

  const results: Array<Record<string, unknown>> = [];
  const rows: Array<Record<string, Cell>> = [];
  for (const s of opts.sizes) {
    const flops = 2 * s.M * s.N * s.K;
    const shape = `[${s.M},${s.K}]·[${s.K},${s.N}]${s.transposeB ? 'ᵀ' : ''}`;
    const row: Record<string, Cell> = { size: s.id, shape, note: '' };
    const result: Record<string, unknown> = { ...s, flops, graft: {} };
    const bBytes = s.K * s.N * 4;
    const aBytes = s.M * s.K * 4;
    if (Math.max(aBytes, bBytes, s.M * s.N * 4) > maxBinding) {
      const note = `skipped: an operand takes ${(Math.max(aBytes, bBytes) / 2 ** 20).toFixed(0)} MiB, over maxStorageBufferBindingSize ${(maxBinding / 2 ** 20).toFixed(0)} MiB`;
      console.log(`${s.id} ${shape}: ${note}`);
      results.push({ ...result, skipped: note });
      rows.push({ ...row, note: 'skipped (binding limit)' });
      continue;
    }
    const aData = randomData(s.M * s.K, 1);
    const bData = randomData(s.K * s.N, 2);
    const a = tensor(aData, [s.M, s.K]).keep();
    const b = tensor(bData, s.transposeB ? [s.N, s.K] : [s.K, s.N]).keep();
    const opts2 = { transposeB: s.transposeB ?? false };
    const auto = matmulKernelFor(matmulProblem('matmul', a.shape, b.shape, false, opts2.transposeB)).version;
    row.auto = auto;
    const graft = result.graft as Record<string, unknown>;
    try {
      for (const v of opts.versions) {
        if (v === 'v1' && flops > NAIVE_MAX_FLOPS) {
          graft[v] = { skipped: `naive kernel skipped above ${NAIVE_MAX_FLOPS / 1e9} GFLOP` };
          continue;
        }
        forceMatmulVersion(v);
        const ran = matmulKernelFor(matmulProblem('matmul', a.shape, b.shape, false, opts2.transposeB)).version;
        const once = async () => {
          const c = matmul(a, b, opts2);
          await rt.sync();
          c.dispose();
        };
        const c0 = matmul(a, b, opts2);
        const relErr = spotCheck((await c0.data()) as Float32Array, aData, bData, s);
        c0.dispose();
        if (!(relErr < 1e-3)) throw new Error(`matmul ${v} on ${shape}: spot check failed, relative error ${relErr}`);
        const st: RunStats = await timeRuns(once, { warmup: 1, runs: opts.runs, budgetMs: CELL_BUDGET_MS });
        const gpuMs = await gpuTimeMs(once);
        const cell = { median: gflops(flops, st.medianMs), best: gflops(flops, st.bestMs) };
        graft[v] = { ranAs: ran, ...st, ...cell, gpuMs, gpuGflops: gpuMs ? gflops(flops, gpuMs) : null, spotCheckRelErr: relErr };
        row[v] = fmt(cell) + (ran !== v ? ` (${ran})` : '');
        if (v === auto) row.gpu = gpuMs ? gflops(flops, gpuMs) : null;
      }
    } finally {
      forceMatmulVersion(null);
      a.dispose();
      b.dispose();
    }

    if (tf) {
      try {
        const ta = tf.tensor2d(aData, [s.M, s.K]);
        const tb = tf.tensor2d(bData, s.transposeB ? [s.N, s.K] : [s.K, s.N]);
        const st = await timeRuns(
          async () => {
            const c = tf!.matMul(ta, tb, false, s.transposeB ?? false);
            await c.data();
            c.dispose();
          },
          { warmup: 1, runs: opts.runs, budgetMs: CELL_BUDGET_MS },
        );
        ta.dispose();
        tb.dispose();
        const cell = { median: gflops(flops, st.medianMs), best: gflops(flops, st.bestMs) };
        result.tfjs = { ...st, ...cell };
        row.tfjs = fmt(cell);
        const mine = graft[auto] as { median?: number; best?: number } | undefined;
        if (mine?.median) {
          row.ratio = mine.median / cell.median;
          result.ratioMedian = mine.median / cell.median;
          result.ratioBest = mine.best! / cell.best;
        }
      } catch (e) {
        result.tfjs = { error: (e as Error).message };
        row.tfjs = 'error';
      }
    }
    results.push(result);
    rows.push(row);
    console.log(`${s.id} ${shape}: done`);
  }

  const columns: Column[] = [
    { key: 'size', title: 'size' },
    { key: 'shape', title: 'A·B' },
    ...opts.versions.map((v) => ({ key: v, title: `${v} med/best` })),
    { key: 'auto', title: 'auto' },
    { key: 'gpu', title: 'auto GPU', digits: 1 },
    { key: 'tfjs', title: 'tfjs med/best' },
    { key: 'ratio', title: 'auto/tfjs' },
    { key: 'note', title: 'note' },
  ];
  console.log(`\nMatmul GFLOP/s on ${adapter} (median / best of warm runs; 'auto GPU' from timestamp queries)`);
  printTable(columns, rows);
  if (tfjsNote) console.log(`tfjs: ${tfjsNote}`);
  console.log(`Load average at end: ${loadavg().map((l) => l.toFixed(2)).join(', ')}`);
  const file = writeJson('matmul', {
    bench: 'matmul',
    date: new Date().toISOString(),
    adapter,
    runtime: rt.gpu.info.runtime,
    features: rt.gpu.features,
    loadAverage: loadavg(),
    method: 'wall clock: Graft dispatch + runtime().sync(); tfjs matMul + data(). GFLOP/s = 2·M·N·K / time.',
    tfjs: tfjsNote ?? 'ok',
    results,
  });
  console.log(`Wrote ${file}`);
}
