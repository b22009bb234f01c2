/**
 * Whole-model benchmark: ResNet50 and VGG16 (random weights) with Graft's transfer head, inference and three
 * kinds of training step, batch 8, Graft beside TensorFlow.js (webgpu on the same adapter, and wasm) and
 * PyTorch on the CPU, in the same run.
 *
 *   npm run bench -- models [--model resnet50|vgg16|resnet50,vgg16] [--size 64|224|64,224] [--batch 8]
 *                           [--warm 3] [--peer-warm N] [--modes forward,frozen,last,full]
 *                           [--peers tfjs-webgpu,tfjs-wasm,torch|none] [--no-breakdown] [--precision f32|f16|f32,f16]
 *
 * Modes (bench/lib/graft-models.ts): forward (inference of base + head); frozen (the base frozen, the head
 * trained with Adam); last (fineTune's last block: ResNet50 unfreezeLast 10, VGG16 unfreezeLast 4); full
 * (every layer trained, BatchNorm in training mode). Each framework runs the same graph: tfjs from
 * bench/lib/tfjs-models.ts, PyTorch from bench/torch_models.py (run with /usr/bin/python3; skipped with a
 * note where torch does not import).
 *
 * Timing: per framework and mode, the first step is timed alone ("cold": pipeline compilation, buffer
 * pool and tfjs's shader cache are filled then), then `warm` steps are timed and their median reported.
 * Every step waits for its GPU work (Graft: runtime().sync(); tfjs-webgpu: its queue drained; wasm and
 * PyTorch compute synchronously). GFLOP/s counts conv and dense multiply-adds × 2 of the forward pass, and
 * for a training step 2× more for every trained layer (bench/lib/graft-models.ts); the same count divides
 * every framework's time. "Graft ×" is the peer's ms/step over Graft's (above 1: Graft is faster).
 *
 * Precision (src/nn/precision.ts): with f16, Graft's layer calls that need no gradient (the whole network
 * in forward mode, the frozen part in a training step) keep activations and weights as f16, with f32 sums.
 * `--precision f32,f16` runs every Graft mode twice: the f16 row's ratio is f32 ms / f16 ms, and the peers'
 * ratios against Graft f16 follow the table.
 *
 * Memory: Graft's buffer pool, per mode: the peak bytes in use during the warm steps (the pool's peak
 * counter, reset before them) and bytesAllocated after each warm step; "flat" means bytesAllocated and the
 * live tensor count did not change across the warm steps. The pool is trimmed before each model.
 *
 * Breakdown (bench/lib/breakdown.ts): after its timed steps, each Graft mode runs one more step under the
 * timestamp profiler and prints where the time went, kernel family by kernel family (GPU ms, share, GFLOP/s,
 * and how far each is from the fastest kernel of the step), plus the step's time outside kernels.
 *
 * Order: Graft's modes, then PyTorch, tfjs-wasm and tfjs-webgpu (slowest last), and bench/out/models.json is
 * rewritten after every measured mode, so a run stopped early on a loaded machine keeps what it measured.
 */
import { spawnSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { ArgumentError } from '../src/errors.js';
import { adapterName } from '../src/gpu/device.js';
import { runtime } from '../src/gpu/runtime.js';
import { memory } from '../src/tensor/memory.js';
import { type BenchModel, graftBench, MODEL_NAMES, type Mode, MODES } from './lib/graft-models.js';
import { randomData } from './lib/data.js';
import { type Cell, type Column, printTable, writeJson } from './lib/table.js';
import { gflops, median } from './lib/timing.js';
import { type Breakdown, printBreakdown, profileStep } from './lib/breakdown.js';
import { intOption, listOption } from './lib/args.js';
import { type Precision, PRECISIONS, withPrecisionAsync } from '../src/nn/precision.js';
import { loadTfjsWasm, loadTfjsWebgpu, type Tf, tfjsSync } from './lib/tfjs.js';
import { registerTfjsGradients, tfForward, type TfNet, tfResnet50, tfTrainStep, tfVgg16 } from './lib/tfjs-models.js';

export const description = 'ResNet50/VGG16 inference and training steps vs tfjs-webgpu, tfjs-wasm, PyTorch CPU';

const PEERS = ['tfjs-webgpu', 'tfjs-wasm', 'torch'] as const;
type Peer = (typeof PEERS)[number];
const PYTHON = '/usr/bin/python3';

export interface ModelsOptions {
  models: BenchModel[];
  sizes: number[];
  batch: number;
  warm: number;
  peerWarm: number;
  modes: Mode[];
  peers: Peer[];
  /** Write bench/out/models.json (default true; the smoke test turns it off). */
  writeJson: boolean;
  /** Profile one extra step per Graft mode and print its per-kernel breakdown (default true). */
  breakdown: boolean;
  /** Graft's precisions, each run in full; the first fills `graft`, f16 after f32 fills `graftF16`. */
  precisions: Precision[];
}

export function parseModelsArgs(args: string[]): ModelsOptions {
  const o: ModelsOptions = { models: [...MODEL_NAMES], sizes: [64, 224], batch: 8, warm: 3, peerWarm: -1, modes: [...MODES], peers: [...PEERS], writeJson: true, breakdown: true, precisions: ['f32'] };
  const list = (v: string) => v.split(',').filter((s) => s.length > 0);
  const pick = <T extends string>(what: string, v: string, known: readonly T[]): T[] => listOption('models bench', what, v, known);
  const int = (a: string, v: string, min: number) => intOption('models bench', a, v, min);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new ArgumentError(`models bench: ${a} needs a value`);
      return v;
    };
    if (a === '--model' || a === '--models') o.models = pick('model', value(), MODEL_NAMES);
    else if (a === '--size' || a === '--sizes') o.sizes = list(value()).map((s) => int('--size', s, 32));
    else if (a === '--batch') o.batch = int(a, value(), 1);
    else if (a === '--warm') o.warm = int(a, value(), 1);
    else if (a === '--peer-warm') o.peerWarm = int(a, value(), 1);
    else if (a === '--modes' || a === '--mode') o.modes = pick('mode', value(), MODES);
    else if (a === '--peers') { const v = value(); o.peers = v === 'none' ? [] : pick('peer', v, PEERS); }
    else if (a === '--no-json') o.writeJson = false;
    else if (a === '--no-breakdown') o.breakdown = false;
    else if (a === '--precision') {
      o.precisions = pick('precision', value(), PRECISIONS);
      if (o.precisions.length === 0 || new Set(o.precisions).size !== o.precisions.length) throw new ArgumentError('models bench: --precision takes f32, f16 or f32,f16');
      o.precisions.sort((x, y) => PRECISIONS.indexOf(x) - PRECISIONS.indexOf(y));
    }
    else throw new ArgumentError(`models bench: unknown option ${a}; options: --model, --size, --batch, --warm, --peer-warm, --modes, --peers, --precision, --no-json, --no-breakdown`);
  }
  if (o.peerWarm < 0) o.peerWarm = o.warm;
  return o;
}

export interface Timing {
  coldMs: number;
  times: number[];
  medianMs: number;
}

export interface MemoryRecord {
  peakBytesInUse: number;
  bytesAllocatedAfterSteps: number[];
  tensorsAfterSteps: number[];
  flat: boolean;
}

export type GraftTiming = Timing & { memory: MemoryRecord; trainedLayers: number; breakdown: Breakdown | null };

export interface ModeResult {
  model: BenchModel;
  size: number;
  mode: Mode;
  flops: number;
  /** The precision of `graft`. */
  precision: Precision;
  graft: GraftTiming;
  /** Graft again with f16 precision, when `--precision f32,f16` asked for both. */
  graftF16?: GraftTiming;
  peers: Partial<Record<Peer, Timing | { error: string }>>;
}

async function timeSteps(step: () => Promise<void>, warm: number, afterStep?: () => void, beforeWarm?: () => void): Promise<Timing> {
  let t0 = performance.now();
  await step();
  const coldMs = performance.now() - t0;
  beforeWarm?.();
  const times: number[] = [];
  for (let i = 0; i < warm; i++) {
    t0 = performance.now();
    await step();
    times.push(performance.now() - t0);
    afterStep?.();
  }
  return { coldMs, times, medianMs: median(times) };
}

type GraftRow = Pick<ModeResult, 'model' | 'size' | 'mode' | 'flops' | 'graft'>;

async function runGraft(model: BenchModel, size: number, o: ModelsOptions, precision: Precision): Promise<GraftRow[]> {
  return withPrecisionAsync(precision, () => runGraftModes(model, size, o, precision === 'f32' ? 'graft' : `graft ${precision}`));
}

