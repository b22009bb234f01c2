/**
 * Splitting a matmul whose operands exceed the storage binding limit into blocks whose operands fit.
 *
 * A kernel sees each operand through one storage binding, and a device caps a binding's size (128 MiB on
 * lavapipe) far below the largest buffer. VGG16's fc1 kernel [25088, 4096] is 392 MiB, so its forward pass
 * (X·W), its input gradient (dY·Wᵀ) and its weight gradient (Xᵀ·dY, a 392 MiB output) all need more than
 * one binding can show. The way out is the block form of the product: for row blocks Mᵢ, column blocks Nⱼ
 * and inner blocks Kₗ,
 *
 *   C[Mᵢ, Nⱼ] = Σₗ A[Mᵢ, Kₗ] · B[Kₗ, Nⱼ]
 *
 * Each block is one dispatch of the same kernel, binding a window of each operand: the span of storage
 * that the block touches, from its first element to its last. A window's offset must be a multiple of
 * 256 bytes, so it may begin a little early; the kernel skips those elements (a_off, b_off, …). The strides
 * stay those of the whole tensors, so a block is addressed exactly as the whole problem is. The inner
 * blocks add up into C in place: the first writes, the later ones accumulate, and only the last applies
 * the bias and the activation (relu of a partial sum would be wrong). No partial product is stored.
 *
 * Which dimension to split follows from the storage layout. A row-major operand's window spans
 * (rows − 1)·rowStride + columns elements, so only fewer rows make it much smaller:
 *   A [M, K]          rows are m: split M          Aᵀ stored [K, M]   rows are k: split K
 *   B [K, N]          rows are k: split K          Bᵀ stored [N, K]   rows are n: split N
 *   C [M, N]          split M                      bias [N]           split N
 * So X·W splits K (W's rows), dY·Wᵀ splits N (W's rows again) and Xᵀ·dY splits M (the output's rows).
 * If a single row is over the limit, the row dimension is cut to one and the column dimension is split.
 *
 * Block sizes keep the kernels' requirements: vec4 kernels need column blocks (and, reading Bᵀ as vec4,
 * inner blocks) that are multiples of 4; and row and inner blocks are rounded to multiples of 8, the v3
 * kernel's tile height and k-chunk, when they are that large.
 */
import { LimitError } from '../errors.js';
import { type Tensor, shapeStr } from '../tensor/tensor.js';
import { bytesStr, storageBindingLimit } from './kernel.js';
import { runtime } from '../gpu/runtime.js';
import type { MatmulProblem } from './matmul.js';

/** The shape facts of a matmul that splitting needs. */
export type SplitProblem = Omit<MatmulProblem, 'outShape'>;

/** Element strides of the whole tensors: A(m, k) is at batch·aBatch + m·aRow + k·aCol, and so on. */
export interface MatmulStrides {
  aRow: number; aCol: number; aBatch: number;
  bRow: number; bCol: number; bBatch: number;
  cRow: number; cBatch: number;
}

export function matmulStrides(pr: SplitProblem): MatmulStrides {
  const { M, N, K } = pr;
  const [aRow, aCol] = pr.transposeA ? [1, M] : [K, 1];
  const [bRow, bCol] = pr.transposeB ? [1, K] : [N, 1];
  return { aRow, aCol, aBatch: pr.aBatched ? M * K : 0, bRow, bCol, bBatch: pr.bBatched ? K * N : 0, cRow: N, cBatch: M * N };
}

/** One dispatch: batch entries batch0 … batch0 + batches − 1, rows m0 … m0 + mb − 1, and so on. */
export interface MatmulBlock {
  batch0: number;
  batches: number;
  m0: number;
  mb: number;
  n0: number;
  nb: number;
  k0: number;
  kb: number;
}

/** Elements first … first + count − 1 of an operand: the window a block binds. */
export interface Span {
  first: number;
  count: number;
}

/** The span of each operand that a block touches (bias: columns n0 … n0 + nb − 1). */
export function blockSpans(pr: SplitProblem, blk: MatmulBlock): { a: Span; b: Span; c: Span; bias: Span } {
  const s = matmulStrides(pr);
  const lastBatch = blk.batch0 + blk.batches - 1;
  // An empty range (K = 0) touches nothing; keep its span to one element so that the binding is valid.
  const span = (batch: number, rowStride: number, colStride: number, r0: number, rows: number, c0: number, cols: number): Span => {
    const first = blk.batch0 * batch + r0 * rowStride + c0 * colStride;
    if (rows === 0 || cols === 0) return { first, count: 1 };
    return { first, count: lastBatch * batch + (r0 + rows - 1) * rowStride + (c0 + cols - 1) * colStride - first + 1 };
  };
  return {
    a: span(s.aBatch, s.aRow, s.aCol, blk.m0, blk.mb, blk.k0, blk.kb),
    b: span(s.bBatch, s.bRow, s.bCol, blk.k0, blk.kb, blk.n0, blk.nb),
    c: span(s.cBatch, s.cRow, 1, blk.m0, blk.mb, blk.n0, blk.nb),
    bias: { first: blk.n0, count: Math.max(blk.nb, 1) },
  };
}

type Dim = 'm' | 'n' | 'k';

/** More blocks than this means a limit absurdly small for the problem: refuse rather than crawl. */
const MAX_BLOCKS = 65536;

