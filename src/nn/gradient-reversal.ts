/**
 * A gradient reversal layer with a mutable λ, for a domain-adversarial (DANN) trainer to hold and update
 * every step. The op itself is `gradientReversal` in src/ops/gradient-reversal.ts: identity forward,
 * gradient times −λ backward. Changing λ compiles nothing new (λ is a uniform value).
 */
import type { Tensor } from '../tensor/tensor.js';
import { ArgumentError } from '../errors.js';
import { gradientReversal } from '../ops/gradient-reversal.js';

export class GradientReversal {
  private value: number;

  constructor(lambda = 1) {
    this.value = checkLambda(lambda);
  }

  /** The factor the reversed gradient is scaled by (the gradient becomes −λ·g). */
  get lambda(): number {
    return this.value;
  }

  set lambda(v: number) {
    this.value = checkLambda(v);
  }

  /** y = x, recording −λ (λ as of this call) for the backward pass. */
  apply(x: Tensor): Tensor {
    return gradientReversal(x, this.value);
  }
}

function checkLambda(v: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ArgumentError(`GradientReversal: lambda must be a finite number; got ${v}.`);
  return v;
}

/**
 * The λ schedule of Ganin & Lempitsky (2015): λ = 2 / (1 + exp(−γ·p)) − 1, rising from 0 at the start of
 * training (p = 0) towards 1 at the end (p = 1), with γ = 10. It keeps the noisy early domain gradient small.
 */
export function dannLambda(progress: number, gamma = 10): number {
  if (!(progress >= 0 && progress <= 1)) throw new ArgumentError(`dannLambda: progress must be in [0, 1]; got ${progress}.`);
  if (!Number.isFinite(gamma)) throw new ArgumentError(`dannLambda: gamma must be a finite number; got ${gamma}.`);
  return 2 / (1 + Math.exp(-gamma * progress)) - 1;
}
