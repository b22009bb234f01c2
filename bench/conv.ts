/**
 * Conv2d benchmark: GFLOP/s of Graft's conv2d, forward and backward (dX + dW), on every distinct
 * convolution of VGG16 and ResNet50 (the Keras applications architectures), batch 8, against
 * TensorFlow.js's WebGPU backend (tf.fused.conv2d, NHWC, the same bias and activation) on the same adapter.
 *
 *   npm run bench -- conv [--size 64|224|64,224] [--model vgg16|resnet50] [--no-tfjs] [--no-backward]
 *                         [--tfjs-backward] [--version v1|v2|v3|matmul|col2im|winograd] [--runs 3] [--batch 8]
 *
 * The default is both models at both sizes: 7 minutes on lavapipe (2 cores, load average ~4), most of it
 * VGG16 at 224 (245 GFLOP per forward pass of 8 images) and tfjs there (2–4 GFLOP/s). `--size 64` runs in
 * about a minute.
 *
 * Layers. VGG16: 13 3×3 'same' convolutions with bias and relu, in 5 blocks of 64, 128, 256, 512, 512
 * channels, halving the size between blocks. ResNet50 v1 (Keras): the stem 7×7/2, 3→64 after
 * ZeroPadding2D(3) (here explicit padding 3), then max-pooling to 1/4 of the input, then 4 stages of
 * 3, 4, 6, 3 bottleneck blocks (1×1, 3×3 'same', 1×1 to 4× the width, with bias, no activation: batch norm
 * follows); the first block of stages 3–5 has stride 2 on its first 1×1 and on its 1×1 projection
 * shortcut. Identical shapes are measured once; `count` says how often the network runs them, and the
 * per-model totals weight each row by it (the "summed ratio" is total tfjs time / total Graft time).
 *
 * Timing: each cell runs once untimed (pipeline compile, buffer pool, and a spot check of 32 outputs
 * against f64 sums), then up to `runs` timed runs within a time budget; the table shows the median.
 * Graft is timed by wall clock around the op plus `await runtime().sync()`; tfjs around the op plus a wait
 * for its queue to drain (its backend's submitQueue + onSubmittedWorkDone; `data()` where that is not
 * available), so neither side pays for reading the output back. Backward runs dX and dW (the work a
 * training step does for a layer; dBias is a small reduction, left out) and counts 2× the forward flops.
 */
import { loadavg } from 'node:os';
import { ArgumentError } from '../src/errors.js';
import { runtime } from '../src/gpu/runtime.js';
import { adapterName } from '../src/gpu/device.js';
import { tensor } from '../src/tensor/create.js';
import {
  type ConvActivation, type ConvGeometry, type ConvPadding, type ConvVersion, CONV_VERSIONS, conv2d, conv2dFilterGradRaw,
  conv2dGeometry, conv2dInputGradRaw, convFlops, convKernelFor, forceConvVersion,
} from '../src/ops/conv.js';
import { gflops, timeRuns } from './lib/timing.js';
import { randomData } from './lib/data.js';
import { type Cell, type Column, printTable, writeJson } from './lib/table.js';
import { type Tf, loadTfjsWebgpu, tfjsSync } from './lib/tfjs.js';
import { type Layer, modelLayers, MODELS, type ModelName } from './lib/conv-layers.js';

export const description = 'conv2d forward/backward GFLOP/s on VGG16 and ResNet50 layers vs tfjs-webgpu';

const CELL_BUDGET_MS = 3000;

interface Options {
  sizes: number[];
  models: ModelName[];
  tfjs: boolean;
  tfjsBackward: boolean;
  backward: boolean;
  version: ConvVersion | null;
  runs: number;
  batch: number;
}

