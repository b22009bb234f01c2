/**
 * The kernel explorer's cases beyond matmul and conv2d (see kernel-cases.ts): elementwise ops, reductions,
 * softmax, data movement, casts, random numbers, dropout and pooling. Backward passes and batch norm are in
 * kernel-cases-backward.ts; losses, optimizer updates and the non-finite check in kernel-cases-train.ts.
 *
 * Each case runs the public op (or, for a backward kernel, the unrecorded kernel that the op's backward
 * rule runs) and compares it with the f64 reference of its op family in src/ops.
 */
import { tensor } from '../tensor/create.js';
import { cast, roundToF16Ref } from '../ops/cast.js';
import { dropout, dropoutMaskRef, dropoutRef } from '../ops/dropout.js';
import {
  type BinaryOp, abs, add, binaryRef, div, exp, log, maximum, minimum, mul, neg, pow, reciprocal, relu, sigmoid, sign, sqrt, square, sub, tanh,
  unaryReference,
} from '../ops/elementwise.js';
import { zeroPadding2d, zeroPadding2dRef } from '../ops/padding.js';
import {
  type PoolPadding, avgPool2d, avgPool2dBackwardRaw, avgPool2dBackwardRef, avgPool2dRef, maxPool2d, maxPool2dBackwardRaw, maxPool2dBackwardRef,
  maxPool2dRaw, maxPool2dRef, poolGeometry,
} from '../ops/pooling.js';
import {
  randomBits, randomBitsRef, randomNormal, randomNormalRef, randomUniform, randomUniformRef, truncatedNormal, truncatedNormalRef,
} from '../ops/random.js';
import { type ReduceKind, max, mean, reduceRef, sum } from '../ops/reduce.js';
import { concat, concatRef, slice, sliceRef, transpose, transposeRaw, transposeRef } from '../ops/shape.js';
import { logSoftmax, softmax, softmaxRef } from '../ops/softmax.js';
import { type KernelCase, randomIn, randomValues } from './kernel-case.js';
import { BACKWARD_CASES } from './kernel-cases-backward.js';
import { TRAIN_CASES } from './kernel-cases-train.js';

const SIZE = { name: 'size', default: 4096, min: 1, max: 1 << 24, help: 'number of elements' } as const;

/** log, sqrt and reciprocal get inputs in [0.1, 4), the others in [−4, 4). */
const UNARY = { relu, exp, log, sqrt, sigmoid, tanh, abs, square, neg, reciprocal, sign } as const;
const POSITIVE_ONLY = ['log', 'sqrt', 'reciprocal'];

const unaryCase: KernelCase = {
  id: 'unary',
  title: 'unary: y = f(x), elementwise',
  shaders: ['unary'],
  params: [SIZE, { name: 'op', default: 'relu', choices: Object.keys(UNARY) }],
  prepare(p) {
    const n = p.size as number, op = p.op as keyof typeof UNARY;
    const x = POSITIVE_ONLY.includes(op) ? randomIn(n, 11, 0.1, 4) : randomIn(n, 11, -4, 4);
    const tx = tensor(x, [n]);
    return {
      execute: () => UNARY[op](tx),
      reference: () => Float64Array.from(x, (v) => unaryReference[op](v, 0, 0)),
      tolerance: 1e-5,
      flops: n,
      describe: `${op}(x), x [${n}]`,
      dispose: () => tx.dispose(),
    };
  },
};

const BINARY = { add, sub, mul, div, pow, maximum, minimum } as const;
/** Shapes of a and b for each broadcasting pattern of an [M, N] result. */
const BROADCASTS: Record<string, (M: number, N: number) => [number[], number[]]> = {
  none: (M, N) => [[M, N], [M, N]],
  row: (M, N) => [[M, N], [N]],
  column: (M, N) => [[M, N], [M, 1]],
  outer: (M, N) => [[M, 1], [1, N]],
};

