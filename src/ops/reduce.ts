/**
 * Reductions over axes: sum, mean and max (shaders/reduce.wgsl), their backward rules, and references.
 */
import { record } from '../autograd/tape.js';
import type { BackwardRule } from '../autograd/backward.js';
import { Uniforms } from '../gpu/uniforms.js';
import { type Shape, Tensor, sizeOf } from '../tensor/tensor.js';
import { broadcastAxes } from './broadcast.js';
import { binaryRaw, broadcastTo, div, mul, mulScalar } from './elementwise.js';
import { floatStorage, grid1d, launch, normalizeAxes, sameShape, storageOf, stridesOf } from './kernel.js';

export type ReduceKind = 'sum' | 'mean' | 'max';

export interface ReduceAttrs {
  kind: ReduceKind;
  axes: number[];
  keepDims: boolean;
}

declare module '../autograd/tape.js' {
  interface OpRegistry {
    reduce: ReduceAttrs;
  }
}

const WG = 64;
/** Above this many reduced elements per output, and with few outputs, a workgroup shares each output. */
const LONG_ROW = 256;

/** Splits dims into kept and reduced lists, merging neighbours that are contiguous in memory. */
export function reductionPlan(shape: Shape, axes: readonly number[]) {
  const strides = stridesOf(shape);
  const kept: Array<[number, number]> = [];
  const red: Array<[number, number]> = [];
  shape.forEach((size, d) => {
    if (size === 1) return; // size-1 dims contribute nothing either way
    const list = axes.includes(d) ? red : kept;
    const last = list[list.length - 1];
    const prevDim = d - 1;
    // Merge with the previous dim of the same list when it is adjacent in memory and in the same list.
    if (last && prevDim >= 0 && axes.includes(prevDim) === axes.includes(d) && last[1] === size * strides[d]! && shape[prevDim] !== 1) {
      last[0] *= size;
      last[1] = strides[d]!;
    } else {
      list.push([size, strides[d]!]);
    }
  });
  return { kept, red };
}