function parseArgs(args: string[]): Options {
  const opts: Options = { sizes: [64, 224], models: [...MODELS], tfjs: true, tfjsBackward: false, backward: true, version: null, runs: 3, batch: 8 };
  const list = (v: string) => v.split(',').filter((s) => s.length > 0);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new ArgumentError(`conv bench: ${a} needs a value`);
      return v;
    };
    if (a === '--size' || a === '--sizes') {
      opts.sizes = list(value()).map(Number);
      if (!opts.sizes.every((s) => Number.isInteger(s) && s >= 32)) throw new ArgumentError('conv bench: --size takes input sizes of at least 32, e.g. 64,224');
    } else if (a === '--model' || a === '--models') {
      const ms = list(value());
      const bad = ms.filter((m) => !MODELS.includes(m as ModelName));
      if (bad.length) throw new ArgumentError(`conv bench: unknown models ${bad.join(', ')}; known: ${MODELS.join(', ')}`);
      opts.models = ms as ModelName[];
    } else if (a === '--version') {
      const v = value() as ConvVersion;
      if (!CONV_VERSIONS.includes(v)) throw new ArgumentError(`conv bench: unknown version ${v}; known: ${CONV_VERSIONS.join(', ')}`);
      opts.version = v;
    } else if (a === '--runs') {
      opts.runs = Number(value());
      if (!(opts.runs >= 1)) throw new ArgumentError('conv bench: --runs must be at least 1');
    } else if (a === '--batch') {
      opts.batch = Number(value());
      if (!(Number.isInteger(opts.batch) && opts.batch >= 1)) throw new ArgumentError('conv bench: --batch must be a positive integer');
    } else if (a === '--no-tfjs') {
      opts.tfjs = false;
    } else if (a === '--tfjs-backward') {
      opts.tfjsBackward = true;
    } else if (a === '--no-backward') {
      opts.backward = false;
    } else {
      throw new ArgumentError(`conv bench: unknown option ${a}; options: --size, --model, --no-tfjs, --no-backward, --tfjs-backward, --version, --runs, --batch`);
    }
  }
  return opts;
}

/** Compares sampled outputs with f64 sums; returns the worst error relative to the largest |ref|. */
function spotCheck(samples: number, size: number, got: ArrayLike<number>, ref: (i: number) => number): number {
  let worst = 0;
  let scale = 1e-30;
  for (let t = 0; t < samples; t++) {
    const i = (t * 104729 + 7919) % size;
    const r = ref(i);
    worst = Math.max(worst, Math.abs(got[i]! - r));
    scale = Math.max(scale, Math.abs(r));
  }
  return worst / scale;
}

/** The three passes' single-element references, straight from the definition. */
function references(g: ConvGeometry, x: Float32Array, w: Float32Array, dy: Float32Array, bias: Float32Array, act: ConvActivation) {
  const { H, W, C, KH, KW, F, OH, OW, sh, sw, pt, pl } = g;
  const forward = (i: number) => {
    const co = i % F, ow = Math.floor(i / F) % OW, oh = Math.floor(i / (F * OW)) % OH, n = Math.floor(i / (F * OW * OH));
    let s = bias[co]!;
    for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) {
      const ih = oh * sh - pt + kh, iw = ow * sw - pl + kw;
      if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
      for (let ci = 0; ci < C; ci++) s += x[((n * H + ih) * W + iw) * C + ci]! * w[((kh * KW + kw) * C + ci) * F + co]!;
    }
    return act === 'relu' ? Math.max(s, 0) : s;
  };
  const inputGrad = (i: number) => {
    const ci = i % C, iw = Math.floor(i / C) % W, ih = Math.floor(i / (C * W)) % H, n = Math.floor(i / (C * W * H));
    let s = 0;
    for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) {
      const th = ih + pt - kh, tw = iw + pl - kw;
      if (th < 0 || tw < 0 || th % sh || tw % sw || th / sh >= OH || tw / sw >= OW) continue;
      const o = ((n * OH + th / sh) * OW + tw / sw) * F;
      for (let co = 0; co < F; co++) s += dy[o + co]! * w[((kh * KW + kw) * C + ci) * F + co]!;
    }
    return s;
  };
  const filterGrad = (i: number) => {
    const co = i % F, ci = Math.floor(i / F) % C, kw = Math.floor(i / (F * C)) % KW, kh = Math.floor(i / (F * C * KW));
    let s = 0;
    for (let n = 0; n < g.N; n++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
      const ih = oh * sh - pt + kh, iw = ow * sw - pl + kw;
      if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
      s += x[((n * H + ih) * W + iw) * C + ci]! * dy[((n * OH + oh) * OW + ow) * F + co]!;
    }
    return s;
  };
  return { forward, inputGrad, filterGrad };
}

