/**
 * The gradient reversal layer of domain-adversarial training (DANN; Ganin & Lempitsky, "Unsupervised
 * domain adaptation by backpropagation", ICML 2015).
 *
 *   forward:   y = x                     (a view of x's storage: no kernel, no copy)
 *   backward:  dx = −λ·g
 *
 * Placed between a feature extractor and a domain classifier, it lets the classifier descend its loss while
 * the features ascend it, i.e. become indistinguishable across domains. λ usually grows during training
 * (see `dannLambda` in src/nn/gradient-reversal.ts), so it must be cheap to change: the backward pass is
 * the unary `affine` kernel (g·α + β with α = −λ, β = 0), and α travels in the uniform buffer. Every λ
 * therefore runs the same compiled pipeline.
 */
import { record } from '../autograd/tape.js';
import type { BackwardRule } from '../autograd/backward.js';
import type { Tensor } from '../tensor/tensor.js';
import { ArgumentError } from '../errors.js';
import { unaryRaw } from './elementwise.js';

export interface GradientReversalAttrs {
  lambda: number;
}

declare module '../autograd/tape.js' {
  interface OpRegistry {
    gradientReversal: GradientReversalAttrs;
  }
}

/** Identity forward; multiplies the gradient by −λ on the way back. */
export function gradientReversal(x: Tensor, lambda = 1): Tensor {
  x.assertAlive('gradientReversal');
  if (typeof lambda !== 'number' || !Number.isFinite(lambda)) {
    throw new ArgumentError(`gradientReversal: lambda must be a finite number; got ${lambda}.`);
  }
  return record('gradientReversal', { lambda }, [x], x.view(x.shape));
}

export const gradientReversalBackward: BackwardRule<'gradientReversal'> = ({ attrs }, g) => [unaryRaw('affine', g, -attrs.lambda, 0)];
