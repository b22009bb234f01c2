/**
 * ResNet50 and VGG16 (Keras applications architectures, include_top=false) plus Graft's transfer head, built
 * from TensorFlow.js ops for bench/models.ts, so tfjs-backend-webgpu and tfjs-backend-wasm run the same graph
 * as Graft's model: the same convolutions (NHWC, HWIO filters, the same padding), BatchNorm after every
 * ResNet convolution, and the head GlobalAveragePooling → Dense(512, relu) → Dropout(0.5) → Dense(2).
 *
 * The network is a list of units (ResNet50: the stem, then the 16 bottleneck blocks; VGG16: one unit per
 * convolution, the block's max-pool attached to its last one; then the head). A training step trains the
 * units from index `from` on: the frozen prefix runs outside the gradient scope (tfjs records nothing for
 * it, as Graft's tape records nothing for a frozen base), the rest inside `tf.variableGrads`, then Adam.
 * BatchNorm uses the batch's statistics only in the 'full' mode (every layer trainable, as Graft's
 * BatchNormalization in training mode); the moving statistics are not updated (a few small ops per layer).
 * Weights are He-normal random: speed does not depend on their values.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Tensor as T, Tensor4D as T4, Variable as Var } from '@tensorflow/tfjs-core';
import type { Tf } from './tfjs.js';

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

export interface TfUnit {
  name: string;
  params: Var[];
  apply(x: T, trainingBn: boolean, training: boolean): T;
}

export interface TfNet {
  units: TfUnit[];
  dispose(): void;
}

function builder(tf: Tf) {
  const all: Var[] = [];
  let seed = 1;
  const variable = (shape: number[], std: number, constant?: number): Var => {
    const init = constant === undefined ? tf.randomNormal(shape, 0, std, 'float32', seed++) : tf.fill(shape, constant);
    const v = tf.variable(init, true);
    init.dispose();
    all.push(v);
    return v;
  };
  /** Conv2D (+ bias, fused activation) with He-normal HWIO filters. */
  const conv = (k: number, c: number, f: number, stride: number, pad: Pad, relu: boolean) => {
    const w = variable([k, k, c, f], Math.sqrt(2 / (k * k * c)));
    const b = variable([f], 0, 0);
    return {
      params: [w, b],
      apply: (x: T) => tf.fused.conv2d({ x: x as T4, filter: w as unknown as T4, strides: stride, pad, bias: b, activation: relu ? 'relu' : 'linear' }) as T,
    };
  };
  /** BatchNormalization: moving statistics (not trained) and γ, β. */
  const bn = (c: number) => {
    const gamma = variable([c], 0, 1), beta = variable([c], 0, 0);
    const mean = tf.variable(tf.zeros([c]), false), variance = tf.variable(tf.ones([c]), false);
    all.push(mean, variance);
    return {
      params: [gamma, beta],
      apply: (x: T, batchStats: boolean) => {
        if (!batchStats) return tf.batchNorm(x as T4, mean, variance, beta, gamma, 1.001e-5) as T;
        const m = tf.moments(x, [0, 1, 2]);
        return tf.batchNorm(x as T4, m.mean, m.variance, beta, gamma, 1.001e-5) as T;
      },
    };
  };
  return { all, variable, conv, bn };
}

function head(tf: Tf, b: ReturnType<typeof builder>, channels: number): TfUnit {
  const w1 = b.variable([channels, 512], Math.sqrt(2 / channels)), b1 = b.variable([512], 0, 0);
  const w2 = b.variable([512, 2], Math.sqrt(1 / 512)), b2 = b.variable([2], 0, 0);
  return {
    name: 'head',
    params: [w1, b1, w2, b2],
    apply: (x, _bn, training) => {
      let y = tf.mean(x, [1, 2]);
      y = tf.fused.matMul({ a: y as never, b: w1 as never, bias: b1, activation: 'relu' });
      if (training) y = tf.dropout(y, 0.5);
      return tf.fused.matMul({ a: y as never, b: w2 as never, bias: b2 }); // logits
    },
  };
}

/**
 * tfjs-core's Node bundle has no gradient functions: the `@tensorflow/tfjs` bundle registers them, from
 * tfjs-core's ES-module build, which Node cannot import as it stands (directory imports). So we bundle
 * that one module (`dist/register_all_gradients.js`) with esbuild (tsx's own dependency) into a temporary
 * file and import it; its ops reach the one global tfjs engine and gradient registry, so the gradients
 * serve the tfjs-core that the benchmark loaded. Throws with esbuild's message if that fails.
 */