/** The part of a tfjs tensor these timings use. */
type TfTensor = { dispose(): void; data(): Promise<unknown> };

const tfPad = (p: ConvPadding) => (typeof p === 'string' ? p : ([[0, 0], p[0], p[1], [0, 0]] as [[number, number], [number, number], [number, number], [number, number]]));

interface RowResult {
  layer: Layer;
  geometry: ConvGeometry;
  flops: number;
  graftForward?: { version: ConvVersion; medianMs: number; bestMs: number; times: number[]; spotCheckRelErr: number };
  graftBackward?: { versions: { inputGrad: ConvVersion; filterGrad: ConvVersion }; medianMs: number; bestMs: number; times: number[]; spotCheckRelErr: number[] };
  tfjsForward?: { medianMs: number; bestMs: number; times: number[] } | { error: string };
  tfjsBackward?: { medianMs: number; bestMs: number; times: number[] } | { error: string };
}

async function measure(layer: Layer, batch: number, opts: Options, tf: Tf | null): Promise<RowResult> {
  const xShape = [batch, layer.H, layer.W, layer.C];
  const wShape = [layer.K, layer.K, layer.C, layer.F];
  const convOpts = { strides: layer.stride, padding: layer.padding, activation: layer.activation };
  const g = conv2dGeometry('conv bench', xShape, wShape, convOpts);
  const flops = convFlops(g);
  const result: RowResult = { layer, geometry: g, flops };
  const rt = runtime();
  const xd = randomData(xShape.reduce((a, b) => a * b), 1);
  const wd = randomData(wShape.reduce((a, b) => a * b), 2).map((v) => v / Math.sqrt(layer.K * layer.K * layer.C));
  const bd = randomData(layer.F, 3);
  const dyd = randomData(g.N * g.OH * g.OW * g.F, 4);
  const ref = references(g, xd, wd, dyd, bd, layer.activation);
  const timing = { warmup: 0, runs: opts.runs, minRuns: 1, budgetMs: CELL_BUDGET_MS };
  const [x, w, b, dy] = [tensor(xd, xShape).keep(), tensor(wd, wShape).keep(), tensor(bd, [layer.F]).keep(), tensor(dyd, [g.N, g.OH, g.OW, g.F]).keep()];
  try {
    const forward = () => conv2d(x, w, { ...convOpts, bias: b });
    const y0 = forward();
    const errF = spotCheck(32, y0.size, (await y0.data()) as Float32Array, ref.forward);
    y0.dispose();
    if (!(errF < 1e-3)) throw new Error(`conv2d forward on ${layer.label}: spot check failed, relative error ${errF}`);
    const st = await timeRuns(async () => {
      const y = forward();
      await rt.sync();
      y.dispose();
    }, timing);
    result.graftForward = { version: convKernelFor(g, 'forward'), ...st, spotCheckRelErr: errF };

    if (opts.backward) {
      const dx0 = conv2dInputGradRaw(dy, w, g);
      const dw0 = conv2dFilterGradRaw(x, dy, g);
      const errs = [
        spotCheck(32, dx0.size, (await dx0.data()) as Float32Array, ref.inputGrad),
        spotCheck(8, dw0.size, (await dw0.data()) as Float32Array, ref.filterGrad),
      ];
      dx0.dispose();
      dw0.dispose();
      if (!errs.every((e) => e < 1e-3)) throw new Error(`conv2d backward on ${layer.label}: spot check failed, relative errors dX ${errs[0]}, dW ${errs[1]}`);
      const sb = await timeRuns(async () => {
        const dx = conv2dInputGradRaw(dy, w, g);
        const dw = conv2dFilterGradRaw(x, dy, g);
        await rt.sync();
        dx.dispose();
        dw.dispose();
      }, timing);
      result.graftBackward = { versions: { inputGrad: convKernelFor(g, 'inputGrad'), filterGrad: convKernelFor(g, 'filterGrad') }, ...sb, spotCheckRelErr: errs };
    }
  } finally {
    for (const t of [x, w, b, dy]) t.dispose();
  }

  if (tf) {
    const tx = tf.tensor4d(xd, xShape as [number, number, number, number]);
    const tw = tf.tensor4d(wd, wShape as [number, number, number, number]);
    const tb = tf.tensor1d(bd);
    const tdy = tf.tensor4d(dyd, [g.N, g.OH, g.OW, g.F]);
    const pad = tfPad(layer.padding);
    try {
      const run = async () => {
        const y = tf.fused.conv2d({ x: tx, filter: tw, strides: layer.stride, pad, bias: tb, activation: layer.activation === 'relu' ? 'relu' : 'linear' });
        await tfjsSync(tf, y);
        y.dispose();
      };
      await run();
      result.tfjsForward = await timeRuns(run, timing);
    } catch (e) {
      result.tfjsForward = { error: (e as Error).message };
    }
    if (opts.tfjsBackward && opts.backward) {
      try {
        const attrs = { strides: layer.stride, pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
        const run = async () => {
          const dx = tf.engine().runKernel('Conv2DBackpropInput', { dy: tdy, filter: tw }, { ...attrs, inputShape: xShape } as never) as unknown as TfTensor;
          const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x: tx, dy: tdy }, { ...attrs, filterShape: wShape } as never) as unknown as TfTensor;
          await tfjsSync(tf, dw);
          dx.dispose();
          dw.dispose();
        };
        await run();
        result.tfjsBackward = await timeRuns(run, timing);
      } catch (e) {
        result.tfjsBackward = { error: (e as Error).message };
      }
    }
    for (const t of [tx, tw, tb, tdy]) t.dispose();
  }
  return result;
}