async function runGraftModes(model: BenchModel, size: number, o: ModelsOptions, name: string): Promise<GraftRow[]> {
  runtime().pool.trim(); // free buffers left by an earlier model, so bytesAllocated is this model's
  const bench = graftBench(model, size, o.batch);
  const out: GraftRow[] = [];
  try {
    for (const mode of o.modes) {
      const { step, flops, trainedLayers } = bench.prepare(mode);
      const pool = runtime().pool;
      const mem: MemoryRecord = { peakBytesInUse: 0, bytesAllocatedAfterSteps: [], tensorsAfterSteps: [], flat: true };
      const t = await timeSteps(step, o.warm, () => {
        const m = memory();
        mem.bytesAllocatedAfterSteps.push(m.bytesAllocated);
        mem.tensorsAfterSteps.push(m.tensors);
      }, () => pool.resetPeak());
      mem.peakBytesInUse = pool.stats().peakBytesInUse;
      mem.flat = new Set(mem.bytesAllocatedAfterSteps).size === 1 && new Set(mem.tensorsAfterSteps).size === 1;
      console.log(`${name} ${model} ${size} ${mode}: cold ${t.coldMs.toFixed(0)} ms, warm ${t.medianMs.toFixed(0)} ms, peak ${(mem.peakBytesInUse / 2 ** 20).toFixed(0)} MiB`);
      const breakdown = o.breakdown ? await profileStep(step) : null;
      if (breakdown) printBreakdown(`${name} ${model} ${size} ${mode}, one profiled step`, breakdown);
      out.push({ model, size, mode, flops, graft: { ...t, memory: mem, trainedLayers, breakdown } });
    }
  } finally {
    bench.dispose();
  }
  return out;
}

async function runTfjs(
  tf: Tf, backend: string, model: BenchModel, size: number, o: ModelsOptions, done: (mode: Mode, t: Timing | { error: string }) => void,
): Promise<Partial<Record<Mode, Timing | { error: string }>>> {
  const out: Partial<Record<Mode, Timing | { error: string }>> = {};
  let net: TfNet | null = null;
  const x = tf.tensor4d(randomData(o.batch * size * size * 3, 11), [o.batch, size, size, 3]);
  const onehot = tf.oneHot(tf.tensor1d(Array.from({ length: o.batch }, (_, i) => i % 2), 'int32'), 2);
  try {
    net = model === 'resnet50' ? tfResnet50(tf) : tfVgg16(tf);
    const n = net.units.length;
    for (const mode of o.modes) {
      try {
        let step: () => Promise<void>;
        let optimizer: ReturnType<Tf['train']['adam']> | null = null;
        if (mode === 'forward') {
          step = async () => {
            const y = tfForward(tf, net!, x);
            await tfjsSync(tf, y);
            y.dispose();
          };
        } else {
          const from = mode === 'frozen' ? n - 1 : mode === 'last' ? n - (model === 'resnet50' ? 2 : 4) : 0;
          const opt = (optimizer = tf.train.adam(mode === 'frozen' ? 1e-3 : 1e-5));
          step = async () => {
            const loss = tfTrainStep(tf, net!, from, mode === 'full', opt, x, onehot);
            await tfjsSync(tf, loss);
            loss.dispose();
          };
        }
        out[mode] = await timeSteps(step, o.peerWarm);
        optimizer?.dispose();
        console.log(`${backend} ${model} ${size} ${mode}: cold ${out[mode]!.coldMs.toFixed(0)} ms, warm ${(out[mode] as Timing).medianMs.toFixed(0)} ms`);
      } catch (e) {
        out[mode] = { error: (e as Error).message ?? String(e) };
        console.log(`${backend} ${model} ${size} ${mode}: error ${(out[mode] as { error: string }).error}`);
      }
      done(mode, out[mode]!);
    }
  } finally {
    net?.dispose();
    x.dispose();
    onehot.dispose();
  }
  return out;
}

function runTorch(model: BenchModel, size: number, o: ModelsOptions): { info?: Record<string, unknown>; results: Partial<Record<Mode, Timing | { error: string }>>; note?: string } {
  const script = new URL('./torch_models.py', import.meta.url).pathname;
  const args = [script, '--model', model, '--size', String(size), '--batch', String(o.batch), '--warm', String(o.peerWarm), '--modes', o.modes.join(','), '--threads', String(cpus().length)];
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : (r.stderr || '').trim().split('\n').slice(-1)[0];
    return { results: {}, note: `PyTorch skipped: ${PYTHON} ${script} failed (${why})` };
  }
  const parsed = JSON.parse(r.stdout.trim().split('\n').slice(-1)[0]!) as { results: Record<Mode, { coldMs: number; times: number[] }> } & Record<string, unknown>;
  const results: Partial<Record<Mode, Timing>> = {};
  for (const [mode, t] of Object.entries(parsed.results)) {
    results[mode as Mode] = { ...t, medianMs: median(t.times) };
    console.log(`torch ${model} ${size} ${mode}: cold ${t.coldMs.toFixed(0)} ms, warm ${results[mode as Mode]!.medianMs.toFixed(0)} ms`);
  }
  const { results: _, ...info } = parsed;
  return { info, results };
}

