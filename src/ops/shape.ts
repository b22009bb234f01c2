/**
 * Shape ops: reshape and flatten (views, no copy), transpose, slice and concat (data movement), with their
 * backward rules and plain-TypeScript references.
 *
 * Every data-moving op is one "strided copy": for each coordinate c of an iteration shape,
 *   out[outBase + Σ c_d·outStrides_d] = x[inBase + Σ c_d·inStrides_d].
 * transpose reads x with permuted strides, slice from an offset with x's own strides, and each input of a
 * concat is written at an offset with the output's strides. Before launching, `simplifyLayout` merges
 * dimensions that are adjacent in both layouts and drops size-1 dimensions. When what remains is one
 * contiguous run, as for a slice along axis 0 or a concat along the outermost axis, the copy is a
 * `copyBufferToBuffer` (about 5× the bandwidth of a shader on lavapipe); otherwise it is the `strided` kernel
 * of shaders/shape.wgsl (v1), or on a GPU, for a (batched) 2-D transpose, the tiled kernel of
 * shaders/transpose.wgsl (v2).
 *
 * Gradients: reshape's is g reshaped back; transpose's is g transposed by the inverse permutation;
 * slice's is g placed into zeros (the `pad` kernel); concat's are the slices of g that each input filled.
 */
import { record } from '../autograd/tape.js';
import type { BackwardRule } from '../autograd/backward.js';
import { Uniforms } from '../gpu/uniforms.js';
import { runtime } from '../gpu/runtime.js';
import { BYTES_PER_ELEMENT, type Shape, Tensor, shapeStr, sizeOf } from '../tensor/tensor.js';
import type { StorageType } from '../gpu/pipeline-cache.js';
import { ArgumentError, ShapeError } from '../errors.js';
import { MAX_RANK, expectDType, grid1d, launch, stridesOf } from './kernel.js';

declare module '../autograd/tape.js' {
  interface OpRegistry {
    reshape: { shape: number[] };
    transpose: { perm: number[] };
    slice: { begin: number[]; size: number[] };
    concat: { axis: number };
  }
}

const WG = 64;
/** Tile edge of the tiled transpose (T×T invocations per workgroup). */
const TILE = 16;
/** Elements each invocation of the `strided` kernel moves along the last dim. */
const RUN = 8;

// ---------------------------------------------------------------------------------------------------------
// reshape, flatten: a new handle on the same storage

/** Resolves one −1 in `to` against the element count of `from`, and checks the sizes agree. */
export function resolveShape(op: string, from: Shape, to: readonly number[]): number[] {
  const n = sizeOf(from);
  const unknown = to.filter((d) => d === -1).length;
  const bad = to.find((d) => !Number.isInteger(d) || d < -1);
  if (bad !== undefined || unknown > 1) {
    throw new ShapeError(`${op}: invalid target shape ${shapeStr(to)}; dims must be non-negative integers, with at most one -1.`);
  }
  const known = to.reduce((a, d) => (d === -1 ? a : a * d), 1);
  const out = [...to];
  if (unknown === 1) {
    if (known === 0 || n % known !== 0) {
      throw new ShapeError(`${op}: cannot reshape ${shapeStr(from)} (${n} elements) into ${shapeStr(to)}: ${n} is not a multiple of ${known}.`);
    }
    out[to.indexOf(-1)] = n / known;
  } else if (known !== n) {
    throw new ShapeError(`${op}: cannot reshape ${shapeStr(from)} (${n} elements) into ${shapeStr(to)} (${known} elements).`);
  }
  return out;
}

/** The same elements in row-major order, seen with another shape. One dim may be −1 (inferred). No copy. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  x.assertAlive('reshape');
  const target = resolveShape('reshape', x.shape, shape);
  return record('reshape', { shape: target }, [x], x.view(target));
}

/** [N, d1, d2, …] → [N, d1·d2·…], keeping dim 0 (as Keras's Flatten). */
export function flatten(x: Tensor): Tensor {
  if (x.rank === 0) throw new ShapeError('flatten: input is a scalar (shape []); expected rank ≥ 1 with the batch in dim 0.');
  return reshape(x, [x.shape[0]!, sizeOf(x.shape.slice(1))]);
}