const ms = (r: { medianMs: number } | { error: string } | undefined) => (r && 'medianMs' in r ? r.medianMs : null);

export async function run(args: string[]): Promise<void> {
  const opts = parseArgs(args);
  const rt = runtime();
  const adapter = adapterName(rt.gpu.info);
  console.log(`Adapter: ${adapter}`);
  console.log(`Features: subgroups ${rt.gpu.features.subgroups}, shader-f16 ${rt.gpu.features.f16}`);
  console.log(`Load average at start: ${loadavg().map((l) => l.toFixed(2)).join(', ')}`);
  console.log(`Sizes ${opts.sizes.join(', ')}; models ${opts.models.join(', ')}; batch ${opts.batch}; Graft version ${opts.version ?? 'auto'}\n`);
  forceConvVersion(opts.version);

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

  const results: RowResult[] = [];
  const rows: Array<Record<string, Cell>> = [];
  const summaries: Array<Record<string, unknown>> = [];
  const started = performance.now();
  try {
    for (const size of opts.sizes) {
      for (const model of opts.models) {
        const layers = modelLayers(model, size);
        const total = { flops: 0, graftF: 0, graftB: 0, tfjsF: 0, tfjsB: 0, tfjsMissing: false };
        for (const layer of layers) {
          const r = await measure(layer, opts.batch, opts, tf);
          results.push(r);
          const gF = ms(r.graftForward), gB = ms(r.graftBackward), tF = ms(r.tfjsForward), tB = ms(r.tfjsBackward);
          total.flops += layer.count * r.flops;
          total.graftF += layer.count * (gF ?? 0);
          total.graftB += layer.count * (gB ?? 0);
          total.tfjsF += layer.count * (tF ?? 0);
          total.tfjsB += layer.count * (tB ?? 0);
          if (tF === null) total.tfjsMissing = true;
          rows.push({
            model: `${model} ${size}`, layer: layer.label, count: layer.count, gflop: r.flops / 1e9,
            fwd: gF ? gflops(r.flops, gF) : null, fwdV: r.graftForward?.version ?? null,
            bwd: gB ? gflops(2 * r.flops, gB) : null, bwdV: r.graftBackward ? `${r.graftBackward.versions.inputGrad}/${r.graftBackward.versions.filterGrad}` : null,
            tfjs: tF ? gflops(r.flops, tF) : r.tfjsForward && 'error' in r.tfjsForward ? 'error' : null,
            ratio: gF && tF ? tF / gF : null,
            tfjsBwd: tB ? gflops(2 * r.flops, tB) : null,
          });
          console.log(`${model} ${size} ${layer.label} ×${layer.count}: fwd ${gF?.toFixed(1)} ms${gB ? `, bwd ${gB.toFixed(1)} ms` : ''}${tF ? `, tfjs ${tF.toFixed(1)} ms` : ''}`);
        }
        const summary = {
          model, size, layers: layers.length, convs: layers.reduce((n, l) => n + l.count, 0), gflopPerPass: total.flops / 1e9,
          graftForwardMs: total.graftF, graftForwardGflops: gflops(total.flops, total.graftF),
          graftBackwardMs: opts.backward ? total.graftB : null, graftBackwardGflops: opts.backward ? gflops(2 * total.flops, total.graftB) : null,
          tfjsForwardMs: tf && !total.tfjsMissing ? total.tfjsF : null,
          tfjsForwardGflops: tf && !total.tfjsMissing ? gflops(total.flops, total.tfjsF) : null,
          summedForwardRatio: tf && !total.tfjsMissing ? total.tfjsF / total.graftF : null,
          tfjsBackwardMs: opts.tfjsBackward && total.tfjsB > 0 ? total.tfjsB : null,
        };
        summaries.push(summary);
        rows.push({
          model: `${model} ${size}`, layer: `TOTAL (${summary.convs} convs)`, count: null, gflop: summary.gflopPerPass,
          fwd: summary.graftForwardGflops, fwdV: null, bwd: summary.graftBackwardGflops, bwdV: null,
          tfjs: summary.tfjsForwardGflops, ratio: summary.summedForwardRatio,
          tfjsBwd: summary.tfjsBackwardMs ? gflops(2 * total.flops, summary.tfjsBackwardMs) : null,
        });
      }
    }
  } finally {
    forceConvVersion(null);
  }

  const columns: Column[] = [
    { key: 'model', title: 'model' },
    { key: 'layer', title: 'layer' },
    { key: 'count', title: '×', digits: 0 },
    { key: 'gflop', title: 'GFLOP', digits: 2 },
    { key: 'fwd', title: 'fwd GF/s', digits: 1 },
    { key: 'fwdV', title: 'kernel' },
    { key: 'bwd', title: 'bwd GF/s', digits: 1 },
    { key: 'bwdV', title: 'dX/dW' },
    { key: 'tfjs', title: 'tfjs fwd', digits: 1 },
    { key: 'ratio', title: 'fwd ×tfjs', digits: 2 },
    ...(opts.tfjsBackward ? [{ key: 'tfjsBwd', title: 'tfjs bwd', digits: 1 }] : []),
  ];
  console.log(`\nConv2d GFLOP/s on ${adapter}, batch ${opts.batch} (median of warm runs; bwd = dX + dW, 2× the forward flops;`);
  console.log(`'fwd ×tfjs' = tfjs time / Graft time; TOTAL rows weight each layer by how often the network runs it)`);
  printTable(columns, rows);
  if (tfjsNote) console.log(`tfjs: ${tfjsNote}`);
  const minutes = (performance.now() - started) / 60000;
  console.log(`Load average at end: ${loadavg().map((l) => l.toFixed(2)).join(', ')}; ${minutes.toFixed(1)} min`);
  const file = writeJson('conv', {
    bench: 'conv',
    date: new Date().toISOString(),
    adapter,
    runtime: rt.gpu.info.runtime,
    features: rt.gpu.features,
    loadAverage: loadavg(),
    options: opts,
    method: 'wall clock: Graft op + runtime().sync(); tfjs fused.conv2d + queue drain. GFLOP/s = 2·N·OH·OW·Cout·KH·KW·Cin / time (backward: twice that).',
    tfjs: tfjsNote ?? 'ok',
    summaries,
    results,
  });
  console.log(`Wrote ${file}`);
}
