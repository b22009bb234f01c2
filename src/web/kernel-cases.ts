/**
 * The kernel explorer's cases: every shader in shaders/ is exercised by at least one (the test
 * test/web/kernel-cases.test.ts checks that, and that each case's GPU output matches its reference).
 * A case runs through the public op (so it dispatches what a model would), with a kernel version pinned
 * where the op has numbered versions.
 */
import { tensor } from '../tensor/create.js';
import { conv2d, conv2dGeometry, conv2dRef, type ConvPadding } from '../ops/conv.js';
import { type ConvVersion, CONV_VERSIONS, convFlops, withConvVersion } from '../ops/conv-kernels.js';
import { type MatmulVersion, MATMUL_VERSIONS, matmul, matmulRef, withMatmulVersion } from '../ops/matmul.js';
import { type KernelCase, type Params, type ParamSpec, randomValues, TILE_PARAMS, withTiles } from './kernel-case.js';
import { cast, roundToF16Ref } from '../ops/cast.js';
import { dense } from '../ops/matmul.js';
import type { Tensor } from '../tensor/tensor.js';
import { MORE_CASES } from './kernel-cases-more.js';

/**
 * The storage type of the GEMM kernels' arrays (src/gpu/pipeline-cache.ts): f16 halves the bytes moved, the
 * sums stay f32. Only the v3 kernels have it (v1 and v2 refuse), and only with the device feature shader-f16.
 */
const STORAGE: ParamSpec = { name: 'storage', default: 'f32', choices: ['f32', 'f16'], help: 'f16: inputs, weights and output stored as f16, summed in f32 (v3 only; needs shader-f16)' };

/** For f16 storage: the inputs rounded to f16 (the reference then sees exactly what the GPU does), and an upload. */
function inputs(p: Params, values: Float32Array): { values: Float32Array; upload: (shape: number[]) => Tensor } {
  if (p.storage !== 'f16') return { values, upload: (shape) => tensor(values, shape) };
  const rounded = Float32Array.from(roundToF16Ref(values));
  const upload = (shape: number[]) => {
    const full = tensor(rounded, shape);
    const half = cast(full, 'f16');
    full.dispose();
    return half;
  };
  return { values: rounded, upload };
}

/** One f16 ulp (the output's rounding) on top of the f32 tolerance. */
const storageTolerance = (p: Params, f32: number) => (p.storage === 'f16' ? f32 + 2 ** -10 : f32);

const matmulCase: KernelCase = {
  id: 'matmul',
  title: 'matmul: C = A · B',
  shaders: ['matmul_v1', 'matmul_v2', 'matmul_v3'],
  params: [
    { name: 'M', default: 256, min: 1, max: 4096, help: 'rows of A and C' },
    { name: 'K', default: 256, min: 1, max: 4096, help: 'columns of A, rows of B' },
    { name: 'N', default: 256, min: 1, max: 4096, help: 'columns of B and C' },
    { name: 'transposeB', default: 'no', choices: ['no', 'yes'], help: 'B is stored [N, K] (as a dense layer\'s backward uses it)' },
    STORAGE,
    ...TILE_PARAMS,
  ],
  versions: MATMUL_VERSIONS,
  prepare(p, version) {
    const [M, K, N] = [p.M as number, p.K as number, p.N as number];
    const transposeB = p.transposeB === 'yes';
    const bShape = transposeB ? [N, K] : [K, N];
    const a = inputs(p, randomValues(M * K, 1)), b = inputs(p, randomValues(K * N, 2));
    const ta = a.upload([M, K]), tb = b.upload(bShape);
    // f16 runs through dense (matmul's public op is f32 only), which has no transposed B.
    const run = () => (p.storage === 'f16' && !transposeB ? dense(ta, tb) : matmul(ta, tb, { transposeB }));
    return {
      execute: () => withTiles(p, () => (version ? withMatmulVersion(version as MatmulVersion, run) : run())),
      reference: () => matmulRef(a.values, [M, K], b.values, bShape, { transposeB }).data,
      tolerance: storageTolerance(p, 1e-4 * Math.sqrt(K)),
      flops: 2 * M * N * K,
      describe: `[${M}×${K}] · [${bShape.join('×')}]${transposeB ? 'ᵀ' : ''}`,
      dispose: () => (ta.dispose(), tb.dispose()),
    };
  },
};

const conv2dCase: KernelCase = {
  id: 'conv2d',
  title: 'conv2d: y = relu?(conv(x, w) + b), NHWC × HWIO',
  // A 1×1, stride-1, unpadded convolution runs as a dense layer (matmul v3, or v2 where v3 cannot run); a 3×3
  // stride-1 one with channels in multiples of 4 as Winograd transforms around a batched matmul.
  shaders: ['conv2d_v1', 'conv2d_v2', 'conv2d_v3', 'conv2d_winograd', 'matmul_v2', 'matmul_v3'],
  params: [
    { name: 'batch', default: 1, min: 1, max: 64 },
    { name: 'height', default: 28, min: 1, max: 512 },
    { name: 'width', default: 28, min: 1, max: 512 },
    { name: 'inChannels', default: 32, min: 1, max: 1024 },
    { name: 'outChannels', default: 64, min: 1, max: 1024 },
    { name: 'kernel', default: 3, min: 1, max: 11, help: 'square kernel size' },
    { name: 'stride', default: 1, choices: [1, 2] },
    { name: 'padding', default: 'same', choices: ['same', 'valid'] },
    STORAGE,
    ...TILE_PARAMS,
  ],
  versions: CONV_VERSIONS.filter((v) => v !== 'col2im'), // col2im computes dX only
  prepare(p, version) {
    const [n, h, w, c, f, k] = ['batch', 'height', 'width', 'inChannels', 'outChannels', 'kernel'].map((name) => p[name] as number) as [number, number, number, number, number, number];
    const options = { strides: p.stride as number, padding: p.padding as ConvPadding };
    const x = inputs(p, randomValues(n * h * w * c, 3)), wt = inputs(p, randomValues(k * k * c * f, 4)), bias = inputs(p, randomValues(f, 5));
    const tx = x.upload([n, h, w, c]), tw = wt.upload([k, k, c, f]), tb = bias.upload([f]);
    const run = () => conv2d(tx, tw, { ...options, bias: tb, activation: 'relu' });
    return {
      execute: () => withTiles(p, () => (version ? withConvVersion(version as ConvVersion, run) : run())),
      reference: () => conv2dRef(x.values, [n, h, w, c], wt.values, [k, k, c, f], { ...options, bias: bias.values, activation: 'relu' }).data,
      tolerance: storageTolerance(p, 1e-4 * Math.sqrt(k * k * c)),
      flops: convFlops(conv2dGeometry('conv2d', [n, h, w, c], [k, k, c, f], options)),
      describe: `x [${n}×${h}×${w}×${c}], w [${k}×${k}×${c}×${f}], stride ${options.strides}, ${options.padding}`,
      dispose: () => (tx.dispose(), tw.dispose(), tb.dispose()),
    };
  },
};

export const KERNEL_CASES: readonly KernelCase[] = [matmulCase, conv2dCase, ...MORE_CASES];

export function kernelCase(id: string): KernelCase {
  const c = KERNEL_CASES.find((k) => k.id === id);
  if (!c) throw new Error(`no kernel case '${id}' (cases: ${KERNEL_CASES.map((k) => k.id).join(', ')}).`);
  return c;
}