export const reshapeBackward: BackwardRule<'reshape'> = ({ inputs }, g) => [g.view(inputs[0]!.shape)];

// ---------------------------------------------------------------------------------------------------------
// Moving elements: the strided copy shared by transpose, slice and concat

export interface Layout {
  /** Offset, in elements, of coordinate 0. */
  base: number;
  strides: number[];
}

/**
 * Drops size-1 dims of an iteration `shape` and merges each dim into the previous kept one when that is
 * exact in every layout (previous stride = size × stride). The copy it describes is unchanged.
 */
export function simplifyLayout(shape: Shape, strideLists: ReadonlyArray<readonly number[]>): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const strides = strideLists.map(() => [] as number[]);
  shape.forEach((size, d) => {
    if (size === 1) return;
    const last = outShape.length - 1;
    if (last >= 0 && strideLists.every((s, k) => strides[k]![last] === size * s[d]!)) {
      outShape[last]! *= size;
      strideLists.forEach((s, k) => (strides[k]![last] = s[d]!));
    } else {
      outShape.push(size);
      strideLists.forEach((s, k) => strides[k]!.push(s[d]!));
    }
  });
  return { shape: outShape, strides };
}

/** Copies the elements of x at `src` to `out` at `dst`, for every coordinate of `shape`. */
function moveElements(op: string, x: Tensor, out: Tensor, shape: Shape, src: Layout, dst: Layout): void {
  const n = sizeOf(shape);
  if (n === 0) return;
  const s = simplifyLayout(shape, [src.strides, dst.strides]);
  const [inStrides, outStrides] = s.strides as [number[], number[]];
  const rank = s.shape.length;
  const bpe = BYTES_PER_ELEMENT[x.dtype];
  const wordAligned = (src.base * bpe) % 4 === 0 && (dst.base * bpe) % 4 === 0 && (n * bpe) % 4 === 0;
  if ((rank === 0 || (rank === 1 && inStrides[0] === 1 && outStrides[0] === 1)) && wordAligned) {
    runtime().copy(x.buffer, src.base * bpe, out.buffer, dst.base * bpe, n * bpe);
    return;
  }
  const last = s.shape[rank - 1]!;
  const runsPerRow = Math.ceil(last / RUN);
  const runs = (n / last) * runsPerRow;
  launch(op, {
    shader: 'shape',
    entry: 'strided',
    storage: movedAs(x),
    constants: { WG },
    uniforms: new Uniforms()
      .u32(runs).u32(rank).u32(src.base).u32(dst.base).u32(RUN).u32(runsPerRow).u32(0).u32(0)
      .dims8(s.shape).dims8(inStrides, 0).dims8(outStrides, 0)
      .dims8([], 0).dims8([], 0), // lo and inner: used by `pad` only
    inputs: [x],
    outputs: [out],
    workgroups: grid1d(runs, WG),
  });
}

/** How shaders/shape.wgsl moves x's elements: as raw 32-bit words, or as f16 values. */
function movedAs(x: Tensor): StorageType {
  return x.dtype === 'f16' ? 'f16' : 'u32';
}

function expectMovable(op: string, x: Tensor): void {
  expectDType(op, x, 'f32', 'i32', 'u32', 'f16');
  if (x.rank > MAX_RANK) throw new ShapeError(`${op}: rank ${x.rank} exceeds the maximum of ${MAX_RANK}.`);
}

// ---------------------------------------------------------------------------------------------------------
// transpose

function checkPerm(x: Tensor, perm: readonly number[]): void {
  const ok = perm.length === x.rank && perm.every((p) => Number.isInteger(p) && p >= 0 && p < x.rank) && new Set(perm).size === perm.length;
  if (!ok) {
    throw new ArgumentError(`transpose: perm ${shapeStr(perm)} is not a permutation of [0, …, ${x.rank - 1}] for input of shape ${shapeStr(x.shape)}.`);
  }
}