export async function registerTfjsGradients(): Promise<void> {
  const require = createRequire(import.meta.url);
  const entry = require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js');
  const esbuild = require.resolve('esbuild/bin/esbuild');
  const out = join(mkdtempSync(join(tmpdir(), 'graft-tfjs-grads-')), 'gradients.mjs');
  const r = spawnSync(esbuild, [entry, '--bundle', '--format=esm', '--platform=node', `--outfile=${out}`, '--log-level=error'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bundling tfjs-core's gradients with esbuild failed: ${r.error?.message ?? r.stderr}`);
  await import(pathToFileURL(out).href);
}

export function tfVgg16(tf: Tf): TfNet {
  const b = builder(tf);
  const units: TfUnit[] = [];
  let c = 3;
  const blocks: Array<[number, number]> = [[64, 2], [128, 2], [256, 3], [512, 3], [512, 3]];
  blocks.forEach(([f, n], bi) => {
    for (let i = 1; i <= n; i++) {
      const cv = b.conv(3, c, f, 1, 'same', true);
      const pool = i === n;
      units.push({
        name: `block${bi + 1}_conv${i}${pool ? '+pool' : ''}`,
        params: cv.params,
        apply: (x) => {
          const y = cv.apply(x);
          return pool ? (tf.maxPool(y as T4, 2, 2, 'valid') as T) : y;
        },
      });
      c = f;
    }
  });
  units.push(head(tf, b, 512));
  return { units, dispose: () => b.all.forEach((v) => v.dispose()) };
}

export function tfResnet50(tf: Tf): TfNet {
  const b = builder(tf);
  const units: TfUnit[] = [];
  const stemConv = b.conv(7, 3, 64, 2, [[0, 0], [3, 3], [3, 3], [0, 0]], false);
  const stemBn = b.bn(64);
  units.push({
    name: 'stem',
    params: [...stemConv.params, ...stemBn.params],
    apply: (x, bs) => {
      const y = tf.relu(stemBn.apply(stemConv.apply(x), bs));
      return tf.maxPool(tf.pad(y, [[0, 0], [1, 1], [1, 1], [0, 0]]) as T4, 3, 2, 'valid') as T;
    },
  });
  let c = 64;
  const stages: Array<[number, number, number]> = [[64, 3, 1], [128, 4, 2], [256, 6, 2], [512, 3, 2]];
  stages.forEach(([f, blocks, stageStride], si) => {
    for (let bi = 1; bi <= blocks; bi++) {
      const stride = bi === 1 ? stageStride : 1;
      const proj = bi === 1 ? { conv: b.conv(1, c, 4 * f, stride, 'valid', false), bn: b.bn(4 * f) } : null;
      const c1 = b.conv(1, c, f, stride, 'valid', false), n1 = b.bn(f);
      const c2 = b.conv(3, f, f, 1, 'same', false), n2 = b.bn(f);
      const c3 = b.conv(1, f, 4 * f, 1, 'valid', false), n3 = b.bn(4 * f);
      units.push({
        name: `conv${si + 2}_block${bi}`,
        params: [...(proj ? [...proj.conv.params, ...proj.bn.params] : []), ...c1.params, ...n1.params, ...c2.params, ...n2.params, ...c3.params, ...n3.params],
        apply: (x, bs) => {
          const shortcut = proj ? proj.bn.apply(proj.conv.apply(x), bs) : x;
          let y = tf.relu(n1.apply(c1.apply(x), bs));
          y = tf.relu(n2.apply(c2.apply(y), bs));
          y = n3.apply(c3.apply(y), bs);
          return tf.relu(tf.add(shortcut, y));
        },
      });
      c = 4 * f;
    }
  });
  units.push(head(tf, b, 2048));
  return { units, dispose: () => b.all.forEach((v) => v.dispose()) };
}

/** Inference: every unit, then softmax. */
export function tfForward(tf: Tf, net: TfNet, x: T): T {
  return tf.tidy(() => tf.softmax(net.units.reduce((y, u) => u.apply(y, false, false), x)));
}

/**
 * One training step of units[from..]: the prefix without gradients, then forward, softmax cross-entropy
 * against `onehot`, backward and Adam on the suffix's parameters. Returns the loss (the caller disposes it).
 */
export function tfTrainStep(tf: Tf, net: TfNet, from: number, batchStats: boolean, optimizer: ReturnType<Tf['train']['adam']>, x: T, onehot: T): T {
  return tf.tidy(() => {
    const features = net.units.slice(0, from).reduce((y, u) => u.apply(y, false, false), x);
    const vars = net.units.slice(from).flatMap((u) => u.params);
    const { value, grads } = tf.variableGrads(() => {
      const logits = net.units.slice(from).reduce((y, u) => u.apply(y, batchStats, true), features);
      return tf.losses.softmaxCrossEntropy(onehot, logits) as ReturnType<Tf['scalar']>;
    }, vars);
    optimizer.applyGradients(grads as Parameters<typeof optimizer.applyGradients>[0]); // the map's keys are the variables' names
    return value;
  });
}
