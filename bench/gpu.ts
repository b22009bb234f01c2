/**
 * The GPU run (bench/gpu.sh runs it on a machine with a real GPU): the adapter, matmul TFLOP/s at 4096² in
 * f32 and with f16 storage, and ResNet50 forward and full training images/s at 224, batch 32, for Graft (f32
 * and f16) and tfjs-webgpu, all in one process on the same adapter. Ends with the targets of an H100-class
 * card (matmul f32 ≥ 20 TFLOP/s, ResNet50 training ≥ 1,000 images/s) and whether they were met, and writes
 * bench/out/gpu.json.
 *
 *   npm run bench -- gpu [--matmul 4096] [--size 224] [--batch 32] [--warm 3] [--modes forward,full] [--no-tfjs]
 *
 * On a CPU adapter the same command works at small sizes (the tests run `--matmul 256 --size 32 --batch 2`).
 * Matmul time is the GPU time of the kernels from timestamp queries when the adapter has them (wall clock
 * otherwise), median of `--runs`; a 4096² f32 product is 137 GFLOP.
 */
import { loadavg } from 'node:os';
import { ArgumentError } from '../src/errors.js';
import { runtime } from '../src/gpu/runtime.js';
import { adapterName } from '../src/gpu/device.js';
import { tensor } from '../src/tensor/create.js';
import { cast, dense } from '../src/ops/index.js';
import { MODES, type Mode } from './lib/graft-models.js';
import { gpuTimeMs, timeRuns } from './lib/timing.js';
import { intOption, listOption } from './lib/args.js';
import { randomData } from './lib/data.js';
import { type Cell, type Column, printTable, writeJson } from './lib/table.js';
import { loadTfjsWebgpu } from './lib/tfjs.js';
import { type ModelsReport, parseModelsArgs, runModels } from './models.js';

export const description = 'GPU run: adapter, matmul TFLOP/s f32/f16 at 4096², ResNet50 b32 images/s vs tfjs-webgpu, H100 targets';

/** What an H100-class card should reach (the performance issue's targets). */
export const TARGETS = { matmulF32Tflops: 20, resnet50TrainImagesPerSecond: 1000 };

export interface GpuOptions {
  matmul: number;
  size: number;
  batch: number;
  warm: number;
  runs: number;
  modes: Mode[];
  tfjs: boolean;
  writeJson: boolean;
}

export function parseGpuArgs(args: string[]): GpuOptions {
  const o: GpuOptions = { matmul: 4096, size: 224, batch: 32, warm: 3, runs: 5, modes: ['forward', 'full'], tfjs: true, writeJson: true };
  const int = (a: string, v: string | undefined, min: number) => intOption('gpu bench', a, v, min);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--matmul') o.matmul = int(a, args[++i], 8);
    else if (a === '--size') o.size = int(a, args[++i], 32);
    else if (a === '--batch') o.batch = int(a, args[++i], 1);
    else if (a === '--warm') o.warm = int(a, args[++i], 1);
    else if (a === '--runs') o.runs = int(a, args[++i], 1);
    else if (a === '--modes') {
      o.modes = listOption('gpu bench', 'mode', args[++i] ?? '', MODES);
      if (o.modes.length === 0) throw new ArgumentError(`gpu bench: --modes takes some of ${MODES.join(',')}; got none`);
    } else if (a === '--no-tfjs') o.tfjs = false;
    else if (a === '--no-json') o.writeJson = false;
    else throw new ArgumentError(`gpu bench: unknown option ${a}; options: --matmul, --size, --batch, --warm, --runs, --modes, --no-tfjs, --no-json`);
  }
  if (o.matmul % 4 !== 0) throw new ArgumentError(`gpu bench: --matmul must be a multiple of 4 (the vec4 kernels), got ${o.matmul}`);
  return o;
}

interface MatmulCell {
  what: string;
  ms: number;
  timing: 'gpu' | 'wall';
  tflops: number;
}

