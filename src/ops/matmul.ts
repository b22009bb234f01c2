/**
 * Matrix multiplication and the dense layer: C = op(A) · op(B), optionally batched, and
 * Y = act(X · W + bias) with the bias add and activation fused into the matmul's epilogue.
 *
 * The kernels are numbered versions kept side by side (after llm.c's dev/cuda), each one a step up from
 * the one before and all checked against the same f64 reference:
 *   v1  shaders/matmul_v1.wgsl   one output per invocation; any shape, any transpose, the baseline.
 *   v2  shaders/matmul_v2.wgsl   a 4×4 register tile per invocation; no optional features (Deno).
 *   v3  shaders/matmul_v3.wgsl   8 rows × one vec4 per invocation, A shared across the subgroup with
 *                                subgroupBroadcast; needs `subgroups` and N % 4 == 0 (and K % 4 == 0
 *                                for a transposed B), else v2 runs.
 * `matmulKernelFor` picks the best valid version for a shape and device; `forceMatmulVersion` pins one
 * (tests, bench). All versions address A through element strides, so a transposed or batch-broadcast A is
 * free. v1 and v2 take B the same way; v3 reads B as vec4, along rows for a row-major B (`main`) and along
 * k for a transposed one (`main_bt`), so no transpose is ever materialised.
 *
 * Backward, for C = A · B:  dA = dC · Bᵀ,  dB = Aᵀ · dC  (with the transpose flags folded in, so no
 * transpose is materialised by the rule itself), and for dense dBias = Σ_rows dC, with relu's mask
 * taken from the saved output.
 *
 * Operands over the device's storage binding limit (VGG16's fc1 kernel, 392 MiB against lavapipe's
 * 128 MiB) are handled by running the same kernels over blocks of the problem: see src/ops/matmul-split.ts.
 */
import { record } from '../autograd/tape.js';
import type { BackwardRule } from '../autograd/backward.js';
import { Uniforms } from '../gpu/uniforms.js';
import { runtime } from '../gpu/runtime.js';
import { type Shape, Tensor, shapeStr } from '../tensor/tensor.js';
import { ArgumentError, LimitError, ShapeError } from '../errors.js';
import { expectDType, floatStorage, pinnedWorkgroupShape, storageOf, windowOf } from './kernel.js';
import { type MatmulBlock, blockSpans, matmulStrides, planMatmulBlocks } from './matmul-split.js';
import { addResidualRaw, binaryRaw } from './elementwise.js';
import { sum } from './reduce.js';

export type MatmulVersion = 'v1' | 'v2' | 'v3';
export const MATMUL_VERSIONS: readonly MatmulVersion[] = ['v1', 'v2', 'v3'];
export type DenseActivation = 'none' | 'relu';

export interface MatmulOptions {
  /** Read `a` as its transpose: a is [K, M] (or [batch, K, M]). */
  transposeA?: boolean;
  /** Read `b` as its transpose: b is [N, K] (or [batch, N, K]). */
  transposeB?: boolean;
}

export interface MatmulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

export interface DenseAttrs {
  activation: DenseActivation;
  hasBias: boolean;
  hasResidual: boolean;
}

