/**
 * Elementwise ops: unary (neg, exp, log, …, scalar affine), and binary with broadcasting (add, sub, …).
 *
 * For each op, this file holds the forward dispatch (shaders/unary.wgsl, shaders/binary.wgsl), the
 * backward rule, and a plain-TypeScript reference used by the tests.
 *
 * Unary ops, `full` and same-shape binary ops are flat kernels (one output per input element at the same
 * index), so they run through `launchFlat`, which splits a tensor over the storage binding limit into
 * windows. Broadcasting binary ops bind whole tensors and throw a LimitError for one over the limit.
 */
import { record } from '../autograd/tape.js';
import type { BackwardRule } from '../autograd/backward.js';
import { Uniforms } from '../gpu/uniforms.js';
import { runtime } from '../gpu/runtime.js';
import { type Shape, Tensor, shapeStr } from '../tensor/tensor.js';
import { ShapeError } from '../errors.js';
import { broadcastShapes, broadcastStrides } from './broadcast.js';
import { MAX_RANK, floatStorage, grid1d, launch, launchFlat, sameShape } from './kernel.js';
import { sumTo } from './reduce.js';

const WG = 64;
/**
 * vec4s per invocation of the flat kernels' `main_vec4` entries. Measured on lavapipe over 1.18M f32
 * elements (one process, the variants interleaved, median of 7, ms): add 11.9 per element (`main`), RUN 1
 * 5.2, 2 4.7, 4 3.6, 8 7.0; relu 7.7 per element, RUN 1 4.5, 2 2.6, 4 1.9, 8 3.0.
 */
const RUN = 4;

/**
 * Entry point of a flat unary or same-shape binary kernel over `elements` elements: `main_vec4` (four
 * elements per load, RUN vec4s per invocation) where the count is a multiple of 4, so that every window of
 * `launchFlat` is too (its windows are multiples of `perInvocation`); else `main`, one element each.
 */
function flatEntry(elements: number): { entry: string; perInvocation: number; constants: Record<string, number> } {
  return elements % 4 === 0 ? { entry: 'main_vec4', perInvocation: 4 * RUN, constants: { RUN } } : { entry: 'main', perInvocation: 1, constants: {} };
}

// ---------------------------------------------------------------------------------------------------------
// Unary

/** Op codes of shaders/unary.wgsl. */
export const UNARY_OPS = {
  neg: 0, exp: 1, log: 2, sqrt: 3, relu: 4, sigmoid: 5, tanh: 6, abs: 7, square: 8,
  powScalar: 9, affine: 10, fill: 11, reciprocal: 12, clamp: 13, copy: 99,
  sign: 14, clampMask: 15,
} as const;
export type UnaryOp = keyof typeof UNARY_OPS;

export interface UnaryAttrs {
  op: UnaryOp;
  alpha: number;
  beta: number;
}

declare module '../autograd/tape.js' {
  interface OpRegistry {
    unary: UnaryAttrs;
    binary: { op: BinaryOp };
    broadcastTo: { shape: number[] };
  }
}

/** Runs one unary kernel without recording: the building block of the public ops below. */
export function unaryRaw(op: UnaryOp, x: Tensor, alpha = 0, beta = 0): Tensor {
  const storage = floatStorage(op, x);
  const y = Tensor.empty(x.shape, storage, op);
  const { entry, perInvocation, constants } = flatEntry(x.size);
  launchFlat(op, {
    shader: 'unary',
    entry,
    storage,
    constants: { OP: UNARY_OPS[op], WG, ...constants },
    uniforms: ({ count }) => new Uniforms().u32(count).f32(alpha).f32(beta),
    inputs: [x],
    outputs: [y],
    elements: x.size,
    workgroupSize: WG,
    perInvocation,
    flopsPerElement: 1,
  });
  return y;
}

/** Which unary ops save their output (o) or their input (i) for backward. */
const SAVES: Partial<Record<UnaryOp, 'i' | 'o'>> = {
  exp: 'o', sqrt: 'o', relu: 'o', sigmoid: 'o', tanh: 'o', reciprocal: 'o',
  log: 'i', abs: 'i', square: 'i', powScalar: 'i', clamp: 'i',
};

function unary(op: UnaryOp, x: Tensor, alpha = 0, beta = 0): Tensor {
  const y = unaryRaw(op, x, alpha, beta);
  const save = SAVES[op];
  return record('unary', { op, alpha, beta }, [x], y, save === 'o' ? [y] : save === 'i' ? [x] : []);
}

