/**
 * Tensors: a shape, a dtype, and a reference-counted GPU buffer.
 *
 * Ownership is explicit. A tensor handle owns one reference to its storage; `dispose()` gives it up, and
 * the buffer returns to the pool when the last reference is gone. Views (reshape, detach) share storage
 * and take their own reference. The autograd tape takes references to the tensors a backward rule needs,
 * so that `tidy()` may dispose the user's handles while the graph still holds what backward will read.
 * Nothing is left for the garbage collector.
 *
 * Layout: row-major, and images are NHWC (channels last, as Keras).
 */
import { getFloat16 } from '@petamoriken/float16';
import { DisposedError, ShapeError } from '../errors.js';
import { runtime } from '../gpu/runtime.js';
import type { TapeNode } from '../autograd/tape.js';
import { trackInScope, untrack } from './scope.js';

export type DType = 'f32' | 'f16' | 'i32' | 'u32';

export const BYTES_PER_ELEMENT: Record<DType, number> = { f32: 4, f16: 2, i32: 4, u32: 4 };

export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function checkShape(shape: Shape, what: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(`${what}: invalid shape [${shape.join(', ')}]; dims must be non-negative integers.`);
  }
}

export function shapeStr(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** A reference-counted GPU buffer. */
export class Storage {
  refs = 1;
  constructor(
    readonly buffer: GPUBuffer,
    readonly bytes: number,
  ) {}

  retain(): this {
    this.refs++;
    return this;
  }

  release(): void {
    if (--this.refs === 0) runtime().pool.release(this.buffer);
  }
}

let nextId = 1;
const live = new Set<Tensor>();

export function liveTensorCount(): number {
  return live.size;
}

export class Tensor {
  readonly id = nextId++;
  readonly size: number;
  /** Set on parameters and on outputs of ops whose inputs require grad. */
  requiresGrad = false;
  /** Accumulated gradient of a leaf tensor after `backward()`. Owned by this tensor. */
  grad: Tensor | null = null;
  /** The op that produced this tensor, when it was recorded on the tape. */
  node: TapeNode | null = null;
  /** Optional name, used in error messages (parameters are named after their layer). */
  name: string | undefined;
  private disposedFlag = false;
  /** Kept tensors survive `tidy()` scopes. */
  kept = false;

  constructor(
    readonly shape: Shape,
    readonly dtype: DType,
    readonly storage: Storage,
    options: { track?: boolean } = {},
  ) {
    this.size = sizeOf(shape);
    live.add(this);
    if (options.track !== false) trackInScope(this);
  }

  /** A fresh, uninitialised tensor. Ops use it for their outputs. */
  static empty(shape: Shape, dtype: DType = 'f32', what = 'tensor'): Tensor {
    checkShape(shape, what);
    const bytes = Math.max(4, sizeOf(shape) * BYTES_PER_ELEMENT[dtype]);
    const buf = runtime().pool.acquire(bytes, `${what} ${shapeStr(shape)} ${dtype}`);
    return new Tensor(shape, dtype, new Storage(buf, bytes));
  }

  get rank(): number {
    return this.shape.length;
  }

  get isDisposed(): boolean {
    return this.disposedFlag;
  }

  get buffer(): GPUBuffer {
    this.assertAlive('read');
    return this.storage.buffer;
  }

  /** Bytes of data (size × element size); the buffer may be larger. */
  get byteLength(): number {
    return this.size * BYTES_PER_ELEMENT[this.dtype];
  }

  assertAlive(op: string): void {
    if (this.disposedFlag) {
      throw new DisposedError(`${op}: tensor${this.name ? ` '${this.name}'` : ''} ${shapeStr(this.shape)} was already disposed.`);
    }
  }

  /** Copies the data back to the CPU. */
  async data(): Promise<Float32Array | Int32Array | Uint32Array | Uint16Array> {
    this.assertAlive('data()');
    const bytes = await runtime().read(this.storage.buffer, 0, this.byteLength);
    switch (this.dtype) {
      case 'f32':
        return new Float32Array(bytes);
      case 'i32':
        return new Int32Array(bytes);
      case 'u32':
        return new Uint32Array(bytes);
      case 'f16':
        return new Uint16Array(bytes);
    }
  }

  /** The data as f32 (f16 is widened on the CPU). */
  async floats(): Promise<Float32Array> {
    const d = await this.data();
    if (d instanceof Float32Array) return d;
    if (this.dtype === 'f16') {
      const view = new DataView(d.buffer, d.byteOffset, d.byteLength);
      return Float32Array.from({ length: d.length }, (_, i) => getFloat16(view, i * 2, true));
    }
    return Float32Array.from(d);
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new ShapeError(`item(): tensor has shape ${shapeStr(this.shape)}, expected exactly one element.`);
    return (await this.floats())[0]!;
  }

  /** A new handle on the same storage with another shape (no copy). */
  view(shape: Shape): Tensor {
    this.assertAlive('view');
    if (sizeOf(shape) !== this.size) {
      throw new ShapeError(`view: cannot view ${shapeStr(this.shape)} (${this.size} elements) as ${shapeStr(shape)} (${sizeOf(shape)}).`);
    }
    return new Tensor(shape, this.dtype, this.storage.retain());
  }

  /** Survive enclosing `tidy()` scopes. Returns this. */
  keep(): this {
    this.kept = true;
    untrack(this);
    return this;
  }

  dispose(): void {
    if (this.disposedFlag) return;
    this.disposedFlag = true;
    live.delete(this);
    untrack(this);
    this.storage.release();
    const node = this.node;
    this.node = null;
    node?.unref();
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  toString(): string {
    return `Tensor(${this.name ? `${this.name}, ` : ''}${shapeStr(this.shape)}, ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}