function outShapeOf(shape: Shape, axes: readonly number[], keepDims: boolean): number[] {
  return keepDims ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

export function reduceRaw(kind: ReduceKind, x: Tensor, axes: number[], keepDims: boolean): Tensor {
  const storage = floatStorage(kind, x);
  const out = Tensor.empty(outShapeOf(x.shape, axes, keepDims), storage, kind);
  const nRed = axes.reduce((n, a) => n * x.shape[a]!, 1);
  if (out.size === 0) return out;
  const { kept, red } = reductionPlan(x.shape, axes);
  if (kept.length > 8 || red.length > 8) throw new Error(`${kind}: too many dimensions after merging`);
  const scale = kind === 'mean' ? 1 / Math.max(nRed, 1) : 1;
  const columns = columnReduction(storage, kept, red);
  if (columns) {
    // Two passes: partial[s, c] over blocks of rows, then the S rows of partials.
    const partial = Tensor.empty([columns.S, columns.C], 'f32', `${kind} partial`);
    launch(kind, {
      shader: 'reduce',
      entry: 'columns',
      constants: { OP: kind === 'max' ? 1 : 0, WG },
      uniforms: new Uniforms().u32(columns.R).u32(columns.C / 4).u32(columns.L).u32((columns.S * columns.C) / 4),
      inputs: [x],
      outputs: [partial],
      workgroups: grid1d((columns.S * columns.C) / 4, WG),
      flops: x.size,
    });
    reducePass(kind, partial, out, [[columns.C, 1]], [[columns.S, columns.C]], columns.S, scale);
    partial.dispose();
    return out;
  }
  reducePass(kind, x, out, kept, red, nRed, scale);
  return out;
}

/**
 * A column reduction of an f32 [R, C] matrix over its rows, with C % 4 == 0 and R long: the shape of a bias
 * gradient. Returns its dimensions and the rows per invocation L of the first pass (S = ⌈R / L⌉ ≤ 64
 * blocks, at least 32 rows each), or null for any other reduction.
 */
function columnReduction(storage: string, kept: Array<[number, number]>, red: Array<[number, number]>): { R: number; C: number; L: number; S: number } | null {
  if (storage !== 'f32' || kept.length !== 1 || red.length !== 1) return null;
  const [C, keptStride] = kept[0]!;
  const [R, redStride] = red[0]!;
  if (keptStride !== 1 || redStride !== C || C % 4 !== 0 || R < LONG_ROW) return null;
  const L = Math.max(32, Math.ceil(R / 64));
  return { R, C, L, S: Math.ceil(R / L) };
}

/** One dispatch of `main` or `main_wg` reducing x into out along the merged dims of the plan. */
function reducePass(kind: ReduceKind, x: Tensor, out: Tensor, kept: Array<[number, number]>, red: Array<[number, number]>, nRed: number, scale: number): void {
  const u = new Uniforms()
    .u32(out.size).u32(nRed).u32(kept.length).u32(red.length)
    .f32(scale).u32(0).u32(0).u32(0)
    .dims8(kept.map((k) => k[0])).dims8(kept.map((k) => k[1]), 0)
    .dims8(red.map((k) => k[0])).dims8(red.map((k) => k[1]), 0);
  const perWorkgroup = nRed >= LONG_ROW && out.size < 4096;
  launch(kind, {
    shader: 'reduce',
    storage: storageOf(x),
    entry: perWorkgroup ? 'main_wg' : 'main',
    constants: { OP: kind === 'max' ? 1 : 0, WG },
    uniforms: u,
    inputs: [x],
    outputs: [out],
    workgroups: perWorkgroup ? grid1d(out.size, 1) : grid1d(out.size, WG),
    flops: x.size,
  });
}

function reduce(kind: ReduceKind, x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  const ax = normalizeAxes(kind, axes, x.rank);
  const out = reduceRaw(kind, x, ax, keepDims);
  return record('reduce', { kind, axes: ax, keepDims }, [x], out, kind === 'max' ? [x, out] : []);
}

/** Sum over `axes` (all axes when omitted). */
export const sum = (x: Tensor, axes?: number | readonly number[], keepDims = false) => reduce('sum', x, axes, keepDims);
export const mean = (x: Tensor, axes?: number | readonly number[], keepDims = false) => reduce('mean', x, axes, keepDims);
export const max = (x: Tensor, axes?: number | readonly number[], keepDims = false) => reduce('max', x, axes, keepDims);

/**
 * Sums a broadcast result back down to `shape`: the gradient of broadcasting. Differentiable.
 * Returns `t` itself when no reduction is needed.
 */
export function sumTo(t: Tensor, shape: Shape): Tensor {
  if (sameShape(t.shape, shape)) return t;
  const axes = broadcastAxes(shape, t.shape);
  const s = sum(t, axes, true);
  // keepDims leaves t's rank; drop the leading dims that `shape` does not have.
  const r = s.view(shape);
  s.dispose();
  return r;
}

/** Broadcasts `g` (the gradient of a reduction's output) back to the input shape, as a kept-dims view. */
function expandBack(g: Tensor, inShape: Shape, axes: readonly number[]): Tensor {
  const kept = inShape.map((d, i) => (axes.includes(i) ? 1 : d));
  return g.view(kept);
}

export const reduceBackward: BackwardRule<'reduce'> = ({ attrs, saved, inputs }, g) => {
  const inShape = inputs[0]!.shape;
  const gk = expandBack(g, inShape, attrs.axes);
  switch (attrs.kind) {
    case 'sum':
      return [broadcastTo(gk, inShape)];
    case 'mean': {
      const nRed = attrs.axes.reduce((n, a) => n * inShape[a]!, 1);
      return [broadcastTo(mulScalar(gk, 1 / nRed), inShape)];
    }
    case 'max': {
      // Route the gradient to the maxima; ties share it equally.
      const [x, y] = saved as [Tensor, Tensor];
      const mask = binaryRaw('equal', x, expandBack(y, inShape, attrs.axes));
      const count = reduceRaw('sum', mask, attrs.axes, true);
      return [mul(mask, div(gk, count))];
    }
  }
};

// ---------------------------------------------------------------------------------------------------------
// Reference

export function reduceRef(kind: ReduceKind, x: ArrayLike<number>, shape: Shape, axes: readonly number[]): Float64Array {
  const outShape = outShapeOf(shape, axes, true);
  const n = sizeOf(outShape);
  const out = new Float64Array(n).fill(kind === 'max' ? -Infinity : 0);
  const strides = stridesOf(outShape);
  const total = sizeOf(shape);
  for (let i = 0; i < total; i++) {
    let rest = i, o = 0;
    for (let d = shape.length - 1; d >= 0; d--) {
      const c = rest % shape[d]!;
      rest = Math.floor(rest / shape[d]!);
      if (!axes.includes(d)) o += c * strides[d]!;
    }
    out[o] = kind === 'max' ? Math.max(out[o]!, x[i]!) : out[o]! + x[i]!;
  }
  if (kind === 'mean') {
    const r = total / Math.max(n, 1);
    for (let i = 0; i < n; i++) out[i]! /= r;
  }
  return out;
}