function torchAvailable(): string | null {
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  return r.status === 0 && !r.error ? null : `PyTorch skipped: \`${PYTHON} -c 'import torch'\` failed (${r.error?.message ?? (r.stderr || '').trim().split('\n').slice(-1)[0]})`;
}

const load = () => loadavg().map((l) => l.toFixed(2)).join(', ');

export interface ModelsReport {
  bench: 'models';
  date: string;
  adapter: string;
  machine: { cpu: string; cores: number; memoryGiB: number };
  loadAverageStart: number[];
  loadAverageEnd: number[];
  options: ModelsOptions;
  notes: string[];
  torch: Record<string, unknown> | null;
  results: ModeResult[];
}

/** Runs the benchmark and returns what it wrote to bench/out/models.json. Needs an initialised runtime. */
export async function runModels(o: ModelsOptions): Promise<ModelsReport> {
  const rt = runtime();
  const adapter = adapterName(rt.gpu.info);
  const cpu = cpus();
  const loadStart = loadavg();
  console.log(`Adapter: ${adapter} (${rt.gpu.info.runtime}); machine: ${cpu[0]?.model ?? 'unknown CPU'} × ${cpu.length}`);
  console.log(`Load average at start: ${load()}; batch ${o.batch}, warm ${o.warm} (peers ${o.peerWarm}), modes ${o.modes.join(',')}\n`);
  const notes: string[] = [];
  let webgpu: Tf | null = null, wasm: Tf | null = null;
  if (o.peers.includes('tfjs-wasm')) {
    const r = await loadTfjsWasm();
    if ('tf' in r) {
      wasm = r.tf;
      const [simd, threads] = await Promise.all(['WASM_HAS_SIMD_SUPPORT', 'WASM_HAS_MULTITHREAD_SUPPORT'].map((f) => r.tf.env().getAsync(f)));
      notes.push(`tfjs-wasm: SIMD ${String(simd)}, multithreading ${String(threads)}; no Conv2DBackpropFilter kernel (a convolution's weight gradient), so it cannot train convolutions: its 'last' and 'full' rows are errors`);
    } else notes.push(`tfjs-wasm skipped: ${r.error}`);
  }
  if (o.peers.includes('tfjs-webgpu')) {
    const r = await loadTfjsWebgpu();
    if ('tf' in r) webgpu = r.tf;
    else notes.push(`tfjs-webgpu skipped: ${r.error}`);
  }
  const version = webgpu?.version_core ?? wasm?.version_core;
  if (version) notes.push(`tfjs ${version}`);
  if ((webgpu || wasm) && o.modes.some((m) => m !== 'forward')) await registerTfjsGradients();
  let torchNote = o.peers.includes('torch') ? torchAvailable() : null;
  if (torchNote) notes.push(torchNote);
  let torchInfo: Record<string, unknown> | null = null;

  const results: ModeResult[] = [];
  const report = (): ModelsReport => ({
    bench: 'models', date: new Date().toISOString(), adapter,
    machine: { cpu: cpu[0]?.model ?? 'unknown', cores: cpu.length, memoryGiB: Math.round(totalmem() / 2 ** 30) },
    loadAverageStart: loadStart, loadAverageEnd: loadavg(), options: o, notes, torch: torchInfo, results,
  });
  // The JSON is rewritten after every measured mode, so a run stopped early keeps what it measured.
  const save = () => { if (o.writeJson) writeJson('models', report()); };
  for (const size of o.sizes) {
    for (const model of o.models) {
      const [first, ...more] = o.precisions;
      const rows: ModeResult[] = (await runGraft(model, size, o, first!)).map((g) => ({ ...g, precision: first!, peers: {} }));
      if (more.includes('f16')) {
        for (const g of await runGraft(model, size, o, 'f16')) {
          const row = rows.find((r) => r.mode === g.mode);
          if (row) row.graftF16 = g.graft;
        }
      }
      results.push(...rows);
      save();
      const record = (peer: Peer) => (mode: Mode, t: Timing | { error: string }) => {
        const row = rows.find((r) => r.mode === mode);
        if (row) row.peers[peer] = t;
        save();
      };
      // Fastest peers first: on a loaded machine a long run then still gets the cheap columns.
      if (o.peers.includes('torch') && !torchNote) {
        const t = runTorch(model, size, o);
        if (t.note) notes.push((torchNote = t.note));
        else {
          torchInfo = t.info ?? null;
          for (const [mode, timing] of Object.entries(t.results)) record('torch')(mode as Mode, timing);
        }
      }
      if (wasm) {
        await wasm.setBackend('wasm');
        await runTfjs(wasm, 'tfjs-wasm', model, size, o, record('tfjs-wasm'));
      }
      if (webgpu) {
        await webgpu.setBackend('webgpu');
        await runTfjs(webgpu, 'tfjs-webgpu', model, size, o, record('tfjs-webgpu'));
      }
    }
  }
  if (torchInfo) notes.push(`PyTorch ${String(torchInfo.torch)}: BLAS ${String(torchInfo.blas)}, mkldnn ${String(torchInfo.mkldnn)}, ${String(torchInfo.threads)} threads (default ${String(torchInfo.defaultThreads)})`);

  printResults(results, o, adapter);
  for (const n of notes) console.log(n);
  console.log(`Load average at end: ${load()}`);
  const final = report();
  if (o.writeJson) console.log(`Wrote ${writeJson('models', final)}`);
  return final;
}

