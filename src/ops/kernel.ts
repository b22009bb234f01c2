/**
 * What every op file uses to run a kernel: output allocation, input checks, and the dispatch call.
 *
 * Storage binding limits. A kernel sees each tensor through one storage binding, and a device caps the size
 * of a binding (maxStorageBufferBindingSize: 128 MiB on lavapipe, far below its 4 GiB maxBufferSize). So a
 * tensor may exist and still be too large for a kernel to see whole; VGG16's fc1 kernel (392 MiB) is one.
 * WebGPU lets a bind group bind a window {buffer, offset, size} of a buffer, with the offset a multiple of
 * minStorageBufferOffsetAlignment (256 bytes), and that is how large tensors are handled:
 *
 *   - `launchFlat` runs a flat kernel (element i of every tensor belongs to flat index i) over windows of the
 *     index space, one dispatch per window. Each kernel takes the window's length as its `n`, and those whose
 *     values depend on the index itself (Philox random, dropout) take the window's first index as well, so a
 *     windowed run produces exactly the values of a whole one.
 *   - matmul splits its problem into blocks whose operands fit (src/ops/matmul-split.ts), using `windowOf`.
 *   - everything else goes through `launch`, which checks each binding and throws a LimitError naming the op,
 *     the tensor, its size and the limit, so that no oversized binding ever reaches WebGPU validation.
 *
 * Tests lower the limit with `setStorageBindingLimit` to exercise the windowed paths on small tensors.
 */
import { BYTES_PER_ELEMENT, type DType, type Shape, Tensor, shapeStr } from '../tensor/tensor.js';
import { ArgumentError, LimitError, ShapeError } from '../errors.js';
import { runtime, type Binding } from '../gpu/runtime.js';
import type { Constants, StorageType } from '../gpu/pipeline-cache.js';
import type { Uniforms } from '../gpu/uniforms.js';

export interface Launch {
  shader: string;
  entry?: string;
  constants?: Constants;
  /** The storage type of a kernel written with `Elem` (src/gpu/pipeline-cache.ts); every float tensor bound must have it. */
  storage?: StorageType;
  /** Tensors that the kernel declares f32 whatever its storage type (Winograd's transformed tiles): exempt from that check. */
  alwaysF32?: Tensor[];
  uniforms?: Uniforms;
  /** Read-only inputs, then outputs, bound at @binding(1), @binding(2), … in that order. */
  inputs: Array<Tensor | GPUBuffer>;
  outputs: Array<Tensor | GPUBuffer>;
  workgroups: [number, number?, number?];
  flops?: number;
}

// ---------------------------------------------------------------------------------------------------------
// Binding limits

let limitOverride: number | null = null;

/**
 * The largest storage binding, in bytes, that ops may use: the device's maxStorageBufferBindingSize, or the
 * lower value set by `setStorageBindingLimit`.
 */
export function storageBindingLimit(): number {
  const device = runtime().gpu.limits.maxStorageBufferBindingSize;
  return limitOverride === null ? device : Math.min(device, limitOverride);
}

/**
 * Lowers the binding limit that ops plan with (null: the device's own). For tests: a limit of a few KB sends
 * small tensors through the same windowed paths that a 400 MB tensor takes. A multiple of 256, at least 1024.
 */
export function setStorageBindingLimit(bytes: number | null): void {
  if (bytes !== null && (!Number.isInteger(bytes) || bytes < 1024 || bytes % 256 !== 0)) {
    throw new ArgumentError(`setStorageBindingLimit: expected null or a multiple of 256 that is at least 1024, got ${bytes}.`);
  }
  limitOverride = bytes;
}

/** Runs `fn` with the binding limit lowered to `bytes`, then restores the previous limit. */
export function withStorageBindingLimit<T>(bytes: number, fn: () => T): T {
  const before = limitOverride;
  setStorageBindingLimit(bytes);
  try {
    return fn();
  } finally {
    limitOverride = before;
  }
}

export interface WorkgroupShape {
  WG_X: number;
  WG_Y: number;
}

let pinnedShape: WorkgroupShape | null = null;