const binaryCase: KernelCase = {
  id: 'binary',
  title: 'binary: c = a ∘ b, with broadcasting',
  shaders: ['binary'],
  params: [
    { name: 'M', default: 256, min: 1, max: 4096, help: 'rows of the result' },
    { name: 'N', default: 256, min: 1, max: 4096, help: 'columns of the result' },
    { name: 'op', default: 'add', choices: Object.keys(BINARY) },
    { name: 'broadcast', default: 'row', choices: Object.keys(BROADCASTS), help: 'none: [M×N] ∘ [M×N]; row: ∘ [N]; column: ∘ [M×1]; outer: [M×1] ∘ [1×N]' },
  ],
  prepare(p) {
    const op = p.op as BinaryOp & keyof typeof BINARY;
    const [aShape, bShape] = BROADCASTS[p.broadcast as string]!(p.M as number, p.N as number);
    const size = (s: number[]) => s.reduce((x, y) => x * y, 1);
    // pow needs a > 0, div keeps b away from 0.
    const a = op === 'pow' ? randomIn(size(aShape), 12, 0.1, 2) : randomIn(size(aShape), 12, -2, 2);
    const b = op === 'div' ? randomIn(size(bShape), 13, 0.5, 2) : randomIn(size(bShape), 13, -2, 2);
    const ta = tensor(a, aShape), tb = tensor(b, bShape);
    return {
      execute: () => BINARY[op](ta, tb),
      reference: () => binaryRef(op, a, aShape, b, bShape).data,
      tolerance: 1e-5,
      flops: (p.M as number) * (p.N as number),
      describe: `${op}: [${aShape.join('×')}] ∘ [${bShape.join('×')}]`,
      dispose: () => (ta.dispose(), tb.dispose()),
    };
  },
};

const REDUCE = { sum, mean, max } as const;

const reduceCase: KernelCase = {
  id: 'reduce',
  title: 'reduce: sum, mean or max over axes',
  shaders: ['reduce'],
  params: [
    { name: 'd0', default: 64, min: 1, max: 4096 },
    { name: 'd1', default: 64, min: 1, max: 4096 },
    { name: 'd2', default: 64, min: 1, max: 4096 },
    { name: 'kind', default: 'sum', choices: Object.keys(REDUCE) },
    { name: 'axes', default: '2', choices: ['2', '1', '0', '1,2', '0,1', '0,2', '0,1,2'], help: 'the axes of x [d0×d1×d2] reduced' },
  ],
  prepare(p) {
    const shape = [p.d0 as number, p.d1 as number, p.d2 as number];
    const kind = p.kind as ReduceKind, axes = (p.axes as string).split(',').map(Number);
    const x = randomValues(shape[0]! * shape[1]! * shape[2]!, 14);
    const tx = tensor(x, shape);
    const reduced = axes.reduce((n, a) => n * shape[a]!, 1);
    return {
      execute: () => REDUCE[kind](tx, axes),
      reference: () => reduceRef(kind, x, shape, axes),
      // An f32 sum's rounding error grows with the number of terms (about as its square root, in practice).
      tolerance: kind === 'sum' ? 4e-6 * Math.sqrt(reduced) : 1e-6,
      flops: x.length,
      describe: `${kind} of x [${shape.join('×')}] over axes ${axes.join(', ')}`,
      dispose: () => tx.dispose(),
    };
  },
};

const softmaxCase: KernelCase = {
  id: 'softmax',
  title: 'softmax / log-softmax along an axis',
  shaders: ['softmax'],
  params: [
    { name: 'outer', default: 64, min: 1, max: 65536, help: 'x is [outer × n × inner]' },
    { name: 'n', default: 1000, min: 1, max: 1 << 20, help: 'length of the softmax axis' },
    { name: 'inner', default: 1, min: 1, max: 4096, help: 'elements after the softmax axis (its stride)' },
    { name: 'log', default: 'no', choices: ['no', 'yes'], help: 'log-softmax' },
  ],
  prepare(p) {
    const shape = [p.outer as number, p.n as number, p.inner as number];
    const isLog = p.log === 'yes';
    const x = randomIn(shape[0]! * shape[1]! * shape[2]!, 15, -4, 4);
    const tx = tensor(x, shape);
    return {
      execute: () => (isLog ? logSoftmax(tx, 1) : softmax(tx, 1)),
      reference: () => softmaxRef(x, shape, 1, isLog),
      tolerance: 1e-5,
      flops: 5 * x.length,
      describe: `${isLog ? 'log-softmax' : 'softmax'} of x [${shape.join('×')}] along axis 1`,
      dispose: () => tx.dispose(),
    };
  },
};

const transposeCase: KernelCase = {
  id: 'transpose',
  title: 'transpose: permute the dims of a rank-3 tensor',
  shaders: ['shape', 'transpose'],
  params: [
    { name: 'd0', default: 32, min: 1, max: 4096 },
    { name: 'd1', default: 128, min: 1, max: 4096 },
    { name: 'd2', default: 96, min: 1, max: 4096 },
    { name: 'perm', default: '0,2,1', choices: ['0,2,1', '1,0,2', '2,1,0', '1,2,0', '2,0,1'], help: 'out.shape[d] = x.shape[perm[d]]' },
  ],
  // v1: the strided gather of shape.wgsl; v2: the tiled kernel of transpose.wgsl (batched 2-D transposes only).
  versions: ['v1', 'v2'],
  prepare(p, version) {
    const shape = [p.d0 as number, p.d1 as number, p.d2 as number];
    const perm = (p.perm as string).split(',').map(Number);
    const x = randomValues(shape[0]! * shape[1]! * shape[2]!, 18);
    const tx = tensor(x, shape);
    return {
      execute: () => (version ? transposeRaw(tx, perm, version === 'v1' ? 1 : 2) : transpose(tx, perm)),
      reference: () => transposeRef(x, shape, perm),
      tolerance: 0,
      flops: 0,
      describe: `x [${shape.join('×')}] → [${perm.map((d) => shape[d]).join('×')}]`,
      dispose: () => tx.dispose(),
    };
  },
};