/** Prints the results table (also usable on a saved bench/out/models.json). */
export function printResults(results: ModeResult[], o: ModelsOptions, adapter: string): void {
  const rows: Array<Record<string, Cell>> = [];
  const halfRatios: string[] = [];
  const frameworks: Array<'graft' | 'graftF16' | Peer> = ['graft', 'graftF16', ...PEERS];
  for (const r of results) {
    for (const f of frameworks) {
      const t = f === 'graft' ? r.graft : f === 'graftF16' ? r.graftF16 : r.peers[f];
      if (!t) continue;
      const graftRow = f === 'graft' || f === 'graftF16';
      const fw = f === 'graft' ? (r.precision === 'f32' ? 'graft' : `graft ${r.precision}`) : f === 'graftF16' ? 'graft f16 (× = f32/f16)' : f;
      if ('error' in t) {
        rows.push({ case: `${r.model} ${r.size} ${r.mode}`, fw, cold: 'error', ms: null });
        continue;
      }
      rows.push({
        case: `${r.model} ${r.size} ${r.mode}`, fw, cold: t.coldMs, ms: t.medianMs, ips: (o.batch * 1000) / t.medianMs,
        gf: gflops(r.flops, t.medianMs), gflop: f === 'graft' ? r.flops / 1e9 : null,
        ratio: f === 'graft' ? null : f === 'graftF16' ? r.graft.medianMs / t.medianMs : t.medianMs / r.graft.medianMs,
        peak: graftRow ? (t as GraftTiming).memory.peakBytesInUse / 2 ** 20 : null,
        flat: graftRow ? ((t as GraftTiming).memory.flat ? 'yes' : 'no') : null,
      });
      if (!graftRow && r.graftF16) halfRatios.push(`${r.model} ${r.size} ${r.mode}: ${f} ms / Graft f16 ms = ${(t.medianMs / r.graftF16.medianMs).toFixed(2)}×`);
    }
  }
  const columns: Column[] = [
    { key: 'case', title: 'model size mode' }, { key: 'fw', title: 'framework' }, { key: 'gflop', title: 'GFLOP/step', digits: 1 },
    { key: 'cold', title: 'cold ms', digits: 0 }, { key: 'ms', title: 'warm ms', digits: 0 }, { key: 'ips', title: 'img/s', digits: 2 },
    { key: 'gf', title: 'GFLOP/s', digits: 2 }, { key: 'ratio', title: 'Graft ×', digits: 2 },
    { key: 'peak', title: 'peak MiB', digits: 0 }, { key: 'flat', title: 'flat' },
  ];
  console.log(`\nResNet50 / VGG16 + head on ${adapter}, batch ${o.batch}; warm ms = median of ${o.warm} (peers ${o.peerWarm}) steps after the cold one;`);
  console.log(`'Graft ×' = peer ms / Graft ms; peak = Graft's most GPU bytes in use during the warm steps; flat = bytesAllocated and tensor count unchanged across them`);
  printTable(columns, rows);
  if (halfRatios.length) console.log(`\nPeers against Graft f16:\n${halfRatios.join('\n')}`);
}

export async function run(args: string[]): Promise<void> {
  await runModels(parseModelsArgs(args));
}
