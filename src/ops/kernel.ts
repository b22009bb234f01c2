/**
 * What every op file uses to run a kernel: output allocation, input checks, and the dispatch call.
 */
import { type DType, type Shape, Tensor, shapeStr } from '../tensor/tensor.js';
import { ShapeError } from '../errors.js';
import { runtime, type Binding } from '../gpu/runtime.js';
import type { Constants } from '../gpu/pipeline-cache.js';
import type { Uniforms } from '../gpu/uniforms.js';

export interface Launch {
  shader: string;
  entry?: string;
  constants?: Constants;
  uniforms?: Uniforms;
  /** Read-only inputs, then outputs, bound at @binding(1), @binding(2), … in that order. */
  inputs: Array<Tensor | GPUBuffer>;
  outputs: Tensor[];
  workgroups: [number, number?, number?];
  flops?: number;
}

/** The binding for a tensor: its buffer, limited to the tensor's bytes rounded up to 16. */
export function bindingOf(t: Tensor | GPUBuffer, op: string): Binding {
  if (!(t instanceof Tensor)) return t;
  t.assertAlive(op);
  return { buffer: t.storage.buffer, size: Math.min(t.storage.buffer.size, Math.max(16, Math.ceil(t.byteLength / 16) * 16)) };
}

export function launch(op: string, l: Launch): void {
  runtime().dispatch({
    shader: l.shader,
    entry: l.entry,
    constants: l.constants,
    uniforms: l.uniforms,
    buffers: [...l.inputs, ...l.outputs].map((t) => bindingOf(t, op)),
    workgroups: l.workgroups,
    flops: l.flops,
  });
}

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