const shapeCase: KernelCase = {
  id: 'shape',
  title: 'slice, zero padding and concat of NHWC images',
  shaders: ['shape'],
  params: [
    { name: 'batch', default: 2, min: 1, max: 64 },
    { name: 'height', default: 32, min: 3, max: 1024 },
    { name: 'width', default: 32, min: 3, max: 1024 },
    { name: 'channels', default: 16, min: 1, max: 1024 },
    { name: 'op', default: 'slice', choices: ['slice', 'pad', 'concat'], help: 'slice off a border, pad a border of zeros (ZeroPadding2D), or concat two images along channels' },
    { name: 'border', default: 1, min: 1, max: 64, help: 'rows and columns removed (slice) or added (pad) on each side' },
  ],
  prepare(p) {
    const [n, h, w, c, b] = ['batch', 'height', 'width', 'channels', 'border'].map((k) => p[k] as number) as [number, number, number, number, number];
    const shape = [n, h, w, c];
    const x = randomValues(n * h * w * c, 19), x2 = randomValues(x.length, 20);
    const tx = tensor(x, shape), tx2 = tensor(x2, shape);
    const begin = [0, b, b, 0], size = [n, h - 2 * b, w - 2 * b, c];
    const run = {
      slice: () => slice(tx, begin, size),
      pad: () => zeroPadding2d(tx, b),
      concat: () => concat([tx, tx2], 3),
    }[p.op as 'slice' | 'pad' | 'concat'];
    const reference = {
      slice: () => sliceRef(x, shape, begin, size),
      pad: () => zeroPadding2dRef(x, shape, { top: b, bottom: b, left: b, right: b }),
      concat: () => concatRef([{ data: x, shape }, { data: x2, shape }], 3).data,
    }[p.op as 'slice' | 'pad' | 'concat'];
    return {
      execute: run,
      reference,
      tolerance: 0,
      flops: 0,
      describe: `${p.op} of x [${shape.join('×')}]${p.op === 'concat' ? ' twice along channels' : `, border ${b}`}`,
      dispose: () => (tx.dispose(), tx2.dispose()),
    };
  },
};

const castCase: KernelCase = {
  id: 'cast',
  title: 'cast: f32 → f16 → f32 round trip',
  shaders: ['cast'],
  params: [SIZE, { name: 'scale', default: 1000, min: 1e-8, max: 65000, help: 'inputs are uniform in ±scale (f16 overflows at 65520)' }],
  prepare(p) {
    const n = p.size as number, scale = p.scale as number;
    const x = randomIn(n, 21, -scale, scale);
    const tx = tensor(x, [n]);
    return {
      execute: () => {
        const half = cast(tx, 'f16');
        const back = cast(half, 'f32');
        half.dispose();
        return back;
      },
      reference: () => roundToF16Ref(x),
      tolerance: 0,
      flops: 0,
      describe: `x [${n}] in ±${scale}, rounded to f16 (nearest even) and back`,
      dispose: () => tx.dispose(),
    };
  },
};

const RANDOM = {
  uniform: { run: randomUniform, ref: randomUniformRef, tolerance: 0 },
  // The GPU's log, sin and cos are not correctly rounded: a few f32 ulps (see test/ops/random.test.ts).
  normal: { run: randomNormal, ref: randomNormalRef, tolerance: 4e-6 },
  truncatedNormal: { run: truncatedNormal, ref: truncatedNormalRef, tolerance: 4e-6 },
  bits: { run: (shape: number[], o: { seed: number }) => randomBits(shape, o.seed), ref: (n: number, o: { seed: number }) => randomBitsRef(n, o.seed), tolerance: 0 },
} as const;