/**
 * Runs `fn` with the 2-D workgroup shape of the tiled kernels (matmul v2/v3, conv2d v2/v3 and their gradients)
 * pinned to `shape` instead of the shape the ops choose, then restores the automatic choice. For the kernel
 * explorer and for tuning: the grid is computed from the pinned shape, so results stay correct. The subgroup
 * kernels (v3) need WG_X to be a multiple of the subgroup size; the product must fit the device's
 * maxComputeInvocationsPerWorkgroup.
 */
export function withWorkgroupShape<T>(shape: WorkgroupShape, fn: () => T): T {
  const limits = runtime().gpu.limits;
  const { WG_X, WG_Y } = shape;
  if (![WG_X, WG_Y].every((n) => Number.isInteger(n) && n >= 1) || WG_X * WG_Y > limits.maxComputeInvocationsPerWorkgroup || WG_X > limits.maxComputeWorkgroupSizeX || WG_Y > limits.maxComputeWorkgroupSizeY) {
    throw new ArgumentError(`withWorkgroupShape: WG_X × WG_Y = ${WG_X} × ${WG_Y} is not a workgroup this device runs (positive integers, at most ${limits.maxComputeWorkgroupSizeX} × ${limits.maxComputeWorkgroupSizeY} and ${limits.maxComputeInvocationsPerWorkgroup} invocations).`);
  }
  const before = pinnedShape;
  pinnedShape = { WG_X, WG_Y };
  try {
    return fn();
  } finally {
    pinnedShape = before;
  }
}

/**
 * The pinned workgroup shape, if any, for a kernel that needs `subgroupX` (the subgroup size for v3 kernels, 1
 * otherwise) to divide WG_X.
 */
export function pinnedWorkgroupShape(op: string, subgroupX = 1): WorkgroupShape | null {
  if (pinnedShape && pinnedShape.WG_X % subgroupX !== 0) {
    throw new ArgumentError(`${op}: the pinned workgroup WG_X = ${pinnedShape.WG_X} must be a multiple of the subgroup size ${subgroupX} for this kernel.`);
  }
  return pinnedShape;
}

/** Bytes as "411041792 bytes (392.0 MiB)". */
export function bytesStr(bytes: number): string {
  return `${bytes} bytes (${(bytes / 2 ** 20).toFixed(1)} MiB)`;
}

/** "tensor 'fc1/kernel' [25088, 4096] f32", for error messages. */
export function tensorStr(t: Tensor): string {
  return `tensor ${t.name ? `'${t.name}' ` : ''}${shapeStr(t.shape)} ${t.dtype}`;
}

function checkBinding(op: string, t: Tensor, bytes: number, what: string): void {
  const limit = storageBindingLimit();
  if (bytes > limit) {
    throw new LimitError(
      `${op}: ${what}${tensorStr(t)} takes ${bytesStr(bytes)}, over the storage binding limit of ${bytesStr(limit)} ` +
        `(maxStorageBufferBindingSize), and ${op} cannot split it.`,
    );
  }
}

const roundUp = (v: number, m: number) => Math.ceil(v / m) * m;

/** The binding for a whole tensor: its buffer, limited to the tensor's bytes rounded up to 16. */
export function bindingOf(t: Tensor | GPUBuffer, op: string): Binding {
  if (!(t instanceof Tensor)) return t;
  t.assertAlive(op);
  const size = Math.min(t.storage.buffer.size, roundUp(Math.max(16, t.byteLength), 16));
  checkBinding(op, t, size, '');
  return { buffer: t.storage.buffer, size };
}

/**
 * The binding of elements [first, first + count) of a tensor: a window whose offset is rounded down to the
 * device's offset alignment, so it may begin up to 255 bytes early. `skip` is the number of elements before
 * `first` in the window: the kernel reads element first + j at skip + j.
 */
export function windowOf(t: Tensor, op: string, first: number, count: number): { binding: Binding; skip: number } {
  t.assertAlive(op);
  const bpe = BYTES_PER_ELEMENT[t.dtype];
  const align = runtime().gpu.limits.minStorageBufferOffsetAlignment;
  const offset = Math.floor((first * bpe) / align) * align;
  const size = Math.min(t.storage.buffer.size - offset, roundUp(Math.max(16, (first + count) * bpe - offset), 16));
  checkBinding(op, t, size, `a window of ${count} elements of `);
  return { binding: { buffer: t.storage.buffer, offset, size }, skip: (first * bpe - offset) / bpe };
}

