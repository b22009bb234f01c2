/**
 * Domain-adversarial training (DANN): Ganin & Lempitsky, "Unsupervised domain adaptation by
 * backpropagation", ICML 2015; Ganin et al., "Domain-adversarial training of neural networks", JMLR 2016.
 *
 * Three parts share one computation:
 *
 *   x ──► extractor G_f ──► f ──► label classifier G_y ──► class logits      (source rows only)
 *                           │
 *                           └──► GradientReversal(λ) ──► domain classifier G_d ──► 1 logit (0 = source, 1 = target)
 *
 * Every step takes a batch that is half labelled source, half unlabelled target, and minimises
 *
 *   L = L_y(G_y(f_s), y_s) + L_d(G_d(R_λ(f)), d)
 *
 * with L_y the softmax cross-entropy on the SOURCE rows only (the target labels are never seen) and L_d the
 * binary cross-entropy with logits over both halves. R_λ is the identity forward and multiplies the gradient
 * by −λ backward, so one ordinary descent step moves G_d DOWN L_d (it learns to tell the domains apart) while
 * it moves G_f UP λ·L_d (the features learn to make the domains indistinguishable): the saddle point
 * min_{G_f, G_y} max_{G_d} L_y − λ·L_d of the paper, in a single backward pass.
 *
 * Schedules (paper, section 5.2.2), with p ∈ [0, 1] the fraction of training done:
 *   λ_p = 2 / (1 + exp(−10·p)) − 1       (`dannLambda`): no adversarial signal while G_d is still random;
 *   μ_p = μ0 / (1 + 10·p)^0.75           (`dannLearningRate`): the annealed learning rate.
 *
 * Why not the Keras-blog tutorial's version. A widely copied Keras "DANN" builds the domain classifier on the
 * features WITHOUT a gradient reversal layer and trains the whole model on the sum of both losses. Then the
 * feature extractor descends the domain loss too: it is trained to HELP the domain classifier, which makes
 * the two domains MORE separable, the opposite of domain adaptation. It also feeds the target half of each
 * batch to the label head with zero vectors / dummy labels, so the classifier is trained to predict a fixed
 * class for every target image (and the reported "target accuracy" measures that). Here the label loss is
 * computed on the source rows alone (a slice of the batch), and the only path from the domain loss to the
 * extractor runs through R_λ. The test in test/train/dann.test.ts checks the sign and scale of that path.
 *
 * The same network with λ = 0 is a domain PROBE: G_d still learns to separate the domains, but the
 * reversed gradient −0·g is zero, so the features are untouched. The trainer uses it for source-only and
 * CORAL runs, so that every method reports a comparable domain-classifier accuracy.
 */
import { ArgumentError, ShapeError } from '../errors.js';
import { noGrad } from '../autograd/tape.js';
import type { Shape, Tensor } from '../tensor/tensor.js';
import { add, binaryCrossEntropyWithLogits, clamp, concat, equal, greater, max, mul, slice, softmaxCrossEntropy, sum, zerosLike } from '../ops/index.js';
import { Sequential, type Model } from '../nn/model.js';
import { Activation, Dense, Flatten } from '../nn/layers/core.js';
import { BatchNormalization } from '../nn/layers/normalization.js';
import type { Layer } from '../nn/layer.js';
import { Conv2D } from '../nn/layers/convolutional.js';
import { MaxPooling2D } from '../nn/layers/pooling.js';
import { GradientReversal } from '../nn/gradient-reversal.js';
import { batchNormLayers } from '../nn/batchnorm-statistics.js';

/** The paper's annealed learning rate μ_p = μ0 / (1 + α·p)^β, α = 10, β = 0.75. */
export function dannLearningRate(progress: number, lr0: number, alpha = 10, beta = 0.75): number {
  if (!(progress >= 0 && progress <= 1)) throw new ArgumentError(`dannLearningRate: progress must be in [0, 1]; got ${progress}.`);
  if (!(lr0 > 0) || !Number.isFinite(lr0)) throw new ArgumentError(`dannLearningRate: lr0 must be a positive number; got ${lr0}.`);
  return lr0 / Math.pow(1 + alpha * progress, beta);
}

// ---------------------------------------------------------------------------------------------------------
// The network

