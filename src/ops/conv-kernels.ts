/**
 * Conv2d kernels: the numbered versions, the choice between them, and their dispatch, for the three
 * passes of y = conv(x, w): the forward pass, dX (the input gradient) and dW (the filter gradient).
 * src/ops/conv.ts holds the public op, its shape rules, the backward rule and the reference.
 *
 * Versions, side by side (after llm.c's dev/cuda), each checked against the same f64 reference:
 *   v1      shaders/conv2d_v1.wgsl            direct convolution, one output per invocation; every pass,
 *                                             every shape: the baseline.
 *   v2      shaders/conv2d_v2.wgsl            implicit GEMM, 4 pixels × 4 channels per invocation, no
 *           shaders/conv2d_filter_grad_v2     optional features: the fallback (Deno has no subgroups) and
 *                                             the path for a channel count that is not a multiple of 4.
 *   v3      shaders/conv2d_v3.wgsl            implicit GEMM with matmul v3's subgroup recipe: 8 pixels ×
 *           shaders/conv2d_filter_grad_v3     one vec4 of channels, source values shared by
 *                                             subgroupBroadcast. Needs `subgroups` and a GEMM column count
 *                                             (Cout forward and for dW, Cin for dX) that is a multiple of 4.
 *                                             A forward pass with Cin % 8 != 0 (an RGB input) reduces over
 *                                             each kernel row's contiguous span of taps × channels instead
 *                                             (entry `main_span`).
 *   matmul  src/ops/matmul.ts                 a 1×1 convolution with stride 1 and no padding is the matmul
 *                                             [N·H·W, Cin]·[Cin, Cout] (dX: ·[Cin, Cout]ᵀ), bias and relu
 *                                             fused by `dense`. Forward and dX only: dW goes to v3/v2,
 *                                             whose split-K keeps both cores busy on a small filter.
 *   col2im  src/ops/conv-col2im.ts            dX only: one GEMM dY·wᵀ into columns, then a gather of the
 *           shaders/conv2d_col2im.wgsl        columns into dX. It skips the zeros of dY's padding that the
 *                                             v3 gather multiplies; chosen by a cost model where that
 *                                             waste outweighs writing the columns (a 5×5 kernel on a small
 *                                             image), if the columns fit 64 MiB.
 *   winograd src/ops/conv-winograd.ts         all three passes of a 3×3 stride-1 convolution (dX as a
 *           shaders/conv2d_winograd.wgsl      convolution with the filter turned, dW as the forward pass's
 *                                             adjoint) by Winograd F(4×4, 3×3) or F(2×2, 3×3): 4× or 2.25×
 *                                             fewer multiplies, in a batched matmul between transforms.
 *                                             Channel counts in multiples of 4; chosen automatically where
 *                                             its cost model says it is cheaper.
 * `convKernelFor` picks the best valid version for a pass; `forceConvVersion` pins one (tests, bench),
 * falling back to the next best where the pinned one cannot run (v3 → v2; matmul → v3 → v2; col2im → v3 →
 * v2; winograd → the automatic choice among the others).
 *
 * dX runs the forward kernel's gather backwards, once per stride phase (see conv2d_v3.wgsl), on the
 * filter with its channel dims swapped, wᵀ [KH, KW, Cout, Cin]: v3 reads w that way in place (entry
 * `main_bt`, for Cout % 4 == 0); v2 transposes the weights first.
 */
import { Uniforms } from '../gpu/uniforms.js';
import { runtime } from '../gpu/runtime.js';
import { noGrad } from '../autograd/tape.js';
import { Tensor } from '../tensor/tensor.js';
import { ArgumentError, LimitError } from '../errors.js';
import { grid1d, launch, pinnedWorkgroupShape, storageOf } from './kernel.js';
import { dense, matmul, subgroupKernelSupported } from './matmul.js';
import { addResidualRaw } from './elementwise.js';
import { reduceRaw } from './reduce.js';
import { transposeRaw } from './shape.js';
import { type AxisMap, forwardAxis, inputGradAxis } from './conv-axes.js';
import { col2imFits, col2imIsCheaper, conv2dCol2imInputGradRaw } from './conv-col2im.js';
import { conv2dWinogradFilterGradRaw, conv2dWinogradInputGradRaw, conv2dWinogradRaw, inputGradGeometry, winogradApplies } from './conv-winograd.js';