/** With a storage type, every f32 or f16 tensor bound must be of that type (any 32-bit one for 'u32'): the kernel reads them all as Elem. */
function checkStorage(op: string, storage: StorageType | undefined, bound: Array<Tensor | GPUBuffer>): void {
  if (storage === undefined) return;
  if (storage === 'u32') {
    const half = bound.find((t) => t instanceof Tensor && BYTES_PER_ELEMENT[t.dtype] !== 4);
    if (half) throw new ArgumentError(`${op}: ${tensorStr(half as Tensor)} does not have 32-bit elements, which the kernel moves as words.`);
    return;
  }
  for (const t of bound) {
    if (t instanceof Tensor && (t.dtype === 'f32' || t.dtype === 'f16') && t.dtype !== storage) {
      throw new ArgumentError(`${op}: ${tensorStr(t)} is ${t.dtype} but the kernel runs with ${storage} storage; every float input must be ${storage} (cast it first).`);
    }
  }
}

export function launch(op: string, l: Launch): void {
  for (const t of l.alwaysF32 ?? []) expectDType(op, t, 'f32');
  checkStorage(op, l.storage, [...l.inputs, ...l.outputs].filter((t) => !(l.alwaysF32 ?? []).includes(t as Tensor)));
  runtime().dispatch({
    shader: l.shader,
    entry: l.entry,
    storage: l.storage,
    constants: l.constants,
    uniforms: l.uniforms,
    buffers: [...l.inputs, ...l.outputs].map((t) => bindingOf(t, op)),
    workgroups: l.workgroups,
    flops: l.flops,
  });
}

// ---------------------------------------------------------------------------------------------------------
// Flat kernels, run over windows of their index space

/** One window of a flat kernel's index space: indices start … start + count − 1. */
export interface FlatWindow {
  start: number;
  count: number;
}

