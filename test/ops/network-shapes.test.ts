/**
 * The kernels together, at the shapes VGG16 and ResNet50 are made of (64×64 inputs): Conv → BatchNorm →
 * ReLU → pooling chains, forward and backward against a chain of the plain-TypeScript references, and a
 * whole ResNet bottleneck block (projection shortcut, stride 2) against f64 finite differences.
 */
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { expectClose, randomData } from '../util/check.js';
import { checkGradients } from '../util/grad.js';
import { tensor } from '../../src/tensor/create.js';
import { tidy } from '../../src/tensor/scope.js';
import type { Shape, Tensor } from '../../src/tensor/tensor.js';
import * as ops from '../../src/ops/index.js';
import { batchNormBackwardRef, batchNormRef } from '../../src/ops/batchnorm.js';
import { type ConvPadding, conv2dBackwardRef, conv2dRef } from '../../src/ops/conv.js';
import { maxPool2dBackwardRef, maxPool2dRef, poolGeometry } from '../../src/ops/pooling.js';
import { zeroPadding2dRef } from '../../src/ops/padding.js';

useGpu();

const EPS = 1.001e-5;

interface Chain {
  name: string;
  x: Shape;
  kernel: number;
  filters: number;
  stride: number;
  padding: ConvPadding;
  /** ZeroPadding2D before the pool (ResNet's pool1_pad). */
  poolPad: number;
  pool: number;
  poolStride: number;
}

const chains: Chain[] = [
  { name: 'VGG16 block1 (3→64, 3×3 same, 2×2/2 pool)', x: [2, 64, 64, 3], kernel: 3, filters: 64, stride: 1, padding: 'same', poolPad: 0, pool: 2, poolStride: 2 },
  { name: 'VGG16 block3 (128→256 at 16×16)', x: [2, 16, 16, 128], kernel: 3, filters: 256, stride: 1, padding: 'same', poolPad: 0, pool: 2, poolStride: 2 },
  { name: 'ResNet50 stem (7×7/2 after ZeroPadding2D(3), pool 3×3/2 after ZeroPadding2D(1))', x: [2, 64, 64, 3], kernel: 7, filters: 64, stride: 2, padding: [[3, 3], [3, 3]], poolPad: 1, pool: 3, poolStride: 2 },
];

/** Runs the chain on the GPU; returns the output and the gradients of Σ out·wOut. */
async function gpuChain(c: Chain, d: { x: Float32Array; w: Float32Array; gamma: Float32Array; beta: Float32Array; wOut: Float32Array }) {
  const params = [tensor(d.x, c.x), tensor(d.w, [c.kernel, c.kernel, c.x[3]!, c.filters]), tensor(d.gamma, [c.filters]), tensor(d.beta, [c.filters])].map((t) => {
    t.keep().requiresGrad = true;
    return t;
  });
  const [x, w, gamma, beta] = params as [Tensor, Tensor, Tensor, Tensor];
  const out = tidy(() => {
    let y = ops.conv2d(x, w, { strides: c.stride, padding: c.padding });
    y = ops.batchNorm(y, { gamma, beta, epsilon: EPS, training: true });
    y = ops.relu(y);
    if (c.poolPad) y = ops.zeroPadding2d(y, c.poolPad);
    y = ops.maxPool2d(y, { poolSize: c.pool, strides: c.poolStride });
    ops.backward(ops.sum(ops.mul(y, tensor(d.wOut, y.shape))));
    return y;
  });
  const result = { y: await out.floats(), shape: [...out.shape], grads: await Promise.all(params.map((p) => p.grad!.floats())) };
  out.dispose();
  for (const p of params) p.dispose();
  return result;
}

/** The same chain on the references, forward then backward by hand. */
function referenceChain(c: Chain, d: { x: Float32Array; w: Float32Array; gamma: Float32Array; beta: Float32Array; wOut: Float32Array }) {
  const wShape = [c.kernel, c.kernel, c.x[3]!, c.filters];
  const conv = conv2dRef(d.x, c.x, d.w, wShape, { strides: c.stride, padding: c.padding });
  const bnOpts = { gamma: d.gamma, beta: d.beta, epsilon: EPS, training: true } as const;
  const bn = batchNormRef(conv.data, conv.shape, bnOpts);
  const act = bn.y.map((v) => Math.max(v, 0));
  const padded = c.poolPad ? zeroPadding2dRef(act, conv.shape, { top: c.poolPad, bottom: c.poolPad, left: c.poolPad, right: c.poolPad }) : act;
  const paddedShape = [conv.shape[0]!, conv.shape[1]! + 2 * c.poolPad, conv.shape[2]! + 2 * c.poolPad, c.filters];
  const g = poolGeometry('ref', paddedShape, { poolSize: c.pool, strides: c.poolStride });
  const pool = maxPool2dRef(padded, g);
  // Backward: pool → (crop the padding) → ReLU mask → BatchNorm → convolution.
  const dPadded = maxPool2dBackwardRef(d.wOut, pool.source, g);
  const dAct = new Float64Array(act.length);
  const [, H, W, C] = conv.shape as [number, number, number, number];
  const PW = W + 2 * c.poolPad;
  for (let i = 0; i < act.length; i++) {
    const ch = i % C, x = Math.floor(i / C) % W, y = Math.floor(i / (C * W)) % H, n = Math.floor(i / (C * W * H));
    const j = ((n * (H + 2 * c.poolPad) + y + c.poolPad) * PW + x + c.poolPad) * C + ch;
    dAct[i] = act[i]! > 0 ? dPadded[j]! : 0;
  }
  const dBn = batchNormBackwardRef(conv.data, conv.shape, dAct, bnOpts);
  const dConv = conv2dBackwardRef(d.x, c.x, d.w, wShape, dBn.dx, { strides: c.stride, padding: c.padding });
  return { y: pool.data, grads: [dConv.dx, dConv.dw, dBn.dgamma, dBn.dbeta] };
}