export const neg = (x: Tensor) => unary('neg', x);
export const exp = (x: Tensor) => unary('exp', x);
export const log = (x: Tensor) => unary('log', x);
export const sqrt = (x: Tensor) => unary('sqrt', x);
export const relu = (x: Tensor) => unary('relu', x);
export const sigmoid = (x: Tensor) => unary('sigmoid', x);
export const tanh = (x: Tensor) => unary('tanh', x);
export const abs = (x: Tensor) => unary('abs', x);
export const square = (x: Tensor) => unary('square', x);
export const sign = (x: Tensor) => unary('sign', x);
export const reciprocal = (x: Tensor) => unary('reciprocal', x);
/** x ^ e for a scalar exponent e. */
export const powScalar = (x: Tensor, e: number) => unary('powScalar', x, e);
/** x * scale + shift. */
export const affine = (x: Tensor, scale: number, shift: number) => unary('affine', x, scale, shift);
export const addScalar = (x: Tensor, s: number) => unary('affine', x, 1, s);
export const mulScalar = (x: Tensor, s: number) => unary('affine', x, s, 0);
export const subScalar = (x: Tensor, s: number) => unary('affine', x, 1, -s);
export const divScalar = (x: Tensor, s: number) => unary('affine', x, 1 / s, 0);
export const clamp = (x: Tensor, lo: number, hi: number) => unary('clamp', x, lo, hi);
/** A copy with its own storage. */
export const copy = (x: Tensor) => unary('copy', x);

/** A new f32 tensor filled with `value` (not differentiable: it has no tensor input). */
export function full(shape: Shape, value: number): Tensor {
  const y = Tensor.empty(shape, 'f32', 'full');
  const { entry, perInvocation, constants } = flatEntry(y.size);
  launchFlat('full', {
    shader: 'unary',
    entry,
    perInvocation,
    constants: { OP: UNARY_OPS.fill, WG, ...constants },
    uniforms: ({ count }) => new Uniforms().u32(count).f32(value).f32(0),
    // The fill kernel never uses its input's value; any small buffer satisfies the binding.
    inputs: [runtime().emptyBuffer],
    outputs: [y],
    elements: y.size,
    workgroupSize: WG,
  });
  return y;
}

export const zeros = (shape: Shape) => full(shape, 0);
export const ones = (shape: Shape) => full(shape, 1);
export const zerosLike = (t: Tensor) => full(t.shape, 0);
export const onesLike = (t: Tensor) => full(t.shape, 1);

export const unaryBackward: BackwardRule<'unary'> = ({ attrs, saved }, g) => {
  const s = saved[0]!;
  const { op, alpha, beta } = attrs;
  switch (op) {
    case 'neg': return [neg(g)];
    case 'exp': return [mul(g, s)];
    case 'log': return [div(g, s)];
    case 'sqrt': return [div(mulScalar(g, 0.5), s)];
    case 'relu': return [binaryRaw('reluGrad', g, s)];
    case 'sigmoid': return [binaryRaw('sigmoidGrad', g, s)];
    case 'tanh': return [binaryRaw('tanhGrad', g, s)];
    case 'abs': return [mul(g, sign(s))];
    case 'square': return [mul(g, mulScalar(s, 2))];
    case 'powScalar': return [mul(g, mulScalar(powScalar(s, alpha - 1), alpha))];
    case 'affine': return [mulScalar(g, alpha)];
    case 'reciprocal': return [neg(mul(g, square(s)))];
    case 'clamp': return [mul(g, unaryRaw('clampMask', s, alpha, beta))];
    case 'copy': return [g];
    case 'sign': case 'fill': case 'clampMask': return [zerosLike(g)];
  }
};

// ---------------------------------------------------------------------------------------------------------
// Binary

/** Op codes of shaders/binary.wgsl. */
export const BINARY_OPS = {
  add: 0, sub: 1, mul: 2, div: 3, pow: 4, maximum: 5, minimum: 6,
  reluGrad: 7, sigmoidGrad: 8, tanhGrad: 9, equal: 10, greater: 11, first: 12,
} as const;
export type BinaryOp = keyof typeof BINARY_OPS;

/** Runs one binary kernel with broadcasting, without recording. */
export function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  return binaryRawShaped(op, a, b, broadcastShapes(op, a.shape, b.shape));
}