/**
 * Whether the adapter is a CPU rasteriser (lavapipe, SwiftShader). There the tiled transpose loses: with
 * runs of 8 elements per invocation, the plain gather moved a 1024×1024 f32 transpose in 8 ms against the
 * tiled kernel's 17 ms (and 4.4 vs 10.9 ms for [64, 128, 96] → [64, 96, 128]), since a CPU has no
 * memory coalescing to gain and pays for the barrier. On a GPU the tile is the standard choice.
 */
function cpuAdapter(): boolean {
  const i = runtime().gpu.info;
  return /llvmpipe|lavapipe|swiftshader/i.test(`${i.description} ${i.device} ${i.architecture} ${i.vendor}`);
}

/**
 * out[c_0, …, c_{r−1}] = x[the coordinate whose dim perm[d] is c_d], i.e. out.shape[d] = x.shape[perm[d]].
 * `version` 1 forces the general gather (v1); 2 the tiled kernel (v2) where it applies, i.e. where the
 * permutation is a batched 2-D transpose once dims are merged, and v1 elsewhere. By default, v2 where it
 * applies except on CPU adapters.
 */
export function transposeRaw(x: Tensor, perm: readonly number[], version?: 1 | 2): Tensor {
  expectMovable('transpose', x);
  checkPerm(x, perm);
  const outShape = perm.map((p) => x.shape[p]!);
  const out = Tensor.empty(outShape, x.dtype, 'transpose');
  const inStrides = stridesOf(x.shape);
  const src: Layout = { base: 0, strides: perm.map((p) => inStrides[p]!) };
  const dst: Layout = { base: 0, strides: stridesOf(outShape) };
  // The tiled kernel moves 32-bit words only; f16 takes the gather.
  const tiled = (version ?? (cpuAdapter() ? 1 : 2)) === 2 && x.dtype !== 'f16' && batched2d(outShape, src.strides);
  if (tiled && out.size > 0) {
    const [batch, rows, cols] = tiled;
    launch('transpose', {
      shader: 'transpose',
      constants: { T: TILE },
      uniforms: new Uniforms().u32(rows).u32(cols),
      inputs: [x],
      outputs: [out],
      workgroups: [Math.ceil(cols / TILE), Math.ceil(rows / TILE), batch],
    });
  } else {
    moveElements('transpose', x, out, outShape, src, dst);
  }
  return out;
}

/**
 * If transposing is, after merging dims, x[b, r, c] → out[b, c, r], returns [batch, rows, cols] of x.
 * In terms of the output's iteration shape [b, c, r] that is input strides [r·c, 1, c].
 */
function batched2d(outShape: Shape, inStrides: readonly number[]): [number, number, number] | null {
  const { shape, strides } = simplifyLayout(outShape, [inStrides]);
  const s = strides[0]!;
  const max = runtime().gpu.limits.maxComputeWorkgroupsPerDimension;
  let found: [number, number, number] | null = null;
  if (shape.length === 2 && s[0] === 1 && s[1] === shape[0]) found = [1, shape[1]!, shape[0]!];
  if (shape.length === 3 && s[1] === 1 && s[2] === shape[1] && s[0] === shape[1]! * shape[2]!) found = [shape[0]!, shape[2]!, shape[1]!];
  if (found && (found[0] > max || Math.ceil(found[1] / TILE) > max || Math.ceil(found[2] / TILE) > max)) return null;
  return found;
}

/** Permutes dims: out.shape[d] = x.shape[perm[d]]. Without `perm`, reverses the dims (a matrix transpose). */
export function transpose(x: Tensor, perm?: readonly number[]): Tensor {
  x.assertAlive('transpose');
  const p = perm ? [...perm] : Array.from({ length: x.rank }, (_, i) => x.rank - 1 - i);
  return record('transpose', { perm: p }, [x], transposeRaw(x, p));
}

export function inversePerm(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, d) => (inv[p] = d));
  return inv;
}