/** An operand's storage rows run along `outer` (`stride` elements apart), its columns along `inner`. */
interface Layout {
  name: string;
  tensor: Tensor;
  outer: Dim;
  inner: Dim | null;
  stride: number;
}

/** What the chosen kernel requires of block sizes: column blocks (and inner blocks) that are multiples of 4. */
export interface BlockRules {
  vec4Columns: boolean;
  vec4Inner: boolean;
}

/**
 * The blocks to run C = op(A)·op(B) (+ bias) in. One block, the whole problem, when every operand fits the
 * binding limit; otherwise blocks of one batch entry each, sized so that every operand's window fits.
 * Blocks are ordered with the inner dimension innermost, so the accumulating blocks of an output block run
 * one after another.
 */
export function planMatmulBlocks(
  op: string,
  pr: SplitProblem,
  operands: { a: Tensor; b: Tensor; c: Tensor; bias: Tensor | null },
  rules: BlockRules,
): MatmulBlock[] {
  const { M, N, K } = pr;
  const whole: MatmulBlock = { batch0: 0, batches: pr.batch, m0: 0, mb: M, n0: 0, nb: N, k0: 0, kb: K };
  const limit = storageBindingLimit();
  const tensors = [operands.a, operands.b, operands.c, operands.bias].filter((t): t is Tensor => t !== null);
  if (tensors.every((t) => Math.ceil(Math.max(16, t.byteLength) / 16) * 16 <= limit)) return [whole];

  // Elements a window may span: the limit, less the up to 255 bytes a window begins early and the 16 its
  // size is rounded up by.
  const align = runtime().gpu.limits.minStorageBufferOffsetAlignment;
  const room = Math.floor((limit - align - 16) / 4);
  const layouts: Layout[] = [
    pr.transposeA
      ? { name: 'a', tensor: operands.a, outer: 'k', inner: 'm', stride: M }
      : { name: 'a', tensor: operands.a, outer: 'm', inner: 'k', stride: K },
    pr.transposeB
      ? { name: 'b', tensor: operands.b, outer: 'n', inner: 'k', stride: K }
      : { name: 'b', tensor: operands.b, outer: 'k', inner: 'n', stride: N },
    { name: 'the output', tensor: operands.c, outer: 'm', inner: 'n', stride: N },
  ];
  if (operands.bias) layouts.push({ name: 'the bias', tensor: operands.bias, outer: 'n', inner: null, stride: 1 });

  const size: Record<Dim, number> = { m: M, n: N, k: K };
  const step = (d: Dim) => (d === 'n' ? (rules.vec4Columns ? 4 : 1) : d === 'k' && rules.vec4Inner ? 4 : 1);
  /** The block size `v` rounded down to what the kernel needs (and to a multiple of 8 for m and k). */
  const round = (d: Dim, v: number) => {
    const q = d !== 'n' && v >= 8 ? 8 : step(d);
    return Math.floor(v / q) * q;
  };
  const spanOf = (l: Layout) => (size[l.outer] - 1) * l.stride + (l.inner ? size[l.inner] : 1);
  const fail = (l: Layout): never => {
    throw new LimitError(
      `${op}: cannot split ${l.name} ${shapeStr(l.tensor.shape)} (${bytesStr(l.tensor.byteLength)}) into blocks that fit ` +
        `the storage binding limit of ${bytesStr(limit)} (maxStorageBufferBindingSize); ${shapeStr([M, N, K])} = [M, N, K].`,
    );
  };
  // Shrinking a block never makes another operand's window larger, so one pass over the operands suffices.
  for (const l of layouts) {
    if (spanOf(l) <= room) continue;
    const cols = l.inner ? size[l.inner] : 1;
    const rows = cols <= room ? round(l.outer, Math.floor((room - cols) / l.stride) + 1) : 0;
    if (rows >= 1) {
      size[l.outer] = rows;
    } else {
      // Not even the fewest rows the kernel allows fit whole: take those rows, and split them.
      size[l.outer] = Math.min(size[l.outer], step(l.outer));
      if (l.inner) size[l.inner] = round(l.inner, room - (size[l.outer] - 1) * l.stride);
    }
    if (size.m < 1 || size.n < 1 || (size.k < 1 && K > 0) || spanOf(l) > room) fail(l);
  }

  const count = pr.batch * Math.ceil(M / size.m) * Math.ceil(N / size.n) * Math.max(1, Math.ceil(K / size.k));
  if (count > MAX_BLOCKS) {
    throw new LimitError(
      `${op}: splitting [M, N, K] = ${shapeStr([M, N, K])} into blocks that fit the storage binding limit of ${bytesStr(limit)} ` +
        `would take ${count} dispatches (more than ${MAX_BLOCKS}); every operand is far over the limit.`,
    );
  }
  const blocks: MatmulBlock[] = [];
  for (let batch0 = 0; batch0 < pr.batch; batch0++) {
    for (let m0 = 0; m0 < M; m0 += size.m) {
      for (let n0 = 0; n0 < N; n0 += size.n) {
        let k0 = 0;
        do {
          const kb = Math.min(size.k, K - k0);
          blocks.push({ batch0, batches: 1, m0, mb: Math.min(size.m, M - m0), n0, nb: Math.min(size.n, N - n0), k0, kb });
          k0 += kb;
        } while (k0 < K);
      }
    }
  }
  return blocks;
}
