/**
 * f32 against f16 precision (src/nn/precision.ts) on the same model in one process, steps interleaved
 * (f32, f16, f16, f32, …), so that a machine whose speed drifts during the run (a shared CPU adapter) moves
 * both columns alike. bench/models.ts runs the two precisions one after the other instead.
 *
 *   npm run bench -- precision [--model resnet50|vgg16] [--size 224] [--batch 8] [--mode forward|frozen] [--steps 6]
 *
 * The model is bench/lib/graft-models.ts's (random weights, base frozen: BatchNorm folded). Reports the median
 * ms of each precision, their ratio, the live GPU bytes after a step of each, and writes bench/out/precision.json.
 */
import { loadavg } from 'node:os';
import { ArgumentError } from '../src/errors.js';
import { adapterName } from '../src/gpu/device.js';
import { runtime } from '../src/gpu/runtime.js';
import { memory } from '../src/tensor/memory.js';
import { type Precision, withPrecisionAsync } from '../src/nn/precision.js';
import { type BenchModel, graftBench, MODEL_NAMES, type Mode } from './lib/graft-models.js';
import { median } from './lib/timing.js';
import { intOption } from './lib/args.js';
import { printTable, writeJson } from './lib/table.js';

export const description = 'f32 vs f16 precision on ResNet50/VGG16, steps interleaved in one process';

interface Options {
  model: BenchModel;
  size: number;
  batch: number;
  mode: Extract<Mode, 'forward' | 'frozen'>;
  steps: number;
}

function parse(args: string[]): Options {
  const o: Options = { model: 'resnet50', size: 224, batch: 8, mode: 'forward', steps: 6 };
  const int = (a: string, v: string | undefined, min: number) => intOption('precision bench', a, v, min);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--model') {
      const m = args[++i] as BenchModel;
      if (!MODEL_NAMES.includes(m)) throw new ArgumentError(`precision bench: --model takes ${MODEL_NAMES.join(' or ')}, got ${m}`);
      o.model = m;
    } else if (a === '--size') o.size = int(a, args[++i], 32);
    else if (a === '--batch') o.batch = int(a, args[++i], 1);
    else if (a === '--steps') o.steps = int(a, args[++i], 1);
    else if (a === '--mode') {
      const m = args[++i];
      if (m !== 'forward' && m !== 'frozen') throw new ArgumentError(`precision bench: --mode takes forward or frozen (f16 needs layers that do not train), got ${m}`);
      o.mode = m;
    } else throw new ArgumentError(`precision bench: unknown option ${a}; options: --model, --size, --batch, --mode, --steps`);
  }
  return o;
}

export async function run(args: string[]): Promise<void> {
  const o = parse(args);
  const rt = runtime();
  if (!rt.gpu.features.f16) throw new ArgumentError(`precision bench: this adapter (${adapterName(rt.gpu.info)}) has no shader-f16; there is nothing to compare.`);
  console.log(`Adapter: ${adapterName(rt.gpu.info)}; load average ${loadavg().map((l) => l.toFixed(2)).join(', ')}`);
  const bench = graftBench(o.model, o.size, o.batch);
  const times: Record<Precision, number[]> = { f32: [], f16: [] };
  const bytes: Record<Precision, number> = { f32: 0, f16: 0 };
  try {
    const { step } = bench.prepare(o.mode);
    const timed = async (p: Precision) => {
      const t0 = performance.now();
      await withPrecisionAsync(p, step);
      const ms = performance.now() - t0;
      bytes[p] = memory().bytesInUse;
      return ms;
    };
    await timed('f32'); // compile both sets of pipelines, fold, cast the f16 weight copies
    await timed('f16');
    for (let i = 0; i < o.steps; i++) {
      for (const p of (i % 2 === 0 ? ['f32', 'f16'] : ['f16', 'f32']) as Precision[]) times[p].push(await timed(p));
      console.log(`step ${i + 1}/${o.steps}: f32 ${times.f32.at(-1)!.toFixed(0)} ms, f16 ${times.f16.at(-1)!.toFixed(0)} ms`);
    }
  } finally {
    bench.dispose();
  }
  const m = { f32: median(times.f32), f16: median(times.f16) };
  console.log(`\n${o.model} ${o.size}×${o.size}, batch ${o.batch}, ${o.mode}; ${o.steps} interleaved steps each:`);
  printTable(
    [{ key: 'p', title: 'precision' }, { key: 'ms', title: 'median ms', digits: 0 }, { key: 'ratio', title: 'f32 ÷ this', digits: 3 }, { key: 'mib', title: 'live MiB after a step', digits: 0 }],
    (['f32', 'f16'] as const).map((p) => ({ p, ms: m[p], ratio: m.f32 / m[p], mib: bytes[p] / 2 ** 20 })),
  );
  console.log(`Load average at end: ${loadavg().map((l) => l.toFixed(2)).join(', ')}`);
  console.log(`Wrote ${writeJson('precision', { bench: 'precision', date: new Date().toISOString(), adapter: adapterName(rt.gpu.info), options: o, times, medianMs: m, bytesInUseAfterStep: bytes, loadAverageEnd: loadavg() })}`);
}