export interface DannNetwork {
  /** G_f: images (or any input) → a flat feature vector [B, featureSize]. */
  extractor: Model;
  /** G_y: features → class logits [B, classes]. */
  classifier: Model;
  /** G_d: features → one domain logit [B, 1] (target = 1). */
  domainClassifier: Model;
  /** R_λ between the features and G_d; the trainer sets its λ every step. */
  reversal: GradientReversal;
  featureSize: number;
  classes: number;
  /**
   * The extractor sees the source and the target half in two separate calls, so that each batch-norm layer
   * normalises each domain with its own batch statistics (and `adapt` sets the moving statistics to the
   * target's before predicting on it: AdaBN). True when the extractor has trainable batch norm, unless
   * `perDomainStatistics: false` was asked for. Without batch norm the two ways compute the same.
   */
  perDomainStatistics: boolean;
}

export interface DannNetworkOptions {
  /** The feature extractor: a Model whose output is [featureSize] (e.g. a pretrained base + Flatten), or the input shape of a LeNet-style extractor. */
  extractor: Model | { inputShape: Shape; batchNorm?: boolean };
  classes: number;
  /** Hidden Dense widths of the label classifier. Default [100, 100] (the paper's MNIST architecture). */
  classifierHidden?: number[];
  /** Hidden Dense widths of the domain classifier. Default DEFAULT_DOMAIN_HIDDEN ([100]). */
  domainHidden?: number[];
  /** Seed of every initialiser (each layer gets its own derived seed). Default 0. */
  seed?: number;
  /** Per-domain batch-norm statistics (see DannNetwork.perDomainStatistics). Default true. */
  perDomainStatistics?: boolean;
}

/**
 * The DANN paper's MNIST extractor (JMLR 2016, figure 4): conv 5×5×32 → max-pool 2 → conv 5×5×48 → max-pool 2,
 * flattened: 28×28×1 → 4·4·48 = 768 features. With `batchNorm`, each convolution is followed by batch
 * normalisation before its ReLU (conv → BN → ReLU → pool), as most later DANN re-implementations do.
 */
export function lenetExtractor(inputShape: Shape, seed = 0, options: { batchNorm?: boolean } = {}): Model {
  if (inputShape.length !== 3) throw new ShapeError(`lenetExtractor: inputShape must be [height, width, channels]; got [${inputShape.join(', ')}].`);
  const block = (filters: number, k: number): Layer[] =>
    options.batchNorm
      ? [new Conv2D({ filters, kernelSize: 5, seed: seed * 16 + k }), new BatchNormalization({ momentum: 0.9 }), new Activation({ activation: 'relu' }), new MaxPooling2D({ poolSize: 2 })]
      : [new Conv2D({ filters, kernelSize: 5, activation: 'relu', seed: seed * 16 + k }), new MaxPooling2D({ poolSize: 2 })];
  return new Sequential([...block(32, 1), ...block(48, 2), new Flatten()], { inputShape });
}

function mlpHead(inputSize: number, hidden: readonly number[], out: number, seed: number): Model {
  const layers = hidden.map((units, i) => new Dense({ units, activation: 'relu', seed: seed + i }));
  layers.push(new Dense({ units: out, seed: seed + hidden.length }));
  return new Sequential(layers, { inputShape: [inputSize] });
}

/** The domain classifier's hidden widths by default: the DANN paper's MNIST head, one layer of 100. */
export const DEFAULT_DOMAIN_HIDDEN: readonly number[] = [100];

export function buildDannNetwork(options: DannNetworkOptions): DannNetwork {
  const { classes, classifierHidden = [100, 100], domainHidden = DEFAULT_DOMAIN_HIDDEN, seed = 0 } = options;
  if (!Number.isInteger(classes) || classes < 2) throw new ArgumentError(`buildDannNetwork: classes must be an integer ≥ 2; got ${classes}.`);
  for (const [name, widths] of [['classifierHidden', classifierHidden], ['domainHidden', domainHidden]] as const) {
    if (!Array.isArray(widths) || widths.some((w) => !Number.isInteger(w) || w <= 0)) {
      throw new ArgumentError(`buildDannNetwork: ${name} must be a list of positive integers; got ${JSON.stringify(widths)}.`);
    }
  }
  const extractor = 'inputShape' in options.extractor ? lenetExtractor(options.extractor.inputShape, seed, { batchNorm: options.extractor.batchNorm ?? false }) : options.extractor;
  const outShape = extractor.outputs[0]!.shape;
  if (outShape.length !== 1) {
    throw new ShapeError(`buildDannNetwork: the extractor must output flat features [featureSize]; its output is [${outShape.join(', ')}] (add a Flatten or a global pooling layer).`);
  }
  const featureSize = outShape[0]!;
  const hasBatchNorm = batchNormLayers(extractor).length > 0;
  if (options.perDomainStatistics !== undefined && !hasBatchNorm) {
    throw new ArgumentError('buildDannNetwork: perDomainStatistics is about batch-norm statistics and needs an extractor with trainable batch normalisation (e.g. the LeNet with batchNorm: true).');
  }
  return {
    extractor,
    classifier: mlpHead(featureSize, classifierHidden, classes, seed * 16 + 4),
    domainClassifier: mlpHead(featureSize, domainHidden, 1, seed * 16 + 10),
    reversal: new GradientReversal(0),
    featureSize,
    classes,
    perDomainStatistics: hasBatchNorm && options.perDomainStatistics !== false,
  };
}

