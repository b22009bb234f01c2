/**
 * Deep CORAL: Sun & Saenko, "Deep CORAL: correlation alignment for deep domain adaptation", ECCV 2016
 * workshops. It aligns the second-order statistics of the source and target features:
 *
 *   C = (Xᵀ X − (1ᵀX)ᵀ(1ᵀX) / n) / (n − 1)      the covariance of n feature rows X [n, d]
 *     = X̃ᵀ X̃ / (n − 1),   X̃ = X − mean(X)       (computed from the centred features, as here)
 *
 *   ℓ_CORAL = ‖C_S − C_T‖²_F / (4 d²)
 *
 * and trains on ℓ_y(source) + α·ℓ_CORAL. The loss is composed from differentiable ops (mean, sub, matmul with
 * a transposed operand, square, sum, scalar multiply), so autograd derives its backward; the paper's closed
 * form ∂ℓ/∂X_S = X̃_S (C_S − C_T) / (d² (n_S − 1)) is what that chain rule evaluates to (the centring term
 * vanishes because the columns of X̃ sum to zero), and test/train/coral.test.ts checks it against an f64
 * finite-difference reference.
 */
import { ArgumentError, ShapeError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { add, matmul, mean, mulScalar, slice, square, sub, sum } from '../ops/index.js';
import { type AdaptBatch, type DannNetwork, type StepLosses, dannLosses } from './dann.js';

/** The unbiased covariance [d, d] of the rows of x [n, d], n ≥ 2. */
export function covariance(x: Tensor): Tensor {
  if (x.rank !== 2) throw new ShapeError(`covariance: x must be [n, d]; got [${x.shape.join(', ')}].`);
  const n = x.shape[0]!;
  if (n < 2) throw new ArgumentError(`covariance: needs at least 2 rows; got ${n}.`);
  const centred = sub(x, mean(x, 0, true));
  return mulScalar(matmul(centred, centred, { transposeA: true }), 1 / (n - 1));
}

/** ‖C_S − C_T‖²_F / (4 d²) for source features [nS, d] and target features [nT, d]. */
export function coralLoss(source: Tensor, target: Tensor): Tensor {
  if (source.rank !== 2 || target.rank !== 2 || source.shape[1] !== target.shape[1]) {
    throw new ShapeError(`coralLoss: source and target must be [n, d] with the same d; got [${source.shape.join(', ')}] and [${target.shape.join(', ')}].`);
  }
  const d = source.shape[1]!;
  return mulScalar(sum(square(sub(covariance(source), covariance(target)))), 1 / (4 * d * d));
}

/**
 * The Deep CORAL step's losses: source cross-entropy + α·CORAL on the extractor's features. The domain
 * classifier still runs as a probe behind R_λ with λ = 0 (the trainer sets it), so `domain` is reported
 * and G_d learns, but no domain gradient reaches the features.
 */
export function coralLosses(net: DannNetwork, batch: AdaptBatch, domainTargets: Tensor, alpha: number): StepLosses & { coral: Tensor } {
  const base = dannLosses(net, batch, domainTargets);
  const nS = batch.xs.shape[0]!;
  const nT = batch.xt.shape[0]!;
  const fs = slice(base.features, [0, 0], [nS, net.featureSize]);
  const ft = slice(base.features, [nS, 0], [nT, net.featureSize]);
  const coral = coralLoss(fs, ft);
  return { ...base, coral, total: add(base.total, mulScalar(coral, alpha)) };
}