function binaryRawShaped(op: BinaryOp, a: Tensor, b: Tensor, shape: Shape): Tensor {
  const storage = floatStorage(op, a, b);
  if (shape.length > MAX_RANK) throw new ShapeError(`${op}: rank ${shape.length} exceeds the maximum of ${MAX_RANK}.`);
  const out = Tensor.empty(shape, storage, op);
  const plain = sameShape(a.shape, shape) && sameShape(b.shape, shape);
  if (plain) {
    // Without broadcasting, element i of a, b and out belong together: a flat kernel, split if large.
    const { entry, perInvocation, constants } = flatEntry(out.size);
    launchFlat(op, {
      shader: 'binary',
      entry,
      perInvocation,
      storage,
      constants: { OP: BINARY_OPS[op], BROADCAST: false, WG, ...constants },
      uniforms: ({ count }) => new Uniforms().u32(count).u32(0).u32(0).u32(0).dims8([]).dims8([], 0).dims8([], 0),
      inputs: [a, b],
      outputs: [out],
      elements: out.size,
      workgroupSize: WG,
      flopsPerElement: 1,
    });
    return out;
  }
  // Broadcasting reads the inputs at other indices than the output's, so every tensor is bound whole (and
  // `launch` throws a LimitError for one over the binding limit).
  launch(op, {
    shader: 'binary',
    storage,
    constants: { OP: BINARY_OPS[op], BROADCAST: true, WG },
    uniforms: new Uniforms()
      .u32(out.size).u32(shape.length).u32(0).u32(0)
      .dims8(shape).dims8(broadcastStrides(a.shape, shape), 0).dims8(broadcastStrides(b.shape, shape), 0),
    inputs: [a, b],
    outputs: [out],
    workgroups: grid1d(out.size, WG),
    flops: out.size,
  });
  return out;
}

/**
 * act(y + residual), not recorded, consuming y: the epilogue of a kernel that cannot add a residual itself
 * (conv2d v1/v2, matmul v1/v2), run as separate passes.
 */
export function addResidualRaw(y: Tensor, residual: Tensor, activation: 'none' | 'relu'): Tensor {
  const summed = binaryRaw('add', y, residual);
  y.dispose();
  if (activation === 'none') return summed;
  const activated = unaryRaw('relu', summed);
  summed.dispose();
  return activated;
}

const SAVES_INPUTS: Partial<Record<BinaryOp, boolean>> = { mul: true, div: true, pow: true, maximum: true, minimum: true };

function binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const out = binaryRaw(op, a, b);
  return record('binary', { op }, [a, b], out, SAVES_INPUTS[op] ? [a, b] : []);
}

export const add = (a: Tensor, b: Tensor) => binary('add', a, b);
export const sub = (a: Tensor, b: Tensor) => binary('sub', a, b);
export const mul = (a: Tensor, b: Tensor) => binary('mul', a, b);
export const div = (a: Tensor, b: Tensor) => binary('div', a, b);
/** a ^ b elementwise; defined for a > 0. */
export const pow = (a: Tensor, b: Tensor) => binary('pow', a, b);
export const maximum = (a: Tensor, b: Tensor) => binary('maximum', a, b);
export const minimum = (a: Tensor, b: Tensor) => binary('minimum', a, b);
/** 1 where a == b, else 0 (no gradient). */
export const equal = (a: Tensor, b: Tensor) => binary('equal', a, b);
/** 1 where a > b, else 0 (no gradient). */
export const greater = (a: Tensor, b: Tensor) => binary('greater', a, b);

export const binaryBackward: BackwardRule<'binary'> = ({ attrs, saved, inputs, needsGrad }, g) => {
  const [sa, sb] = inputs.map((m) => m.shape) as [Shape, Shape];
  const [a, b] = saved as [Tensor, Tensor];
  const to = (t: Tensor, i: 0 | 1) => (needsGrad[i] ? sumTo(t, i === 0 ? sa : sb) : null);
  switch (attrs.op) {
    case 'add': return [to(g, 0), to(g, 1)];
    case 'sub': return [to(g, 0), needsGrad[1] ? to(neg(g), 1) : null];
    case 'mul': return [needsGrad[0] ? to(mul(g, b), 0) : null, needsGrad[1] ? to(mul(g, a), 1) : null];
    case 'div': return [
      needsGrad[0] ? to(div(g, b), 0) : null,
      needsGrad[1] ? to(neg(div(mul(g, a), square(b))), 1) : null,
    ];
    case 'pow': {
      const y = binaryRaw('pow', a, b);
      return [
        needsGrad[0] ? to(mul(g, mul(b, div(y, a))), 0) : null,
        needsGrad[1] ? to(mul(g, mul(y, log(a))), 1) : null,
      ];
    }
    case 'maximum': case 'minimum': {
      // The larger (smaller) input takes the gradient; on a tie, the first input takes it all.
      const bWins = attrs.op === 'maximum' ? binaryRaw('greater', b, a) : binaryRaw('greater', a, b);
      return [needsGrad[0] ? to(mul(g, affine(bWins, -1, 1)), 0) : null, needsGrad[1] ? to(mul(g, bWins), 1) : null];
    }
    case 'reluGrad': case 'sigmoidGrad': case 'tanhGrad': case 'equal': case 'greater': case 'first':
      // These are gradients or comparisons themselves; Graft does not differentiate them.
      return [needsGrad[0] ? zeros(sa) : null, needsGrad[1] ? zeros(sb) : null];
  }
};

