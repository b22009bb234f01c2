/**
 * Inverted dropout (Srivastava et al. 2014, as Keras's Dropout layer), kernel in shaders/dropout.wgsl.
 *
 * In training, each element is zeroed with probability `rate` and the kept ones are multiplied by
 * 1 / (1 − rate), so the expected value of every element is unchanged and inference needs no rescaling.
 * At inference (`training: false`), or with rate 0, dropout is the identity: a recorded view, no kernel.
 *
 * The mask comes from the counter-based Philox generator: element i is kept when word i of Philox's
 * stream 1 under `seed` is at least round(rate·2^32). So the mask is a pure function of (seed, i).
 *
 * Why backward regenerates the mask instead of storing it: the op is y = x ⊙ m·s for a fixed 0/1 mask m,
 * so dx = g ⊙ m·s, which is the forward kernel run on g with the same seed. Regenerating costs ten Philox
 * rounds per four elements (integer arithmetic, on the same pass that has to read g anyway) and saves
 * storing anything between forward and backward: a u32 mask would add 4 bytes per activation element and
 * a bit-packed one a second kernel to pack it, both held for the whole forward pass. With the mask
 * derived, the tape keeps only (rate, seed).
 *
 * The caller chooses the seed; use a new one for every training step and every dropout layer (e.g.
 * base + step·layers + layer), since the same seed gives the same mask. One difference from TensorFlow:
 * a dropped element is exactly 0 even where x is NaN or infinite (TensorFlow multiplies by 0).
 */
import { record } from '../autograd/tape.js';
import type { BackwardRule } from '../autograd/backward.js';
import { Uniforms } from '../gpu/uniforms.js';
import { Tensor } from '../tensor/tensor.js';
import { ArgumentError } from '../errors.js';
import { expectDType, launchFlat } from './kernel.js';
import { philox4x32, seedKey } from './random.js';
import { reshape } from './shape.js';

export interface DropoutOptions {
  /** Fraction of elements to drop, in [0, 1). */
  rate: number;
  /** Integer in [0, 2^53): selects the mask. */
  seed: number;
  /** Dropout applies only in training; otherwise the output is x. */
  training: boolean;
}

export interface DropoutAttrs {
  rate: number;
  seed: number;
}

declare module '../autograd/tape.js' {
  interface OpRegistry {
    dropout: DropoutAttrs;
  }
}

const WG = 64;
const OPTIONS = ['rate', 'seed', 'training'];

function checkOptions(options: DropoutOptions): void {
  for (const k of Object.keys(options)) {
    if (!OPTIONS.includes(k)) throw new ArgumentError(`dropout: unknown option '${k}'; expected ${OPTIONS.map((o) => `'${o}'`).join(', ')}.`);
  }
  const { rate, training } = options;
  if (typeof rate !== 'number' || !(rate >= 0 && rate < 1)) {
    throw new ArgumentError(`dropout: rate must be a number in [0, 1); got ${rate}.`);
  }
  if (typeof training !== 'boolean') throw new ArgumentError(`dropout: training must be true or false; got ${training}.`);
  seedKey('dropout', options.seed);
}

/** Words at or above this keep their element: round(rate·2^32), at most 2^32 − 1. */
export function dropoutThreshold(rate: number): number {
  return Math.min(2 ** 32 - 1, Math.round(rate * 2 ** 32));
}

/** f32(1 / (1 − rate)), the factor kept elements are multiplied by. */
export const dropoutScale = (rate: number) => Math.fround(1 / (1 - rate));

/** The dropout kernel (training mode), not recorded. Also the backward pass, applied to g. */
export function dropoutRaw(x: Tensor, rate: number, seed: number): Tensor {
  expectDType('dropout', x, 'f32');
  const key = seedKey('dropout', seed);
  const y = Tensor.empty(x.shape, 'f32', 'dropout');
  if (y.size === 0) return y;
  // As for random tensors, a window passes its first Philox block, so windows give the same mask.
  launchFlat('dropout', {
    shader: 'dropout',
    constants: { WG },
    uniforms: ({ start, count }) =>
      new Uniforms().u32(count).u32(key[0]).u32(key[1]).u32(dropoutThreshold(rate)).f32(dropoutScale(rate)).u32(start / 4),
    inputs: [x],
    outputs: [y],
    elements: y.size,
    workgroupSize: WG,
    perInvocation: 4,
    flopsPerElement: 20,
  });
  return y;
}

/** Keras's Dropout: in training, zero each element with probability `rate` and scale the rest by 1/(1−rate). */
export function dropout(x: Tensor, options: DropoutOptions): Tensor {
  x.assertAlive('dropout');
  checkOptions(options);
  const { rate, seed, training } = options;
  if (!training || rate === 0) return reshape(x, x.shape); // identity: a view, with the gradient passing through
  return record('dropout', { rate, seed }, [x], dropoutRaw(x, rate, seed));
}

export const dropoutBackward: BackwardRule<'dropout'> = ({ attrs }, g) => [dropoutRaw(g, attrs.rate, attrs.seed)];

// ---------------------------------------------------------------------------------------------------------
// Reference

/** The keep mask (1 kept, 0 dropped) for n elements, computed with the TypeScript Philox. */
export function dropoutMaskRef(n: number, rate: number, seed: number): Uint8Array {
  const key = seedKey('dropoutMaskRef', seed);
  const threshold = dropoutThreshold(rate);
  const mask = new Uint8Array(n);
  for (let b = 0; 4 * b < n; b++) {
    const words = philox4x32([b, 0, 0, 1], key);
    for (let j = 0; j < 4 && 4 * b + j < n; j++) mask[4 * b + j] = words[j]! >= threshold ? 1 : 0;
  }
  return mask;
}

/** Training-mode dropout of a flat array: x·f32(1/(1−rate)) where kept, else 0. */
export function dropoutRef(x: ArrayLike<number>, rate: number, seed: number): Float64Array {
  const mask = dropoutMaskRef(x.length, rate, seed);
  const scale = dropoutScale(rate);
  return Float64Array.from(mask, (m, i) => (m ? x[i]! * scale : 0));
}