export type ConvVersion = 'v1' | 'v2' | 'v3' | 'matmul' | 'col2im' | 'winograd';
export const CONV_VERSIONS: readonly ConvVersion[] = ['v1', 'v2', 'v3', 'matmul', 'col2im', 'winograd'];
export type ConvActivation = 'none' | 'relu';
export type ConvPass = 'forward' | 'inputGrad' | 'filterGrad';

/** Everything about one convolution's shapes: x [N, H, W, C], w [KH, KW, C, F], y [N, OH, OW, F]. */
export interface ConvGeometry {
  N: number; H: number; W: number; C: number;
  KH: number; KW: number; F: number;
  OH: number; OW: number;
  /** Strides. */
  sh: number; sw: number;
  /** Padding: top, bottom, left, right. */
  pt: number; pb: number; pl: number; pr: number;
}

/** Multiply-adds × 2 of one pass (each of the three passes does the same number). */
export function convFlops(g: ConvGeometry): number {
  return 2 * g.N * g.OH * g.OW * g.F * g.KH * g.KW * g.C;
}

// ---------------------------------------------------------------------------------------------------------
// Selection

let forced: ConvVersion | null = null;

/** Pins every later conv2d pass to one version (null: automatic); see the header for the fallbacks. */
export function forceConvVersion(version: ConvVersion | null): void {
  if (version !== null && !CONV_VERSIONS.includes(version)) {
    throw new ArgumentError(`forceConvVersion: unknown version '${String(version)}'; expected one of ${CONV_VERSIONS.join(', ')} or null.`);
  }
  forced = version;
}

/** Runs `fn` with a version pinned, then restores the previous setting. */
export function withConvVersion<T>(version: ConvVersion | null, fn: () => T): T {
  const before = forced;
  forceConvVersion(version);
  try {
    return fn();
  } finally {
    forced = before;
  }
}

/**
 * Whether a convolution with `filters` output channels can run with f16 storage: only v3 (and matmul v3 for
 * a 1×1 one) read f16, which needs subgroups, filters % 4 == 0 and no pin to v1 or v2.
 */
export function convRunsInHalf(filters: number): boolean {
  return filters % 4 === 0 && subgroupKernelSupported() && forced !== 'v1' && forced !== 'v2';
}

/** A 1×1 convolution with stride 1 and no padding: a plain matmul over pixels. */
export function isPointwise(g: ConvGeometry): boolean {
  return g.KH === 1 && g.KW === 1 && g.sh === 1 && g.sw === 1 && g.pt + g.pb + g.pl + g.pr === 0;
}

/**
 * Whether `pass` can run as Winograd, and is cheaper so unless pinned: the forward pass and dW (its
 * adjoint) by the forward geometry's cost, dX as the forward pass of its own geometry.
 */
function winogradFor(g: ConvGeometry, pass: ConvPass, pinned: boolean): boolean {
  if (pass !== 'inputGrad') return winogradApplies(g, pinned, pass === 'filterGrad');
  const gd = inputGradGeometry(g);
  return gd !== null && winogradApplies(gd, pinned);
}

/** The version that `pass` runs with: the forced one if valid, else the best valid one. */
export function convKernelFor(g: ConvGeometry, pass: ConvPass): ConvVersion {
  const columns = pass === 'inputGrad' ? g.C : g.F;
  const v3ok = columns % 4 === 0 && subgroupKernelSupported();
  const matmulOk = pass !== 'filterGrad' && isPointwise(g);
  const winogradOk = winogradFor(g, pass, forced === 'winograd');
  const best: ConvVersion = v3ok ? 'v3' : 'v2';
  // col2im's GEMM runs on matmul v3 (which needs subgroups), and it writes dX in f32 as v3 does.
  const col2imOk = pass === 'inputGrad' && v3ok && (forced === 'col2im' ? col2imFits(g) : col2imIsCheaper(g));
  if (forced === 'v1' || forced === 'v2') return forced;
  if (forced === 'v3') return best;
  if (forced === 'matmul') return matmulOk ? 'matmul' : best;
  if (forced === 'col2im') return col2imOk ? 'col2im' : best;
  return winogradOk ? 'winograd' : matmulOk ? 'matmul' : col2imOk ? 'col2im' : best;
}

// ---------------------------------------------------------------------------------------------------------
// v1: one output per invocation

const NAIVE_ENTRY: Record<ConvPass, string> = { forward: 'main', inputGrad: 'main_dx', filterGrad: 'main_dw' };