const randomCase: KernelCase = {
  id: 'random',
  title: 'random: counter-based Philox-4x32-10',
  shaders: ['random'],
  params: [
    SIZE,
    { name: 'distribution', default: 'uniform', choices: Object.keys(RANDOM), help: 'uniform in [0, 1), standard normal, normal truncated at ±2, or raw u32 words' },
    { name: 'seed', default: 42, min: 0, max: Number.MAX_SAFE_INTEGER },
  ],
  prepare(p) {
    const n = p.size as number, seed = p.seed as number;
    const dist = RANDOM[p.distribution as keyof typeof RANDOM];
    return {
      execute: () => dist.run([n], { seed }),
      // Element i is a pure function of (seed, i), so the TypeScript Philox reproduces every value.
      reference: () => dist.ref(n, { seed }),
      tolerance: dist.tolerance,
      flops: 40 * n,
      describe: `${p.distribution} [${n}], seed ${seed}`,
      dispose: () => {},
    };
  },
};

const dropoutCase: KernelCase = {
  id: 'dropout',
  title: 'dropout (training): zero with probability rate, scale the rest by 1/(1 − rate)',
  shaders: ['dropout'],
  params: [SIZE, { name: 'rate', default: 0.5, min: 0.01, max: 0.99 }, { name: 'seed', default: 7, min: 0, max: Number.MAX_SAFE_INTEGER }],
  prepare(p) {
    const n = p.size as number, rate = p.rate as number, seed = p.seed as number;
    const x = randomValues(n, 22);
    const tx = tensor(x, [n]);
    // The mask is Philox's stream 1 under the seed, so the reference knows which elements survive.
    const kept = dropoutMaskRef(n, rate, seed).reduce((a, m) => a + m, 0);
    return {
      execute: () => dropout(tx, { rate, seed, training: true }),
      reference: () => dropoutRef(x, rate, seed),
      tolerance: 1e-6,
      flops: 20 * n,
      describe: `x [${n}], rate ${rate}, seed ${seed}: ${kept} kept (${((100 * kept) / n).toFixed(1)} %)`,
      dispose: () => tx.dispose(),
    };
  },
};

const poolCase: KernelCase = {
  id: 'pool2d',
  title: 'max / average pooling of NHWC images, forward or backward',
  shaders: ['pooling'],
  params: [
    { name: 'batch', default: 2, min: 1, max: 64 },
    { name: 'height', default: 32, min: 1, max: 1024 },
    { name: 'width', default: 32, min: 1, max: 1024 },
    { name: 'channels', default: 16, min: 1, max: 2048 },
    { name: 'op', default: 'max', choices: ['max', 'avg'] },
    { name: 'pass', default: 'forward', choices: ['forward', 'backward'], help: 'backward: dx from dL/dy (max: through the forward\'s arg-max)' },
    { name: 'poolSize', default: 3, min: 1, max: 16 },
    { name: 'stride', default: 2, min: 1, max: 16 },
    { name: 'padding', default: 'same', choices: ['valid', 'same'] },
  ],
  prepare(p) {
    const shape = ['batch', 'height', 'width', 'channels'].map((k) => p[k] as number);
    const options = { poolSize: p.poolSize as number, strides: p.stride as number, padding: p.padding as PoolPadding };
    const geo = poolGeometry('pool2d', shape, options);
    const outShape = [geo.batch, geo.outHeight, geo.outWidth, geo.channels];
    const x = randomValues(shape.reduce((a, b) => a * b, 1), 23);
    const g = randomValues(outShape.reduce((a, b) => a * b, 1), 24);
    const tx = tensor(x, shape), tg = tensor(g, outShape);
    const isMax = p.op === 'max';
    const forward = () => (isMax ? maxPool2d(tx, options) : avgPool2d(tx, options));
    const backward = () => {
      if (!isMax) return avgPool2dBackwardRaw(tg, geo);
      const { y, argmax } = maxPool2dRaw(tx, geo, true);
      const dx = maxPool2dBackwardRaw(tg, argmax!, geo);
      y.dispose();
      argmax!.dispose();
      return dx;
    };
    const reference = () => {
      if (p.pass === 'forward') return isMax ? maxPool2dRef(x, geo).data : avgPool2dRef(x, geo);
      return isMax ? maxPool2dBackwardRef(g, maxPool2dRef(x, geo).source, geo) : avgPool2dBackwardRef(g, geo);
    };
    return {
      execute: p.pass === 'forward' ? forward : backward,
      reference,
      tolerance: 1e-6,
      flops: g.length * geo.poolHeight * geo.poolWidth,
      describe: `${p.op} ${p.pass}: x [${shape.join('×')}] → [${outShape.join('×')}], ${geo.poolHeight}×${geo.poolWidth} / ${geo.strideHeight}, ${options.padding}`,
      dispose: () => (tx.dispose(), tg.dispose()),
    };
  },
};

export const MORE_CASES: readonly KernelCase[] = [
  unaryCase, binaryCase, reduceCase, softmaxCase, transposeCase, shapeCase, castCase, randomCase, dropoutCase, poolCase, ...BACKWARD_CASES, ...TRAIN_CASES,
];
