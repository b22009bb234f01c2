/**
 * Optimizer update kernels: SGD (shaders/sgd_update.wgsl) and Adam/AdamW (shaders/adam_update.wgsl).
 *
 * Each kernel reads a parameter, its gradient and the optimizer's state for it, and writes the parameter
 * and the state back in place, one element per invocation. These are not autograd ops: nothing is
 * recorded (they run under `noGrad` in src/train/optimizers.ts), so there is no backward rule.
 *
 * Every hyper-parameter travels in the uniform, so a learning rate that changes every step reuses the
 * same pipeline. The one override is SGD's MOMENTUM, which decides whether a velocity buffer exists.
 * They are flat kernels (`launchFlat`), so a parameter over the storage binding limit is updated in windows.
 *
 * Below the dispatches are plain-TypeScript references (f64, in place on flat arrays) used by the tests.
 */
import { Uniforms } from '../gpu/uniforms.js';
import { runtime } from '../gpu/runtime.js';
import { type Tensor, shapeStr } from '../tensor/tensor.js';
import { ArgumentError, ShapeError } from '../errors.js';
import { expectDType, launchFlat, sameShape } from './kernel.js';
import { markWritten } from '../tensor/write-generation.js';

const WG = 64;

export interface SgdHyper {
  lr: number;
  /** 0 means plain SGD, with no velocity buffer. */
  momentum: number;
  nesterov: boolean;
  /** L2 weight decay, added to the gradient as weightDecay · p. */
  weightDecay: number;
}

export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
  /** true: AdamW's decoupled decay p ← p − lr·wd·p; false: Adam's L2 decay, g ← g + wd·p. */
  decoupled: boolean;
  /** The 1-based step count t of this parameter, for the bias corrections 1 − β^t. */
  step: number;
}

/** Checks that `state` (a gradient or an optimizer buffer) is an f32 tensor of the parameter's shape. */
function expectLike(op: string, param: Tensor, state: Tensor, what: string): void {
  expectDType(op, state, 'f32');
  if (!sameShape(param.shape, state.shape)) {
    throw new ShapeError(`${op}: ${what} has shape ${shapeStr(state.shape)}; expected the parameter's shape ${shapeStr(param.shape)}.`);
  }
}

/**
 * One SGD step on `param`, in place. `velocity` (the momentum buffer, updated in place) must be given
 * exactly when `momentum > 0`.
 */
export function sgdUpdate(param: Tensor, grad: Tensor, velocity: Tensor | null, h: SgdHyper): void {
  const op = 'sgdUpdate';
  expectDType(op, param, 'f32');
  expectLike(op, param, grad, 'the gradient');
  const hasMomentum = h.momentum !== 0;
  if (hasMomentum !== (velocity !== null)) {
    throw new ArgumentError(`${op}: momentum is ${h.momentum} but a velocity buffer was ${velocity ? 'given' : 'not given'}; it is needed exactly when momentum > 0.`);
  }
  if (h.nesterov && !hasMomentum) throw new ArgumentError(`${op}: nesterov needs momentum > 0; got momentum ${h.momentum}.`);
  if (velocity) expectLike(op, param, velocity, 'the velocity');
  // Without momentum the velocity binding is a placeholder buffer that the kernel never touches.
  launchFlat(op, {
    shader: 'sgd_update',
    constants: { MOMENTUM: hasMomentum, WG },
    uniforms: ({ count }) => new Uniforms().u32(count).f32(h.lr).f32(h.momentum).f32(h.weightDecay).u32(h.nesterov ? 1 : 0),
    inputs: [grad],
    outputs: [param, velocity ?? runtime().emptyBuffer],
    elements: param.size,
    workgroupSize: WG,
    flopsPerElement: hasMomentum ? 6 : 4,
  });
  markWritten(param, ...(velocity ? [velocity] : []));
}

/** One Adam (or AdamW, with `decoupled`) step on `param`, in place; `m` and `v` are updated in place. */
export function adamUpdate(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, h: AdamHyper): void {
  const op = h.decoupled ? 'adamwUpdate' : 'adamUpdate';
  expectDType(op, param, 'f32');
  expectLike(op, param, grad, 'the gradient');
  expectLike(op, param, m, 'the first moment m');
  expectLike(op, param, v, 'the second moment v');
  if (!Number.isInteger(h.step) || h.step < 1) throw new ArgumentError(`${op}: step must be an integer ≥ 1; got ${h.step}.`);
  const { inv1, inv2 } = biasCorrections(h);
  launchFlat(op, {
    shader: 'adam_update',
    constants: { WG },
    uniforms: ({ count }) => new Uniforms()
      .u32(count).f32(h.lr).f32(h.beta1).f32(h.beta2).f32(1 - h.beta1).f32(1 - h.beta2).f32(h.epsilon)
      .f32(h.decoupled ? 0 : h.weightDecay).f32(h.decoupled ? h.weightDecay : 0)
      .f32(inv1).f32(inv2),
    inputs: [grad],
    outputs: [param, m, v],
    elements: param.size,
    workgroupSize: WG,
    flopsPerElement: 16,
  });
  markWritten(param, m, v);
}

/** 1 / (1 − β1^t) and 1 / (1 − β2^t), computed in f64 on the CPU. */
function biasCorrections(h: AdamHyper): { inv1: number; inv2: number } {
  return { inv1: 1 / (1 - Math.pow(h.beta1, h.step)), inv2: 1 / (1 - Math.pow(h.beta2, h.step)) };
}

// ---------------------------------------------------------------------------------------------------------
// Plain-TypeScript references (f64), in place on flat arrays, used by the tests.

export function sgdUpdateRef(param: Float64Array, grad: ArrayLike<number>, velocity: Float64Array | null, h: SgdHyper): void {
  for (let i = 0; i < param.length; i++) {
    const g = grad[i]! + h.weightDecay * param[i]!;
    if (!velocity) {
      param[i] = param[i]! - h.lr * g;
      continue;
    }
    const v = h.momentum * velocity[i]! + g;
    velocity[i] = v;
    param[i] = param[i]! - h.lr * (h.nesterov ? g + h.momentum * v : v);
  }
}

export function adamUpdateRef(param: Float64Array, grad: ArrayLike<number>, m: Float64Array, v: Float64Array, h: AdamHyper): void {
  const { inv1, inv2 } = biasCorrections(h);
  for (let i = 0; i < param.length; i++) {
    const p = param[i]!;
    const g = grad[i]! + (h.decoupled ? 0 : h.weightDecay * p);
    m[i] = h.beta1 * m[i]! + (1 - h.beta1) * g;
    v[i] = h.beta2 * v[i]! + (1 - h.beta2) * g * g;
    const update = (m[i]! * inv1) / (Math.sqrt(v[i]! * inv2) + h.epsilon);
    param[i] = p - h.lr * (h.decoupled ? h.weightDecay * p : 0) - h.lr * update;
  }
}