function naive(pass: ConvPass, g: ConvGeometry, inputs: Array<Tensor | GPUBuffer>, out: Tensor, activation: ConvActivation, hasBias: boolean): void {
  const WG = 64;
  launch(`conv2d ${pass} v1`, {
    shader: 'conv2d_v1',
    entry: NAIVE_ENTRY[pass],
    constants: pass === 'forward' ? { WG, HAS_BIAS: hasBias, ACT: activation === 'relu' ? 1 : 0 } : { WG },
    uniforms: new Uniforms()
      .u32(g.N).u32(g.H).u32(g.W).u32(g.C).u32(g.OH).u32(g.OW).u32(g.F).u32(g.KH)
      .u32(g.KW).u32(g.sh).u32(g.sw).u32(out.size).i32(g.pt).i32(g.pl).u32(0).u32(0),
    inputs,
    outputs: [out],
    workgroups: grid1d(out.size, WG),
    flops: convFlops(g),
  });
}

// ---------------------------------------------------------------------------------------------------------
// v2 and v3 forward and dX: the gather GEMM of conv2d_v3.wgsl

/**
 * Workgroup shape, 64 invocations: x spans the column groups (up to 16, fewer when there are fewer, so a
 * 3-channel dX does not idle 15 lanes of 16), y the row groups. v3 needs whole subgroups along x.
 */
function workgroupShape(version: 'v2' | 'v3', columnGroups: number): { WG_X: number; WG_Y: number } {
  const pinned = pinnedWorkgroupShape(`conv2d ${version}`, version === 'v3' ? runtime().gpu.info.subgroupMaxSize ?? 8 : 1);
  if (pinned) return pinned;
  let x = Math.min(16, 2 ** Math.ceil(Math.log2(Math.max(columnGroups, 1))));
  if (version === 'v3') x = Math.max(x, runtime().gpu.info.subgroupMaxSize ?? 8);
  return { WG_X: x, WG_Y: Math.max(1, 64 / x) };
}

function gather(
  what: string, version: 'v2' | 'v3', src: Tensor, filter: Tensor, bias: Tensor | null, activation: ConvActivation,
  out: Tensor, n: number, h: AxisMap, w: AxisMap, cIn: number, cOut: number, filterW: number, flops: number,
  entryV3: 'main' | 'main_bt' | 'main_span' = 'main', residual: Tensor | null = null,
): void {
  const rows = n * h.rows * w.rows;
  if (rows === 0 || cOut === 0) return;
  const rowsPer = version === 'v3' ? 8 : 4;
  const rowGroups = Math.ceil(rows / rowsPer);
  const wg = workgroupShape(version, Math.ceil(cOut / 4));
  const groupsX = Math.ceil(Math.ceil(cOut / 4) / wg.WG_X);
  // The y dimension is capped per dispatch: larger problems run as several dispatches, each starting at row_base.
  const maxY = runtime().gpu.limits.maxComputeWorkgroupsPerDimension;
  const groupsY = Math.ceil(rowGroups / wg.WG_Y);
  const entry = version === 'v2' ? (cOut % 4 === 0 ? 'main_vec4' : 'main') : entryV3;
  for (let y0 = 0; y0 < groupsY; y0 += maxY) {
    const groups = Math.min(maxY, groupsY - y0);
    const rowBase = y0 * wg.WG_Y * rowsPer;
    launch(`${what} ${version}`, {
      shader: `conv2d_${version}`,
      entry,
      storage: storageOf(src),
      constants: { ...wg, HAS_BIAS: bias !== null, ACT: activation === 'relu' ? 1 : 0, ...(version === 'v3' ? { HAS_RESIDUAL: residual !== null } : {}) },
      uniforms: new Uniforms()
        .u32(rows).u32(h.rows).u32(w.rows).u32(cOut)
        .u32(cIn).u32(h.src).u32(w.src).u32(filterW)
        .u32(h.taps).u32(w.taps).u32(h.dst).u32(w.dst)
        .i32(h.srcRow).i32(h.srcTap).i32(h.srcOff).u32(h.fStep)
        .i32(w.srcRow).i32(w.srcTap).i32(w.srcOff).u32(w.fStep)
        .u32(h.fOff).u32(w.fOff).u32(h.dstStep).u32(w.dstStep)
        .u32(h.dstOff).u32(w.dstOff).u32(rowBase).u32(0),
      // v3 reads a residual at binding 4 (a placeholder when there is none); v2 has no such binding.
      inputs: version === 'v3' ? [src, filter, bias ?? runtime().emptyBuffer, residual ?? runtime().emptyBuffer] : [src, filter, bias ?? runtime().emptyBuffer],
      outputs: [out],
      workgroups: [groupsX, groups],
      flops: flops * (groups / groupsY),
    });
  }
}