describe('Conv → BatchNorm → ReLU → max-pool chains at model shapes match the references', () => {
  for (const c of chains) {
    test(c.name, async () => {
      const cin = c.x[3]!;
      const n = c.x.reduce((a, b) => a * b, 1);
      const d: { x: Float32Array; w: Float32Array; gamma: Float32Array; beta: Float32Array; wOut: Float32Array } = {
        x: randomData(n, 1),
        w: randomData(c.kernel * c.kernel * cin * c.filters, 2, -0.2, 0.2),
        gamma: randomData(c.filters, 3, 0.5, 1.5),
        beta: randomData(c.filters, 4, -0.5, 0.5),
        wOut: new Float32Array(0),
      };
      const probe = referenceChain(c, { ...d, wOut: new Float32Array(1e7) });
      d.wOut = randomData(probe.y.length, 5);
      const ref = referenceChain(c, d);
      const gpu = await gpuChain(c, d);
      expect(gpu.y.length).toBe(ref.y.length);
      expectClose(gpu.y, ref.y, { rtol: 1e-3, atol: 1e-3 }, `${c.name}: forward`);
      ['dx', 'dw', 'dgamma', 'dbeta'].forEach((what, k) => {
        const scale = ref.grads[k]!.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        expectClose(gpu.grads[k]!, ref.grads[k]!, { rtol: 2e-3, atol: 2e-3 * scale }, `${c.name}: ${what}`);
      });
    });
  }
});

describe('a ResNet bottleneck block', () => {
  test('with a stride-2 projection shortcut: gradients of input and every filter match f64 finite differences', async () => {
    const xShape = [2, 6, 6, 8];
    const f = 4;
    const shapes = { w0: [1, 1, 8, 4 * f], w1: [1, 1, 8, f], w2: [3, 3, f, f], w3: [1, 1, f, 4 * f] };
    const inputs = [
      { data: randomData(2 * 6 * 6 * 8, 11), shape: xShape },
      { data: randomData(8 * 4 * f, 12, -0.5, 0.5), shape: shapes.w0 },
      { data: randomData(8 * f, 13, -0.5, 0.5), shape: shapes.w1 },
      { data: randomData(9 * f * f, 14, -0.5, 0.5), shape: shapes.w2 },
      { data: randomData(f * 4 * f, 15, -0.5, 0.5), shape: shapes.w3 },
    ];
    const bnGpu = (t: Tensor, relu: boolean) => ops.batchNorm(t, { epsilon: EPS, training: true, relu });
    const gpu = ([x, w0, w1, w2, w3]: Tensor[]) => {
      const shortcut = bnGpu(ops.conv2d(x!, w0!, { strides: 2 }), false);
      let y = bnGpu(ops.conv2d(x!, w1!, { strides: 2 }), true);
      y = bnGpu(ops.conv2d(y, w2!, { padding: 'same' }), true);
      y = bnGpu(ops.conv2d(y, w3!), false);
      return ops.relu(ops.add(shortcut, y));
    };
    const bnRef = (v: ArrayLike<number>, shape: Shape, relu: boolean) => batchNormRef(v, shape, { epsilon: EPS, training: true, relu }).y;
    const ref = ([x, w0, w1, w2, w3]: Float64Array[]) => {
      const s = conv2dRef(x!, xShape, w0!, shapes.w0, { strides: 2 });
      const shortcut = bnRef(s.data, s.shape, false);
      const a = conv2dRef(x!, xShape, w1!, shapes.w1, { strides: 2 });
      const b = conv2dRef(bnRef(a.data, a.shape, true), a.shape, w2!, shapes.w2, { padding: 'same' });
      const c = conv2dRef(bnRef(b.data, b.shape, true), b.shape, w3!, shapes.w3);
      const main = bnRef(c.data, c.shape, false);
      return shortcut.map((v, i) => Math.max(v + main[i]!, 0));
    };
    await checkGradients(gpu, ref, inputs, { rtol: 5e-3, atol: 5e-4 });
  });
});