export interface FlatLaunch {
  shader: string;
  entry?: string;
  constants?: Constants;
  /** As in Launch. */
  storage?: StorageType;
  /**
   * The uniforms of one window. The kernel sees the window's elements at indices 0 … count − 1, so its
   * element count is `count`; a kernel whose values depend on the index adds `start` to it.
   */
  uniforms: (w: FlatWindow) => Uniforms;
  /**
   * Read-only inputs, then outputs, as for `launch`. Every tensor has `elements` elements, element i
   * belonging to index i, and is bound as the window's slice of it. A GPUBuffer (a placeholder the kernel
   * does not read) is bound whole.
   */
  inputs: Array<Tensor | GPUBuffer>;
  outputs: Array<Tensor | GPUBuffer>;
  /** The size of the index space. */
  elements: number;
  /** The kernel's workgroup size. */
  workgroupSize: number;
  /** Indices per invocation: 4 for a Philox block, 2 for an f16 word. Default 1. */
  perInvocation?: number;
  flopsPerElement?: number;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const lcm = (a: number, b: number) => (a / gcd(a, b)) * b;

/**
 * The window length for a flat kernel over `tensors`: all of it when every tensor fits, else the most
 * indices that fit the limit in the widest tensor, rounded down to a multiple of `unit`. The unit makes
 * every window start at an aligned byte offset in every tensor, and on an invocation boundary.
 */
function flatWindowLength(op: string, tensors: Tensor[], elements: number, perInvocation: number): number {
  const limit = storageBindingLimit();
  const widths = tensors.map((t) => BYTES_PER_ELEMENT[t.dtype]);
  if (widths.every((bpe) => roundUp(Math.max(16, elements * bpe), 16) <= limit)) return elements;
  const align = runtime().gpu.limits.minStorageBufferOffsetAlignment;
  const unit = widths.reduce((u, bpe) => lcm(u, align / gcd(align, bpe)), perInvocation);
  const length = Math.floor(limit / Math.max(...widths) / unit) * unit;
  if (length === 0) {
    const t = tensors[widths.indexOf(Math.max(...widths))]!;
    throw new LimitError(`${op}: cannot split ${tensorStr(t)} into windows of at most ${bytesStr(limit)} aligned to ${align} bytes.`);
  }
  return length;
}

/** Runs a flat kernel in as many dispatches as the binding limit requires (usually one). */
export function launchFlat(op: string, l: FlatLaunch): void {
  const bound = [...l.inputs, ...l.outputs];
  const tensors = bound.filter((t): t is Tensor => t instanceof Tensor);
  for (const t of tensors) {
    t.assertAlive(op);
    if (t.size !== l.elements) throw new ShapeError(`${op}: ${tensorStr(t)} has ${t.size} elements; the kernel runs over ${l.elements}.`);
  }
  checkStorage(op, l.storage, bound);
  if (l.elements === 0) return;
  const per = l.perInvocation ?? 1;
  const length = flatWindowLength(op, tensors, l.elements, per);
  for (let start = 0; start < l.elements; start += length) {
    const count = Math.min(length, l.elements - start);
    runtime().dispatch({
      shader: l.shader,
      entry: l.entry,
      storage: l.storage,
      constants: l.constants,
      uniforms: l.uniforms({ start, count }),
      buffers: bound.map((t) => (t instanceof Tensor ? windowOf(t, op, start, count).binding : t)),
      workgroups: grid1d(Math.ceil(count / per), l.workgroupSize),
      flops: l.flopsPerElement === undefined ? undefined : l.flopsPerElement * count,
    });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

/**
 * Workgroups for a 1-D problem of `n` items, `perGroup` items per workgroup. Large problems spill into
 * the y dimension, since one dimension is limited to 65,535 workgroups; kernels recover the flat index
 * as `gid.x + gid.y * num_workgroups.x * WG`.
 */
export function grid1d(n: number, perGroup: number): [number, number] {
  const groups = Math.ceil(n / perGroup);
  const max = runtime().gpu.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= max) return [Math.max(groups, 1), 1];
  const y = Math.ceil(groups / max);
  return [Math.ceil(groups / y), y];
}
export function expectDType(op: string, t: Tensor, ...allowed: DType[]): void {
  t.assertAlive(op);
  if (!allowed.includes(t.dtype)) {
    throw new ShapeError(`${op}: ${t.name ? `'${t.name}' ` : ''}has dtype ${t.dtype}; expected ${allowed.join(' or ')}.`);
  }
}

/** The storage type a kernel reads a float tensor with (its dtype: f16, else f32). */
export function storageOf(t: Tensor): 'f32' | 'f16' {
  return t.dtype === 'f16' ? 'f16' : 'f32';
}

/**
 * The storage type of an op's float operands: 'f32', or 'f16' where they are all f16 (which needs the
 * device feature 'shader-f16'). Null operands are skipped; f16 and f32 operands do not mix.
 */
export function floatStorage(op: string, ...operands: Array<Tensor | null | undefined>): 'f32' | 'f16' {
  const ts = operands.filter((t): t is Tensor => t instanceof Tensor);
  for (const t of ts) expectDType(op, t, 'f32', 'f16');
  const first = ts[0];
  if (!first || first.dtype === 'f32') {
    const half = ts.find((t) => t.dtype === 'f16');
    if (half) throw new ArgumentError(`${op}: ${tensorStr(half)} is f16 but ${tensorStr(first!)} is f32; an op's float inputs must all be f32 or all f16 (cast one).`);
    return 'f32';
  }
  const full = ts.find((t) => t.dtype !== 'f16');
  if (full) throw new ArgumentError(`${op}: ${tensorStr(full)} is f32 but ${tensorStr(first)} is f16; an op's float inputs must all be f32 or all f16 (cast one).`);
  if (!runtime().gpu.features.f16) throw new ArgumentError(`${op}: f16 tensors need the WebGPU feature 'shader-f16', which this device does not have.`);
  return 'f16';
}

export function expectRank(op: string, t: Tensor, rank: number, what = 'input'): void {
  if (t.rank !== rank) throw new ShapeError(`${op}: ${what} has shape ${shapeStr(t.shape)}; expected rank ${rank}.`);
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Normalises possibly negative axes against `rank`, sorted and unique. */
export function normalizeAxes(op: string, axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const out = new Set<number>();
  for (const a of list) {
    const n = a < 0 ? a + rank : a;
    if (!Number.isInteger(n) || n < 0 || n >= rank) throw new ShapeError(`${op}: axis ${a} is out of range for rank ${rank}.`);
    out.add(n);
  }
  return [...out].sort((x, y) => x - y);
}

/** Row-major strides of a shape. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

export const MAX_RANK = 8;