/** `x` repeated along broadcast dimensions to `shape` (NumPy rules). Its gradient sums back. */
export function broadcastTo(x: Tensor, shape: Shape): Tensor {
  const target = broadcastShapes('broadcastTo', x.shape, shape);
  if (!sameShape(target, shape)) {
    throw new ShapeError(`broadcastTo: cannot broadcast ${shapeStr(x.shape)} to ${shapeStr(shape)}.`);
  }
  if (sameShape(x.shape, shape)) return x.view(shape);
  // The binary kernel with op `first` reads x through broadcast strides; the second operand is unused.
  const out = binaryRawShaped('first', x, x, shape);
  return record('broadcastTo', { shape: [...shape] }, [x], out);
}

export const broadcastToBackward: BackwardRule<'broadcastTo'> = ({ inputs }, g) => [sumTo(g, inputs[0]!.shape)];

export function assertSameShape(op: string, a: Tensor, b: Tensor): void {
  if (!sameShape(a.shape, b.shape)) throw new ShapeError(`${op}: shapes ${shapeStr(a.shape)} and ${shapeStr(b.shape)} differ.`);
}

// ---------------------------------------------------------------------------------------------------------
// Plain-TypeScript references (f64), used by the tests.

export const unaryReference: Record<UnaryOp, (v: number, alpha: number, beta: number) => number> = {
  neg: (v) => -v,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  relu: (v) => Math.max(v, 0),
  sigmoid: (v) => 1 / (1 + Math.exp(-v)),
  tanh: Math.tanh,
  abs: Math.abs,
  square: (v) => v * v,
  powScalar: (v, a) => Math.pow(v, a),
  affine: (v, a, b) => v * a + b,
  fill: (_v, a) => a,
  reciprocal: (v) => 1 / v,
  clamp: (v, a, b) => Math.min(Math.max(v, a), b),
  copy: (v) => v,
  sign: Math.sign,
  clampMask: (v, a, b) => (v >= a && v <= b ? 1 : 0),
};

export const binaryReference: Record<BinaryOp, (x: number, y: number) => number> = {
  add: (x, y) => x + y,
  sub: (x, y) => x - y,
  mul: (x, y) => x * y,
  div: (x, y) => x / y,
  pow: Math.pow,
  maximum: Math.max,
  minimum: Math.min,
  reluGrad: (x, y) => (y > 0 ? x : 0),
  sigmoidGrad: (x, y) => x * y * (1 - y),
  tanhGrad: (x, y) => x * (1 - y * y),
  equal: (x, y) => (x === y ? 1 : 0),
  greater: (x, y) => (x > y ? 1 : 0),
  first: (x) => x,
};

/** Reference broadcasting binary op on flat row-major arrays. */
export function binaryRef(op: BinaryOp, a: ArrayLike<number>, as: Shape, b: ArrayLike<number>, bs: Shape): { data: Float64Array; shape: number[] } {
  const shape = broadcastShapes(op, as, bs);
  const sa = broadcastStrides(as, shape);
  const sb = broadcastStrides(bs, shape);
  const n = shape.reduce((x, y) => x * y, 1);
  const out = new Float64Array(n);
  const f = binaryReference[op];
  for (let i = 0; i < n; i++) {
    let rest = i, ia = 0, ib = 0;
    for (let d = shape.length - 1; d >= 0; d--) {
      const c = rest % shape[d]!;
      rest = Math.floor(rest / shape[d]!);
      ia += c * sa[d]!;
      ib += c * sb[d]!;
    }
    out[i] = f(a[ia]!, b[ib]!);
  }
  return { data: out, shape };
}