export const transposeBackward: BackwardRule<'transpose'> = ({ attrs }, g) => [transposeRaw(g, inversePerm(attrs.perm))];

// ---------------------------------------------------------------------------------------------------------
// slice, and its gradient: pad with zeros

/** Checks begin/size against x's shape and resolves size −1 ("to the end"). */
function resolveSlice(x: Tensor, begin: readonly number[], size: readonly number[]): number[] {
  if (begin.length !== x.rank || size.length !== x.rank) {
    throw new ArgumentError(`slice: begin ${shapeStr(begin)} and size ${shapeStr(size)} must both have one entry per dim of the input ${shapeStr(x.shape)}.`);
  }
  return x.shape.map((dim, d) => {
    const b = begin[d]!;
    const s = size[d] === -1 ? dim - b : size[d]!;
    if (!Number.isInteger(b) || b < 0 || b > dim) {
      throw new ShapeError(`slice: begin[${d}] = ${b} is out of range [0, ${dim}] for dim ${d} of the input ${shapeStr(x.shape)}.`);
    }
    if (!Number.isInteger(s) || s < 0 || b + s > dim) {
      throw new ShapeError(`slice: begin[${d}] + size[${d}] = ${b} + ${size[d]} exceeds dim ${d} of the input ${shapeStr(x.shape)} (size ${dim}).`);
    }
    return s;
  });
}

/** The block of x starting at `begin` with extent `size` (size already resolved), not recorded. */
export function sliceRaw(x: Tensor, begin: readonly number[], size: readonly number[]): Tensor {
  expectMovable('slice', x);
  const out = Tensor.empty(size, x.dtype, 'slice');
  const strides = stridesOf(x.shape);
  const base = begin.reduce((a, b, d) => a + b * strides[d]!, 0);
  moveElements('slice', x, out, size, { base, strides }, { base: 0, strides: stridesOf(size) });
  return out;
}

/**
 * The block of x that starts at `begin` and has extent `size` (TensorFlow's tf.slice). A size of −1 means
 * "to the end of that dim".
 */
export function slice(x: Tensor, begin: readonly number[], size: readonly number[]): Tensor {
  x.assertAlive('slice');
  const s = resolveSlice(x, begin, size);
  return record('slice', { begin: [...begin], size: s }, [x], sliceRaw(x, begin, s));
}

/** A tensor of `shape`, zero except for x placed at offset `begin`. Not recorded. */
export function padRaw(x: Tensor, shape: Shape, begin: readonly number[]): Tensor {
  expectMovable('pad', x);
  if (shape.length !== x.rank || begin.length !== x.rank || x.shape.some((d, i) => begin[i]! < 0 || begin[i]! + d > shape[i]!)) {
    throw new ShapeError(`pad: ${shapeStr(x.shape)} placed at ${shapeStr(begin)} does not fit in ${shapeStr(shape)}.`);
  }
  const out = Tensor.empty(shape, x.dtype, 'pad');
  if (out.size === 0) return out;
  // Rank 0 is a one-element row: the kernel wants a last dim.
  const dims = shape.length > 0 ? shape : [1];
  const last = dims[dims.length - 1]!;
  const runsPerRow = Math.ceil(last / RUN);
  const runs = (out.size / last) * runsPerRow;
  launch('pad', {
    shader: 'shape',
    entry: 'pad',
    storage: movedAs(x),
    constants: { WG },
    uniforms: new Uniforms()
      .u32(runs).u32(dims.length).u32(0).u32(0).u32(RUN).u32(runsPerRow).u32(0).u32(0)
      .dims8(dims).dims8(stridesOf(x.shape), 0).dims8([], 0).dims8(begin, 0).dims8(x.shape.length > 0 ? x.shape : [1], 0),
    inputs: [x.size > 0 ? x : runtime().emptyBuffer],
    outputs: [out],
    workgroups: grid1d(runs, WG),
  });
  return out;
}

export const sliceBackward: BackwardRule<'slice'> = ({ attrs, inputs }, g) => [padRaw(g, inputs[0]!.shape, attrs.begin)];