/** All trainable parameters: extractor, label classifier, domain classifier. */
export function dannParameters(net: DannNetwork): Tensor[] {
  return [...net.extractor.trainableParameters(), ...net.classifier.trainableParameters(), ...net.domainClassifier.trainableParameters()];
}

export function disposeDannNetwork(net: DannNetwork): void {
  net.extractor.dispose();
  net.classifier.dispose();
  net.domainClassifier.dispose();
}

// ---------------------------------------------------------------------------------------------------------
// One step's forward pass and losses

/** A half-source, half-target batch on the GPU. */
export interface AdaptBatch {
  /** [nS, ...inputShape] source images. */
  xs: Tensor;
  /** [nS] i32 source labels. */
  ys: Tensor;
  /** [nS, classes] one-hot of ys (for the accuracy count only). */
  ysHot: Tensor;
  /** [nT, ...inputShape] target images; their labels are never used in training. */
  xt: Tensor;
}

/** The scalars a step produces; `adapt` is the method's extra loss (domain BCE, CORAL or 0). */
export interface StepLosses {
  total: Tensor;
  label: Tensor;
  domain: Tensor;
  /** Correct source predictions and correct domain predictions in this batch (no gradient). */
  sourceCorrect: Tensor;
  domainCorrect: Tensor;
  /** The extracted features of both halves, [nS + nT, featureSize], source rows first. */
  features: Tensor;
}

/** Rows whose largest logit is at the target class (a tie counts once). */
export function correctCount(logits: Tensor, hot: Tensor): Tensor {
  return noGrad(() => sum(clamp(sum(mul(equal(logits, max(logits, -1, true)), hot), -1), 0, 1)));
}

/** Domain predictions (logit > 0 ⇔ target) that match the domain labels. */
function domainCorrectCount(logits: Tensor, targets: Tensor): Tensor {
  return noGrad(() => sum(equal(greater(logits, zerosLike(logits)), targets)));
}

/**
 * The DANN forward pass for one batch: features of both halves (in one extractor call, or one per domain
 * with per-domain batch-norm statistics), the label loss on the
 * source rows, and the domain loss through R_λ on all rows. `total` = label + domain (λ lives in R_λ).
 * `domainTargets` is [nS + nT, 1]: 0 for the source rows, 1 for the target rows.
 * `targetInInferenceMode` (the source-only baseline) passes the target half through the extractor in
 * inference mode, so that no statistic of the target enters the extractor's normalisation.
 */
export function dannLosses(net: DannNetwork, batch: AdaptBatch, domainTargets: Tensor, training = true, targetInInferenceMode = false): StepLosses {
  const nS = batch.xs.shape[0]!;
  const features = net.perDomainStatistics || targetInInferenceMode
    ? concat([net.extractor.call(batch.xs, { training }), net.extractor.call(batch.xt, { training: training && !targetInInferenceMode })], 0)
    : net.extractor.call(concat([batch.xs, batch.xt], 0), { training });
  const sourceFeatures = slice(features, [0, 0], [nS, net.featureSize]);
  const logits = net.classifier.call(sourceFeatures, { training });
  const label = softmaxCrossEntropy(logits, batch.ys);
  const domainLogits = net.domainClassifier.call(net.reversal.apply(features), { training });
  const domain = binaryCrossEntropyWithLogits(domainLogits, domainTargets);
  return {
    total: add(label, domain),
    label,
    domain,
    sourceCorrect: correctCount(logits, batch.ysHot),
    domainCorrect: domainCorrectCount(domainLogits, domainTargets),
    features,
  };
}