// ---------------------------------------------------------------------------------------------------------
// The three passes

/**
 * y = act(conv(x, w) + bias + residual), not recorded. v3 and the matmul path add the residual in their
 * epilogue; v1 and v2 add it (and apply the activation) as separate passes.
 */
export function conv2dForwardRaw(x: Tensor, w: Tensor, bias: Tensor | null, activation: ConvActivation, g: ConvGeometry, residual: Tensor | null = null): Tensor {
  const version = convKernelFor(g, 'forward');
  const shape = [g.N, g.OH, g.OW, g.F];
  if (version === 'matmul') {
    const rows = g.N * g.H * g.W;
    return withViews(residual ? [x, w, residual] : [x, w], [[rows, g.C], [g.C, g.F], [rows, g.F]], ([xm, wm, rm]) => dense(xm!, wm!, bias, activation, rm ?? null), shape);
  }
  if (version === 'winograd') return conv2dWinogradRaw(x, w, bias, activation, g, residual);
  if (version === 'col2im') throw new Error('conv2d: internal error: col2im was chosen for a forward pass; it computes dX only.');
  if (residual && version !== 'v3') return addResidualRaw(conv2dForwardRaw(x, w, bias, 'none', g), residual, activation);
  const storage = storageOf(x);
  if (storage === 'f16' && version !== 'v3') {
    throw new ArgumentError(
      `conv2d: f16 storage runs on the v3 kernel (or the v3 matmul for a 1×1 convolution) only, which needs the 'subgroups' feature and output channels in multiples of 4; this convolution would run ${version} (x [${g.N}, ${g.H}, ${g.W}, ${g.C}], ${g.F} filters). Run it in f32.`,
    );
  }
  const y = Tensor.empty(shape, storage, 'conv2d');
  if (y.size === 0) return y;
  if (version === 'v1') {
    naive('forward', g, [x, w, bias ?? runtime().emptyBuffer], y, activation, bias !== null);
  } else {
    gather('conv2d', version, x, w, bias, activation, y, g.N,
      forwardAxis(g.H, g.OH, g.KH, g.sh, g.pt), forwardAxis(g.W, g.OW, g.KW, g.sw, g.pl), g.C, g.F, g.KW, convFlops(g),
      g.C % 8 !== 0 ? 'main_span' : 'main', residual);
  }
  return y;
}

/** dX [N, H, W, C] from dY [N, OH, OW, F] and w, not recorded. */
export function conv2dInputGradRaw(dy: Tensor, w: Tensor, g: ConvGeometry): Tensor {
  const version = convKernelFor(g, 'inputGrad');
  const shape = [g.N, g.H, g.W, g.C];
  if (version === 'matmul') {
    return withViews([dy, w], [[g.N * g.OH * g.OW, g.F], [g.C, g.F]], ([dym, wm]) => matmul(dym!, wm!, { transposeB: true }), shape);
  }
  if (version === 'winograd') return conv2dWinogradInputGradRaw(dy, w, g);
  if (version === 'col2im' && dy.dtype === 'f32' && w.dtype === 'f32') return conv2dCol2imInputGradRaw(dy, w, g);
  const dx = Tensor.empty(shape, 'f32', 'conv2d dX');
  if (dx.size === 0) return dx;
  if (version === 'v1') {
    naive('inputGrad', g, [dy, w], dx, 'none', false);
    return dx;
  }
  // Here version is v2 or v3 (matmul, winograd and col2im returned above; col2im with f16 operands runs v3).
  const gv = version === 'v3' || version === 'col2im' ? 'v3' : 'v2';
  // v3 reads w [KH, KW, C, F] as the transposed filter it needs (F % 4 == 0); otherwise w is transposed once.
  const readTransposed = gv === 'v3' && g.F % 4 === 0;
  const filter = readTransposed ? w : transposeRaw(w, [0, 1, 3, 2]);
  const phases = g.sh * g.sw;
  for (let rh = 0; rh < g.sh; rh++) {
    for (let rw = 0; rw < g.sw; rw++) {
      gather('conv2d dX', gv, dy, filter, null, 'none', dx, g.N,
        inputGradAxis(g.H, g.OH, g.KH, g.sh, g.pt, rh), inputGradAxis(g.W, g.OW, g.KW, g.sw, g.pl, rw), g.F, g.C, g.KW,
        convFlops(g) / phases, readTransposed ? 'main_bt' : 'main');
    }
  }
  if (!readTransposed) filter.dispose();
  return dx;
}

