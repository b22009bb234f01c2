/**
 * cast: conversion between f32 and f16 storage (shaders/cast.wgsl).
 *
 * Graft computes in f32; f16 is a storage format that halves memory and bandwidth (weights, activations
 * kept for backward). An f16 tensor packs two elements per u32 word, element 2k in the low half, so a
 * tensor of odd length ends with a half-used word. f32 → f16 rounds to nearest even, overflows to ±∞ from
 * 65520 up, and keeps subnormals; f16 → f32 is exact.
 *
 * The kernel uses WGSL's f16 type, so it needs the device feature 'shader-f16'; without it `cast` throws.
 * It is a flat kernel (`launchFlat`): a tensor over the storage binding limit is converted in windows.
 *
 * Gradient: rounding is treated as the identity (a straight-through estimate, as TensorFlow does), and
 * gradients are always f32: the rule returns g, converted to f32 if it arrived as f16.
 */
import { record } from '../autograd/tape.js';
import type { BackwardRule } from '../autograd/backward.js';
import { Uniforms } from '../gpu/uniforms.js';
import { runtime } from '../gpu/runtime.js';
import { getFloat16, setFloat16 } from '@petamoriken/float16';
import { Tensor } from '../tensor/tensor.js';
import { ArgumentError, GraftError } from '../errors.js';
import { expectDType, launchFlat } from './kernel.js';

export type FloatDType = 'f16' | 'f32';

declare module '../autograd/tape.js' {
  interface OpRegistry {
    cast: { from: FloatDType; to: FloatDType };
  }
}

const WG = 64;

/** Converts without recording. Returns a new handle on x's storage when x already has dtype `to`. */
export function castRaw(x: Tensor, to: FloatDType): Tensor {
  if (to !== 'f16' && to !== 'f32') throw new ArgumentError(`cast: target dtype '${String(to)}' is not supported; expected 'f16' or 'f32'.`);
  expectDType('cast', x, 'f32', 'f16');
  if (x.dtype === to) return x.view(x.shape);
  if (!runtime().gpu.features.f16) {
    throw new GraftError(
      `cast: converting ${x.dtype} to ${to} needs the WebGPU feature 'shader-f16', which this device does not have (adapter: ${runtime().gpu.info.description || runtime().gpu.info.device || 'unknown'}).`,
    );
  }
  const y = Tensor.empty(x.shape, to, 'cast');
  if (y.size === 0) return y;
  // One invocation per f16 word (two elements); windows of a large tensor start on a word boundary.
  launchFlat('cast', {
    shader: 'cast',
    entry: to === 'f16' ? 'to_f16' : 'to_f32',
    constants: { WG },
    uniforms: ({ count }) => new Uniforms().u32(count).u32(Math.ceil(count / 2)),
    inputs: [x],
    outputs: [y],
    elements: x.size,
    workgroupSize: WG,
    perInvocation: 2,
  });
  return y;
}

/** x converted to dtype `to` ('f16' or 'f32'). */
export function cast(x: Tensor, to: FloatDType): Tensor {
  x.assertAlive('cast');
  const from = x.dtype as FloatDType;
  return record('cast', { from, to }, [x], castRaw(x, to));
}

export const castBackward: BackwardRule<'cast'> = (_ctx, g) => [g.dtype === 'f32' ? g : castRaw(g, 'f32')];

// ---------------------------------------------------------------------------------------------------------
// Reference

/** Rounds each value to the nearest f16 (ties to even) and back, on the CPU. */
export function roundToF16Ref(x: ArrayLike<number>): Float64Array {
  const view = new DataView(new ArrayBuffer(2));
  return Float64Array.from({ length: x.length }, (_, i) => {
    setFloat16(view, 0, x[i]!, true);
    return getFloat16(view, 0, true);
  });
}

/** The f16 bit patterns of each value, as the GPU packs them (two per u32, low half first). */
export function f16BitsRef(x: ArrayLike<number>): Uint16Array {
  const view = new DataView(new ArrayBuffer(x.length * 2));
  for (let i = 0; i < x.length; i++) setFloat16(view, i * 2, x[i]!, true);
  return new Uint16Array(view.buffer);
}