/** Graft's n×n×n product in f32 and with f16 storage (f32 sums), and tfjs-webgpu's in f32. */
async function matmuls(n: number, o: GpuOptions): Promise<MatmulCell[]> {
  const rt = runtime();
  const flops = 2 * n ** 3;
  const cells: MatmulCell[] = [];
  const a = tensor(randomData(n * n, 1), [n, n]).keep();
  const b = tensor(randomData(n * n, 2), [n, n]).keep();
  const precisions = rt.gpu.features.f16 ? (['f32', 'f16'] as const) : (['f32'] as const);
  for (const p of precisions) {
    const [x, w] = p === 'f16' ? [cast(a, 'f16').keep(), cast(b, 'f16').keep()] : [a, b];
    const once = async () => {
      const c = dense(x, w);
      await rt.sync();
      c.dispose();
    };
    const wall = await timeRuns(once, { warmup: 1, runs: o.runs, budgetMs: 60_000 });
    const gpu = await gpuTimeMs(once, o.runs);
    const ms = gpu ?? wall.medianMs;
    cells.push({ what: `Graft ${p === 'f32' ? 'f32' : 'f16 storage, f32 sums'}`, ms, timing: gpu ? 'gpu' : 'wall', tflops: flops / ms / 1e9 });
    if (p === 'f16') {
      x.dispose();
      w.dispose();
    }
  }
  a.dispose();
  b.dispose();
  if (o.tfjs) {
    const r = await loadTfjsWebgpu();
    if ('tf' in r) {
      const tf = r.tf;
      const ta = tf.tensor2d(randomData(n * n, 1), [n, n]);
      const tb = tf.tensor2d(randomData(n * n, 2), [n, n]);
      const st = await timeRuns(async () => {
        const c = tf.matMul(ta, tb);
        await c.data();
        c.dispose();
      }, { warmup: 1, runs: o.runs, budgetMs: 60_000 });
      ta.dispose();
      tb.dispose();
      cells.push({ what: 'tfjs-webgpu f32', ms: st.medianMs, timing: 'wall', tflops: flops / st.medianMs / 1e9 });
    } else cells.push({ what: `tfjs-webgpu: ${r.error}`, ms: NaN, timing: 'wall', tflops: NaN });
  }
  return cells;
}

export interface GpuReport {
  bench: 'gpu';
  date: string;
  adapter: string;
  info: Record<string, unknown>;
  matmul: { n: number; cells: MatmulCell[] };
  models: ModelsReport;
  targets: Record<string, { target: number; measured: number | null; met: boolean }>;
}

export async function runGpu(o: GpuOptions): Promise<GpuReport> {
  const rt = runtime();
  const adapter = adapterName(rt.gpu.info);
  const info = { ...rt.gpu.info, features: rt.gpu.features, maxStorageBufferBindingSize: rt.gpu.limits.maxStorageBufferBindingSize, maxBufferSize: rt.gpu.limits.maxBufferSize };
  console.log(`Adapter: ${adapter}`);
  console.log(JSON.stringify(info));
  console.log(`Load average: ${loadavg().map((l) => l.toFixed(2)).join(', ')}\n`);

  const cells = await matmuls(o.matmul, o);
  const rows: Array<Record<string, Cell>> = cells.map((c) => ({ what: c.what, ms: c.ms, tflops: c.tflops, timing: c.timing }));
  console.log(`\nMatmul ${o.matmul}×${o.matmul}×${o.matmul}`);
  printTable([{ key: 'what', title: 'kernel' }, { key: 'ms', title: 'ms', digits: 2 }, { key: 'tflops', title: 'TFLOP/s', digits: 3 }, { key: 'timing', title: 'timed by' }] as Column[], rows);

  const models = await runModels({
    ...parseModelsArgs([]),
    models: ['resnet50'], sizes: [o.size], batch: o.batch, warm: o.warm, peerWarm: o.warm, modes: o.modes,
    peers: o.tfjs ? ['tfjs-webgpu'] : [], writeJson: false, breakdown: false, precisions: rt.gpu.features.f16 ? ['f32', 'f16'] : ['f32'],
  });

  const f32 = cells.find((c) => c.what === 'Graft f32');
  const full = models.results.find((r) => r.mode === 'full');
  const fullIps = full ? (o.batch * 1000) / full.graft.medianMs : null;
  const targets = {
    'matmul f32 TFLOP/s': { target: TARGETS.matmulF32Tflops, measured: f32?.tflops ?? null, met: (f32?.tflops ?? 0) >= TARGETS.matmulF32Tflops },
    'ResNet50 training images/s': { target: TARGETS.resnet50TrainImagesPerSecond, measured: fullIps, met: (fullIps ?? 0) >= TARGETS.resnet50TrainImagesPerSecond },
  };
  console.log(`\nTargets of an H100-class card (measured at matmul ${o.matmul}, ResNet50 ${o.size}×${o.size}, batch ${o.batch}):`);
  for (const [what, t] of Object.entries(targets)) console.log(`  ${what}: ${t.measured === null ? 'not measured' : t.measured.toFixed(2)} (target ≥ ${t.target}) ${t.met ? 'met' : 'NOT met'}`);
  const report: GpuReport = { bench: 'gpu', date: new Date().toISOString(), adapter, info, matmul: { n: o.matmul, cells }, models, targets };
  if (o.writeJson) console.log(`Wrote ${writeJson('gpu', report)}`);
  return report;
}

export async function run(args: string[]): Promise<void> {
  await runGpu(parseGpuArgs(args));
}