/** Workgroups that a dW dispatch aims for: enough that both cores stay busy to the end. */
const FILTER_GRAD_TARGET_GROUPS = 32;
/** Split-K ranges are at least this many output pixels long. */
const FILTER_GRAD_MIN_PIXELS = 512;
/** The partial sums of a split dW take at most this many bytes. */
const FILTER_GRAD_MAX_PARTIAL_BYTES = 64 * 2 ** 20;

/** dW [KH, KW, C, F] from x and dY, not recorded. */
export function conv2dFilterGradRaw(x: Tensor, dy: Tensor, g: ConvGeometry): Tensor {
  const version = convKernelFor(g, 'filterGrad');
  const shape = [g.KH, g.KW, g.C, g.F];
  if (version === 'winograd') return conv2dWinogradFilterGradRaw(x, dy, g);
  const rows = g.KH * g.KW * g.C;
  const pixels = g.N * g.OH * g.OW;
  if (version === 'v1' || rows * g.F === 0 || pixels === 0) {
    const dw = Tensor.empty(shape, 'f32', 'conv2d dW');
    if (dw.size > 0) naive('filterGrad', g, [x, dy], dw, 'none', false);
    return dw;
  }
  // v3, else v2 (the matmul version has no dW of its own).
  const v = version === 'v3' ? 'v3' : 'v2';
  const rowsPer = v === 'v3' ? 8 : 4;
  const wg = workgroupShape(v, Math.ceil(g.F / 4));
  const groupsXY = Math.ceil(Math.ceil(g.F / 4) / wg.WG_X) * Math.ceil(Math.ceil(rows / rowsPer) / wg.WG_Y);
  const maxSplits = Math.max(1, Math.min(
    Math.floor(pixels / FILTER_GRAD_MIN_PIXELS),
    Math.floor(FILTER_GRAD_MAX_PARTIAL_BYTES / (rows * g.F * 4)),
    runtime().gpu.limits.maxComputeWorkgroupsPerDimension,
  ));
  const wanted = Math.min(maxSplits, Math.ceil(FILTER_GRAD_TARGET_GROUPS / groupsXY));
  const kSplit = Math.ceil(pixels / wanted / 8) * 8;
  const splits = Math.ceil(pixels / kSplit);
  if (Math.ceil(rows / rowsPer / wg.WG_Y) > runtime().gpu.limits.maxComputeWorkgroupsPerDimension) {
    throw new LimitError(`conv2d dW: a filter of ${rows} rows (KH·KW·Cin) needs more workgroups than this device allows.`);
  }
  const partial = Tensor.empty(splits > 1 ? [splits, rows, g.F] : shape, 'f32', 'conv2d dW');
  launch(`conv2d dW ${v}`, {
    shader: `conv2d_filter_grad_${v}`,
    entry: v === 'v2' && g.F % 4 === 0 ? 'main_vec4' : 'main',
    constants: wg,
    uniforms: new Uniforms()
      .u32(g.N).u32(g.H).u32(g.W).u32(g.C).u32(g.OH).u32(g.OW).u32(g.F).u32(g.KW)
      .u32(g.sh).u32(g.sw).i32(g.pt).i32(g.pl).u32(rows).u32(pixels).u32(kSplit).u32(0),
    inputs: [x, dy],
    outputs: [partial],
    workgroups: [Math.ceil(Math.ceil(g.F / 4) / wg.WG_X), Math.ceil(Math.ceil(rows / rowsPer) / wg.WG_Y), splits],
    flops: convFlops(g),
  });
  if (splits === 1) return partial;
  const summed = reduceRaw('sum', partial, [0], false);
  partial.dispose();
  return viewAs(summed, shape);
}

/** Runs a matmul-shaped op on views of `ts` (unrecorded) and returns its result seen as `shape`. */
function withViews(ts: Tensor[], shapes: number[][], fn: (views: Tensor[]) => Tensor, shape: number[]): Tensor {
  const views = ts.map((t, i) => t.view(shapes[i]!));
  try {
    return viewAs(noGrad(() => fn(views)), shape);
  } finally {
    for (const v of views) v.dispose();
  }
}

/** `t` seen as `shape`; the original handle is released. */
function viewAs(t: Tensor, shape: number[]): Tensor {
  const v = t.view(shape);
  t.dispose();
  return v;
}