// ---------------------------------------------------------------------------------------------------------
// concat

function normalizeAxis(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new ArgumentError(`${op}: axis ${axis} is out of range for rank ${rank}.`);
  return a;
}

/** Joins tensors along `axis`; every other dim must match. */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new ArgumentError('concat: expected at least one tensor, got an empty list.');
  const first = tensors[0]!;
  tensors.forEach((t) => expectMovable('concat', t));
  const ax = normalizeAxis('concat', axis, first.rank);
  tensors.forEach((t, k) => {
    if (t.dtype !== first.dtype) throw new ShapeError(`concat: tensor ${k} has dtype ${t.dtype}; tensor 0 has ${first.dtype}.`);
    if (t.rank !== first.rank || t.shape.some((d, i) => i !== ax && d !== first.shape[i])) {
      throw new ShapeError(
        `concat: tensor ${k} has shape ${shapeStr(t.shape)}, which does not match tensor 0's ${shapeStr(first.shape)} outside axis ${ax}.`,
      );
    }
  });
  const outShape = [...first.shape];
  outShape[ax] = tensors.reduce((a, t) => a + t.shape[ax]!, 0);
  const out = Tensor.empty(outShape, first.dtype, 'concat');
  const outStrides = stridesOf(outShape);
  let offset = 0; // along `axis`
  for (const t of tensors) {
    moveElements('concat', t, out, t.shape, { base: 0, strides: stridesOf(t.shape) }, { base: offset * outStrides[ax]!, strides: outStrides });
    offset += t.shape[ax]!;
  }
  return record('concat', { axis: ax }, tensors, out);
}

export const concatBackward: BackwardRule<'concat'> = ({ attrs, inputs, needsGrad }, g) => {
  let offset = 0;
  return inputs.map(({ shape }, k) => {
    const begin = shape.map((_, d) => (d === attrs.axis ? offset : 0));
    offset += shape[attrs.axis]!;
    return needsGrad[k] ? sliceRaw(g, begin, shape) : null;
  });
};

// ---------------------------------------------------------------------------------------------------------
// Plain-TypeScript references on flat row-major arrays, used by the tests.

/** Coordinates of flat index i in `shape`. */
function coords(i: number, shape: Shape): number[] {
  const c = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    c[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return c;
}

export function transposeRef(x: ArrayLike<number>, shape: Shape, perm: readonly number[]): Float64Array {
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = stridesOf(shape);
  const out = new Float64Array(sizeOf(outShape));
  for (let i = 0; i < out.length; i++) {
    const c = coords(i, outShape);
    out[i] = x[c.reduce((a, cd, d) => a + cd * inStrides[perm[d]!]!, 0)]!;
  }
  return out;
}

/** `size` must be resolved (no −1). */
export function sliceRef(x: ArrayLike<number>, shape: Shape, begin: readonly number[], size: readonly number[]): Float64Array {
  const strides = stridesOf(shape);
  const out = new Float64Array(sizeOf(size));
  for (let i = 0; i < out.length; i++) {
    const c = coords(i, size);
    out[i] = x[c.reduce((a, cd, d) => a + (cd + begin[d]!) * strides[d]!, 0)]!;
  }
  return out;
}

export function concatRef(xs: ReadonlyArray<{ data: ArrayLike<number>; shape: Shape }>, axis: number): { data: Float64Array; shape: number[] } {
  const shape = [...xs[0]!.shape];
  shape[axis] = xs.reduce((a, x) => a + x.shape[axis]!, 0);
  const out = new Float64Array(sizeOf(shape));
  for (let i = 0; i < out.length; i++) {
    const c = coords(i, shape);
    let k = 0;
    while (c[axis]! >= xs[k]!.shape[axis]!) c[axis]! -= xs[k++]!.shape[axis]!;
    const strides = stridesOf(xs[k]!.shape);
    out[i] = xs[k]!.data[c.reduce((a, cd, d) => a + cd * strides[d]!, 0)]!;
  }
  return { data: out, shape };
}