declare module '../autograd/tape.js' {
  interface OpRegistry {
    matmul: MatmulAttrs;
    dense: DenseAttrs;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Shapes

/** One kernel launch's problem: C[batch] (M × N) = op(A[batch]) (M × K) · op(B[batch]) (K × N). */
export interface MatmulProblem {
  batch: number;
  M: number;
  N: number;
  K: number;
  transposeA: boolean;
  transposeB: boolean;
  /** Whether each operand has its own matrix per batch entry (false: one matrix, broadcast). */
  aBatched: boolean;
  bBatched: boolean;
  outShape: number[];
}

/**
 * Checks shapes and returns the problem. a and b have rank 2 or 3; a rank-3 operand gives the batch, and
 * a rank-2 operand is broadcast over it. A rank-3 A times a rank-2 B is one tall matmul (batch · M rows).
 */
export function matmulProblem(op: string, a: Shape, b: Shape, transposeA: boolean, transposeB: boolean): MatmulProblem {
  const both = `a is ${shapeStr(a)}${transposeA ? ' (transposed)' : ''}, b is ${shapeStr(b)}${transposeB ? ' (transposed)' : ''}`;
  for (const [name, s] of [['a', a], ['b', b]] as const) {
    if (s.length !== 2 && s.length !== 3) throw new ShapeError(`${op}: ${name} must have rank 2 or 3; ${both}.`);
  }
  const a2 = a.slice(-2), b2 = b.slice(-2);
  const [M, Ka] = transposeA ? [a2[1]!, a2[0]!] : [a2[0]!, a2[1]!];
  const [Kb, N] = transposeB ? [b2[1]!, b2[0]!] : [b2[0]!, b2[1]!];
  if (Ka !== Kb) throw new ShapeError(`${op}: inner dimensions differ (${Ka} vs ${Kb}): ${both}.`);
  const aBatch = a.length === 3 ? a[0]! : null;
  const bBatch = b.length === 3 ? b[0]! : null;
  if (aBatch !== null && bBatch !== null && aBatch !== bBatch) {
    throw new ShapeError(`${op}: batch sizes differ (${aBatch} vs ${bBatch}): ${both}.`);
  }
  const batch = aBatch ?? bBatch;
  const outShape = batch === null ? [M, N] : [batch, M, N];
  if (aBatch !== null && bBatch === null && !transposeA) {
    // Rows of all the A matrices are contiguous: one [batch·M, K] × [K, N] product.
    return { batch: 1, M: aBatch * M, N, K: Ka, transposeA, transposeB, aBatched: false, bBatched: false, outShape };
  }
  return { batch: batch ?? 1, M, N, K: Ka, transposeA, transposeB, aBatched: aBatch !== null, bBatched: bBatch !== null, outShape };
}

// ---------------------------------------------------------------------------------------------------------
// Kernel selection

let forced: MatmulVersion | null = null;

/** Pins every later matmul/dense to one kernel version (null: automatic). v3 still falls back to v2 where it cannot run. */
export function forceMatmulVersion(version: MatmulVersion | null): void {
  if (version !== null && !MATMUL_VERSIONS.includes(version)) {
    throw new ArgumentError(`forceMatmulVersion: unknown version '${String(version)}'; expected one of ${MATMUL_VERSIONS.join(', ')} or null.`);
  }
  forced = version;
}

/** Runs `fn` with a kernel version pinned, then restores the previous setting. */
export function withMatmulVersion<T>(version: MatmulVersion, fn: () => T): T {
  const before = forced;
  forceMatmulVersion(version);
  try {
    return fn();
  } finally {
    forced = before;
  }
}

/** Whether this device can run v3: subgroups of at least 8 lanes (the kernel broadcasts from lanes 0..7). */
export function subgroupKernelSupported(): boolean {
  const gpu = runtime().gpu;
  const min = gpu.info.subgroupMinSize;
  return gpu.features.subgroups && min !== undefined && min >= 8 && (gpu.info.subgroupMaxSize ?? min) <= 64;
}

export interface MatmulKernel {
  version: MatmulVersion;
  /**
   * The entry point: v2 uses `main_vec4` when B is row-major with N % 4 == 0; v3 uses `main_bt` for a
   * transposed B.
   */
  entry: 'main' | 'main_vec4' | 'main_bt';
}

/** The kernel that a problem runs with: the forced version if valid, else the best valid one. */
export function matmulKernelFor(pr: Pick<MatmulProblem, 'N' | 'K' | 'transposeB'>): MatmulKernel {
  const v3ok = pr.N % 4 === 0 && (!pr.transposeB || pr.K % 4 === 0) && subgroupKernelSupported();
  const want = forced ?? (v3ok ? 'v3' : 'v2');
  const version = want === 'v3' && !v3ok ? 'v2' : want;
  if (version === 'v3') return { version, entry: pr.transposeB ? 'main_bt' : 'main' };
  return { version, entry: version === 'v2' && pr.N % 4 === 0 && !pr.transposeB ? 'main_vec4' : 'main' };
}

/** Whether x·w with `units` columns (a dense layer) can run with f16 storage: only matmul v3's `main` reads f16. */
export function denseRunsInHalf(units: number): boolean {
  return matmulKernelFor({ N: units, K: 4, transposeB: false }).version === 'v3';
}

/**
 * Workgroup shape: 64 invocations, 16 × 4, or 64 × 1 when the problem has a single row group (a dense layer
 * with a batch of 8), so that most of the workgroup is not idle. Only two shapes, because each
 * specialisation costs a fresh JIT compile (~0.3 s on lavapipe).
 */
function workgroupShape(version: MatmulVersion, rowGroups: number): { WG_X: number; WG_Y: number } {
  if (version === 'v1') return { WG_X: 8, WG_Y: 8 };
  const pinned = pinnedWorkgroupShape(`matmul ${version}`, version === 'v3' ? runtime().gpu.info.subgroupMaxSize ?? 8 : 1);
  if (pinned) return pinned;
  const shape = rowGroups <= 1 ? { WG_X: 64, WG_Y: 1 } : { WG_X: 16, WG_Y: 4 };
  // v3 needs whole subgroups along x, so that the lanes of a subgroup share their rows.
  if (version === 'v3') shape.WG_X = Math.max(shape.WG_X, runtime().gpu.info.subgroupMaxSize ?? 8);
  return shape;
}

// ---------------------------------------------------------------------------------------------------------
// Dispatch

/**
 * Runs the chosen kernel for C = act(op(A) · op(B) + bias) without recording: in one dispatch, or, when an
 * operand exceeds the storage binding limit, in blocks that each bind a window of every operand
 * (src/ops/matmul-split.ts).
 */
function matmulRaw(op: string, a: Tensor, b: Tensor, pr: MatmulProblem, bias: Tensor | null, activation: DenseActivation, residual: Tensor | null = null): Tensor {
  const storage = floatStorage(op, a, b, bias, residual);
  const out = Tensor.empty(pr.outShape, storage, op);
  if (out.size === 0) return out;
  const { kernel: { version, entry }, rules, blocks } = planKernelAndBlocks(op, pr, { a, b, c: out, bias });
  if (residual && (version !== 'v3' || entry !== 'main')) {
    // Only v3's main entry adds a residual in its epilogue; elsewhere it is a separate add (then the activation).
    out.dispose();
    return addResidualRaw(matmulRaw(op, a, b, pr, bias, 'none'), residual, activation);
  }
  if (storage === 'f16' && (version !== 'v3' || entry !== 'main')) {
    throw new ArgumentError(
      `${op}: f16 storage runs on matmul v3's 'main' entry only (the 'subgroups' feature, N % 4 == 0, B not transposed); this problem [${pr.M}×${pr.K}]·[${pr.K}×${pr.N}] would run ${version}:${entry}. Run it in f32.`,
    );
  }
  for (const blk of blocks) {
    const lastK = blk.k0 + blk.kb === pr.K;
    runBlock(`${op} ${version}`, pr, { version, entry }, { a, b, c: out, bias: lastK ? bias : null, residual: lastK ? residual : null }, blk, {
      accumulate: blk.k0 > 0,
      activation: lastK ? activation : 'none',
      vec4: rules.vec4Columns,
    });
  }
  return out;
}

/**
 * The kernel and the blocks it runs in. The vec4 kernels need column blocks of at least 4 (and v3's
 * `main_bt` inner blocks of 4); where an operand's rows are so long that those do not fit, v2's scalar
 * entry point, which takes blocks of any size, runs instead.
 */
function planKernelAndBlocks(op: string, pr: MatmulProblem, operands: Parameters<typeof planMatmulBlocks>[2]) {
  const kernel = matmulKernelFor(pr);
  const rules = { vec4Columns: kernel.version === 'v3' || kernel.entry === 'main_vec4', vec4Inner: kernel.entry === 'main_bt' };
  try {
    return { kernel, rules, blocks: planMatmulBlocks(op, pr, operands, rules) };
  } catch (e) {
    if (!(e instanceof LimitError) || !(rules.vec4Columns || rules.vec4Inner)) throw e;
    const scalar: MatmulKernel = { version: 'v2', entry: 'main' };
    const none = { vec4Columns: false, vec4Inner: false };
    return { kernel: scalar, rules: none, blocks: planMatmulBlocks(op, pr, operands, none) };
  }
}

/** One dispatch of a matmul kernel over one block of the problem. */
function runBlock(
  label: string,
  pr: MatmulProblem,
  { version, entry }: MatmulKernel,
  t: { a: Tensor; b: Tensor; c: Tensor; bias: Tensor | null; residual: Tensor | null },
  blk: MatmulBlock,
  how: { accumulate: boolean; activation: DenseActivation; vec4: boolean },
): void {
  const spans = blockSpans(pr, blk);
  const a = windowOf(t.a, label, spans.a.first, spans.a.count);
  const b = windowOf(t.b, label, spans.b.first, spans.b.count);
  const c = windowOf(t.c, label, spans.c.first, spans.c.count);
  const bias = t.bias ? windowOf(t.bias, label, spans.bias.first, spans.bias.count) : { binding: runtime().emptyBuffer, skip: 0 };
  // The residual has C's shape, so C's span of it (only v3 binds one, at binding 4).
  const residual = t.residual ? windowOf(t.residual, label, spans.c.first, spans.c.count) : { binding: runtime().emptyBuffer, skip: 0 };
  if (how.vec4 && (b.skip % 4 !== 0 || c.skip % 4 !== 0 || bias.skip % 4 !== 0 || residual.skip % 4 !== 0)) {
    throw new Error(`${label}: internal error: a vec4 window starts off a vec4 boundary (${b.skip}, ${c.skip}, ${bias.skip}, ${residual.skip}).`);
  }
  const s = matmulStrides(pr);
  const { mb: M, nb: N, kb: K } = blk;
  const uniforms = new Uniforms()
    .u32(M).u32(N).u32(K).u32(how.accumulate ? 1 : 0)
    .u32(s.aRow).u32(s.aCol).u32(s.bRow).u32(s.bCol)
    .u32(s.aBatch).u32(s.bBatch).u32(s.cBatch).u32(s.cRow)
    .u32(a.skip).u32(b.skip).u32(c.skip).u32(bias.skip)
    .u32(residual.skip).u32(0).u32(0).u32(0);
  const rowsPer = version === 'v1' ? 1 : version === 'v2' ? 4 : 8;
  const colsPer = version === 'v1' ? 1 : 4;
  const rowGroups = Math.ceil(M / rowsPer);
  const colGroups = Math.ceil(N / colsPer);
  const wg = workgroupShape(version, rowGroups);
  runtime().dispatch({
    shader: `matmul_${version}`,
    entry,
    storage: storageOf(t.c),
    constants: { ...wg, HAS_BIAS: t.bias !== null, ACT: how.activation === 'relu' ? 1 : 0, ...(version === 'v3' ? { HAS_RESIDUAL: t.residual !== null } : {}) },
    uniforms,
    buffers: version === 'v3' ? [a.binding, b.binding, bias.binding, residual.binding, c.binding] : [a.binding, b.binding, bias.binding, c.binding],
    workgroups: [Math.ceil(colGroups / wg.WG_X), Math.ceil(rowGroups / wg.WG_Y), blk.batches],
    flops: 2 * blk.batches * M * N * K,
  });
}

// ---------------------------------------------------------------------------------------------------------
// Public ops

function checkOptions(op: string, options: object, allowed: readonly string[]): void {
  for (const k of Object.keys(options)) {
    if (!allowed.includes(k)) throw new ArgumentError(`${op}: unknown option '${k}'; supported options are ${allowed.join(', ')}.`);
  }
}

/**
 * op(a) · op(b), where op transposes when the matching flag is set. a is [M, K] ([K, M] with transposeA),
 * b is [K, N] ([N, K] with transposeB); either may carry a leading batch dim, and a rank-2 operand is
 * broadcast over the other's batch. Returns [M, N] or [batch, M, N].
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  checkOptions('matmul', options, ['transposeA', 'transposeB']);
  expectDType('matmul', a, 'f32');
  expectDType('matmul', b, 'f32');
  const transposeA = options.transposeA ?? false;
  const transposeB = options.transposeB ?? false;
  const pr = matmulProblem('matmul', a.shape, b.shape, transposeA, transposeB);
  const out = matmulRaw('matmul', a, b, pr, null, 'none');
  return record('matmul', { transposeA, transposeB }, [a, b], out, [a, b]);
}

/**
 * act(x [B, I] · w [I, O] + bias [O] + residual [B, O]) in one kernel. The residual (a ResNet block's shortcut,
 * added before the activation) is optional, as is the bias.
 */
export function dense(x: Tensor, w: Tensor, bias: Tensor | null = null, activation: DenseActivation = 'none', residual: Tensor | null = null): Tensor {
  if (activation !== 'none' && activation !== 'relu') {
    throw new ArgumentError(`dense: unknown activation '${String(activation)}'; expected 'none' or 'relu'.`);
  }
  floatStorage('dense', x, w, bias, residual);
  const shapes = `x is ${shapeStr(x.shape)}, w is ${shapeStr(w.shape)}${bias ? `, bias is ${shapeStr(bias.shape)}` : ''}`;
  if (x.rank !== 2 || w.rank !== 2) throw new ShapeError(`dense: x and w must have rank 2; ${shapes}.`);
  if (x.shape[1] !== w.shape[0]) throw new ShapeError(`dense: x has ${x.shape[1]} features but w has ${w.shape[0]} input rows; ${shapes}.`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== w.shape[1])) {
    throw new ShapeError(`dense: bias must have shape [${w.shape[1]}] (w's output size); ${shapes}.`);
  }
  if (residual && (residual.rank !== 2 || residual.shape[0] !== x.shape[0] || residual.shape[1] !== w.shape[1])) {
    throw new ShapeError(`dense: residual must have the output's shape [${x.shape[0]}, ${w.shape[1]}]; ${shapes}, residual is ${shapeStr(residual.shape)}.`);
  }
  const pr = matmulProblem('dense', x.shape, w.shape, false, false);
  const out = matmulRaw('dense', x, w, pr, bias, activation, residual);
  const inputs = [x, w, ...(bias ? [bias] : []), ...(residual ? [residual] : [])];
  return record('dense', { activation, hasBias: bias !== null, hasResidual: residual !== null }, inputs, out, activation === 'relu' ? [x, w, out] : [x, w]);
}

/**
 * op(a) · op(b) for batched operands, as `matmul` takes them → [batch, M, N] in a's storage type (f32 or
 * f16), not recorded: the kernel path of `matmul` for ops that run GEMMs inside their own passes (Winograd
 * convolution).
 */
export function batchedMatmulRaw(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const pr = matmulProblem('batched matmul', a.shape, b.shape, options.transposeA ?? false, options.transposeB ?? false);
  return matmulRaw('batched matmul', a, b, pr, null, 'none');
}

// ---------------------------------------------------------------------------------------------------------
// Backward

/** Sums a batched gradient [batch, r, c] down to [r, c] when its operand was broadcast (rank 2). */
function unbatch(g: Tensor, operandRank: number): Tensor {
  return g.rank === 3 && operandRank === 2 ? sum(g, 0) : g;
}

/** The [batch·rows, cols] view of a rank-3 tensor. */
function flat(t: Tensor): Tensor {
  return t.view([t.shape[0]! * t.shape[1]!, t.shape[2]!]);
}

export const matmulBackward: BackwardRule<'matmul'> = ({ attrs, saved, inputs, needsGrad }, g) => {
  const [a, b] = saved as [Tensor, Tensor];
  const { transposeA: tA, transposeB: tB } = attrs;
  const [rankA, rankB] = [inputs[0]!.shape.length, inputs[1]!.shape.length];
  let dA: Tensor | null = null;
  let dB: Tensor | null = null;
  if (needsGrad[0]) {
    // C = op(A)·op(B): d op(A) = dC·op(B)ᵀ, and for a stored-transposed A, dA = op(B)·dCᵀ.
    dA = unbatch(tA ? matmul(b, g, { transposeA: tB, transposeB: true }) : matmul(g, b, { transposeB: !tB }), rankA);
  }
  if (needsGrad[1]) {
    if (rankB === 2 && rankA === 3 && !tA) {
      // B was broadcast over the batch: Σ_b A_bᵀ·dC_b is one product of the flattened [batch·M, ·] matrices.
      dB = tB ? matmul(flat(g), flat(a), { transposeA: true }) : matmul(flat(a), flat(g), { transposeA: true });
    } else {
      // d op(B) = op(A)ᵀ·dC, and for a stored-transposed B, dB = dCᵀ·op(A).
      dB = unbatch(tB ? matmul(g, a, { transposeA: true, transposeB: tA }) : matmul(a, g, { transposeA: !tA }), rankB);
    }
  }
  return [dA, dB];
};

export const denseBackward: BackwardRule<'dense'> = ({ attrs, saved, needsGrad }, g) => {
  const [x, w, y] = saved as [Tensor, Tensor, Tensor | undefined];
  const gz = attrs.activation === 'relu' ? binaryRaw('reluGrad', g, y!) : g;
  const dx = needsGrad[0] ? matmul(gz, w, { transposeB: true }) : null;
  const dw = needsGrad[1] ? matmul(x, gz, { transposeA: true }) : null;
  const grads = [dx, dw];
  if (attrs.hasBias) grads.push(needsGrad[2] ? sum(gz, 0) : null);
  // The residual is added before the activation: its gradient is gz itself (a view, as the rule must return a new handle).
  if (attrs.hasResidual) grads.push(needsGrad[grads.length] ? gz.view(gz.shape) : null);
  return grads;
};

// ---------------------------------------------------------------------------------------------------------
// Plain-TypeScript references (f64), used by the tests.

/** op(a)·op(b) on flat row-major arrays, with the same shape rules as `matmul`. */
export function matmulRef(a: ArrayLike<number>, aShape: Shape, b: ArrayLike<number>, bShape: Shape, options: MatmulOptions = {}): { data: Float64Array; shape: number[] } {
  const tA = options.transposeA ?? false;
  const tB = options.transposeB ?? false;
  const shape = matmulProblem('matmulRef', aShape, bShape, tA, tB).outShape;
  const [M, N] = shape.slice(-2) as [number, number];
  const batch = shape.length === 3 ? shape[0]! : 1;
  const K = tA ? aShape[aShape.length - 2]! : aShape[aShape.length - 1]!;
  const aMat = aShape.length === 3 ? M * K : 0;
  const bMat = bShape.length === 3 ? K * N : 0;
  const out = new Float64Array(batch * M * N);
  for (let t = 0; t < batch; t++) {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = a[t * aMat + (tA ? k * M + m : m * K + k)]!;
          const bv = b[t * bMat + (tB ? n * K + k : k * N + n)]!;
          s += av * bv;
        }
        out[(t * M + m) * N + n] = s;
      }
    }
  }
  return { data: out, shape };
}

/** act(x·w + bias) on flat arrays: x [B, I], w [I, O], bias [O] or null. */
export function denseRef(
  x: ArrayLike<number>, xShape: Shape, w: ArrayLike<number>, wShape: Shape, bias: ArrayLike<number> | null, activation: DenseActivation = 'none',
  residual: ArrayLike<number> | null = null,
): { data: Float64Array; shape: number[] } {
  const r = matmulRef(x, xShape, w, wShape);
  const O = wShape[1]!;
  for (let i = 0; i < r.data.length; i++) {
    let v = r.data[i]! + (bias ? bias[i % O]! : 0) + (residual ? residual[i]! : 0);
    if (activation === 'relu') v = Math.max(v, 0);
    r.data[i] = v;
  }
  return r;
}
