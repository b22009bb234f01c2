/**
 * The unsupervised domain-adaptation trainer shared by DANN (src/train/dann.ts), Deep CORAL
 * (src/train/coral.ts), AdaBN and the source-only baseline.
 *
 *   const result = await adapt(source, target, targetTest, { method: 'dann', epochs: 30, seed: 1 });
 *   result.history   // per epoch: label/domain/CORAL loss, source, domain and target accuracy, λ, lr, seconds
 *
 * Every method trains the same network (extractor, label classifier, domain classifier behind R_λ) on the
 * same batches, half labelled source and half unlabelled target, for the same number of steps:
 *
 *   method        loss                                     λ of R_λ
 *   source-only   L_y + L_d                                0           (G_d is only a probe)
 *   adabn         L_y + L_d                                0           (G_d is only a probe)
 *   dann          L_y + L_d                                λ_p         (G_d is an adversary)
 *   coral         L_y + α·CORAL(f_s, f_t) + L_d            0           (G_d is only a probe)
 *
 * With λ = 0 no gradient of L_d reaches the extractor, so source-only is a plain source classifier; but its
 * domain-classifier accuracy is measured exactly as DANN's is, which makes "the domains became harder to
 * tell apart" comparable across methods. The target labels are used only to evaluate.
 *
 * Batch norm in the extractor (`batchNorm`) is where the methods' use of the target differs:
 * - source-only uses nothing of the target: the target half passes the extractor in inference mode (the
 *   source's moving statistics), for the probe and at test time, exactly as a model trained on the source
 *   alone would see it;
 * - adabn (Li et al., 2016, "Revisiting batch normalization for practical domain adaptation") trains like
 *   source-only but normalises each domain with its own batch statistics, and predicts on the target with
 *   the target's statistics: adaptation through the normalisation alone, with no adaptation loss;
 * - dann and coral normalise the same way as adabn (per domain, unless `perDomainStatistics: false` mixes
 *   both halves in one batch), so comparing them with adabn isolates what their loss adds.
 *
 * An epoch is ⌊n_source / (batch/2)⌋ steps; target images are drawn without replacement from a permutation
 * that is renewed whenever it runs out. p = step / total steps drives λ_p and the annealed rate μ_p. Each
 * step runs in one tidy; its five statistics are added into one [5] tensor on the GPU, read once per epoch.
 * Target accuracy is evaluated at the end of every epoch on `targetTest`.
 */
import { ArgumentError, ShapeError } from '../errors.js';
import { noGrad } from '../autograd/tape.js';
import { tensor } from '../tensor/create.js';
import { tidy } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { add, backward, concat, permutation, reshape } from '../ops/index.js';
import { Adam, SGD } from './optimizers.js';
import { dannLambda } from '../nn/gradient-reversal.js';
import { type AdaptBatch, type DannNetwork, type DannNetworkOptions, buildDannNetwork, dannLearningRate, dannLosses, dannParameters, disposeDannNetwork } from './dann.js';
import { coralLosses } from './coral.js';
import { argmaxRows } from './batches.js';
import { recomputeBatchNormStatistics } from '../nn/batchnorm-statistics.js';

export { DEFAULT_DOMAIN_HIDDEN, buildDannNetwork, dannLearningRate, dannLosses, dannParameters, disposeDannNetwork, lenetExtractor } from './dann.js';
export type { AdaptBatch, DannNetwork, DannNetworkOptions, StepLosses } from './dann.js';
export { coralLoss, coralLosses, covariance } from './coral.js';

export type AdaptMethod = 'dann' | 'coral' | 'adabn' | 'source-only';
export const ADAPT_METHODS: readonly AdaptMethod[] = ['dann', 'coral', 'adabn', 'source-only'];

/** Images [count, ...imageShape] (NHWC), with class labels when known. */
export interface ImageSet {
  images: Float32Array;
  labels?: Int32Array;
  count: number;
  imageShape: readonly number[];
}

export interface AdaptOptions {
  method: AdaptMethod;
  epochs: number;
  /** Examples per step, half source and half target. Default 128. */
  batchSize?: number;
  /** μ0, the initial learning rate. Default 0.01 (SGD) or 0.001 (Adam). */
  lr?: number;
  /** Anneal the rate as μ_p = μ0 / (1 + 10p)^0.75. Default true. */
  lrSchedule?: boolean;
  optimizer?: 'sgd' | 'adam';
  /** SGD momentum. Default 0.9 (the paper's). */
  momentum?: number;
  /** γ of λ_p = 2 / (1 + exp(−γp)) − 1. Default 10. */
  lambdaGamma?: number;
  /** The largest λ: λ = lambdaMax · λ_p. Default 1. */
  lambdaMax?: number;
  /** α, the weight of the CORAL loss. Default 1. */
  coralWeight?: number;
  seed?: number;
  /** Batch normalisation after each convolution of the default LeNet extractor. Default false. */
  batchNorm?: boolean;
  /**
   * With batch norm in the extractor, for dann, coral and adabn: normalise each domain with its own batch
   * statistics in training and predict on the target with the target's (AdaBN). Default true; false mixes
   * both halves in one batch (not for adabn, which is per-domain statistics, nor source-only, which uses none).
   */
  perDomainStatistics?: boolean;
  /** Network shape (the extractor defaults to the LeNet of the DANN paper for the images' shape). */
  network?: Partial<Omit<DannNetworkOptions, 'classes' | 'seed'>>;
  /** Called after every epoch (e.g. to print a progress line). */
  onEpoch?: (log: AdaptEpochLog) => void;
}

export interface AdaptEpochLog {
  epoch: number;
  labelLoss: number;
  domainLoss: number;
  coralLoss: number;
  sourceAccuracy: number;
  /** Accuracy of G_d on the training batches (both domains); 0.5 = the domains look alike to it. */
  domainAccuracy: number;
  targetAccuracy: number;
  /** λ and the learning rate at the epoch's last step. */
  lambda: number;
  lr: number;
  seconds: number;
}

export interface AdaptResult {
  history: AdaptEpochLog[];
  /** Predicted classes of `targetTest` after the last epoch. */
  targetPredictions: Int32Array;
  network: DannNetwork;
}

const OPTION_KEYS = ['method', 'epochs', 'batchSize', 'lr', 'lrSchedule', 'optimizer', 'momentum', 'lambdaGamma', 'lambdaMax', 'coralWeight', 'seed', 'batchNorm', 'perDomainStatistics', 'network', 'onEpoch'];

function checkSet(name: string, set: ImageSet, needLabels: boolean): number {
  const per = set.imageShape.reduce((a, b) => a * b, 1);
  if (!Number.isInteger(set.count) || set.count < 1 || set.images.length !== set.count * per) {
    throw new ShapeError(`adapt: ${name} has ${set.images.length} values; expected count ${set.count} × [${set.imageShape.join(', ')}].`);
  }
  if (needLabels && (!set.labels || set.labels.length !== set.count)) throw new ArgumentError(`adapt: ${name} needs ${set.count} labels.`);
  return per;
}

function gather(set: ImageSet, per: number, order: ArrayLike<number>, start: number, count: number): Float32Array {
  const out = new Float32Array(count * per);
  for (let i = 0; i < count; i++) {
    const k = order[start + i]!;
    out.set(set.images.subarray(k * per, (k + 1) * per), i * per);
  }
  return out;
}

/** Class predictions of the network for every image of `set`, in batches of `batchSize`. */
export async function predictClasses(net: DannNetwork, set: ImageSet, batchSize = 500): Promise<Int32Array> {
  const per = set.imageShape.reduce((a, b) => a * b, 1);
  const out = new Int32Array(set.count);
  for (let start = 0; start < set.count; start += batchSize) {
    const count = Math.min(batchSize, set.count - start);
    const logits = noGrad(() =>
      tidy(() => net.classifier.call(net.extractor.call(tensor(set.images.subarray(start * per, (start + count) * per), [count, ...set.imageShape]), { training: false }), { training: false })),
    );
    const v = await logits.floats();
    logits.dispose();
    out.set(argmaxRows(v, net.classes), start);
  }
  return out;
}

/**
 * AdaBN: sets the extractor's batch-norm moving statistics to those of `set` (the unlabelled target training
 * images), so that predicting on the target normalises it as training did (src/nn/batchnorm-statistics.ts).
 */
export function useDomainStatistics(net: DannNetwork, set: ImageSet, batchSize = 250): void {
  const per = set.imageShape.reduce((a, b) => a * b, 1);
  // Whole batches only (a short last batch would weigh as much as a full one); one short batch if that is all.
  const count = Math.min(batchSize, set.count);
  function* batches() {
    for (let start = 0; start + count <= set.count; start += count) {
      yield tensor(set.images.subarray(start * per, (start + count) * per), [count, ...set.imageShape]);
    }
  }
  recomputeBatchNormStatistics(net.extractor, batches());
}

export function accuracyOf(predictions: Int32Array, labels: Int32Array): number {
  let hits = 0;
  for (let i = 0; i < labels.length; i++) if (predictions[i] === labels[i]) hits++;
  return hits / labels.length;
}

export async function adapt(source: ImageSet, target: ImageSet, targetTest: ImageSet, options: AdaptOptions): Promise<AdaptResult> {
  for (const k of Object.keys(options)) if (!OPTION_KEYS.includes(k)) throw new ArgumentError(`adapt: unknown option '${k}'; the options are ${OPTION_KEYS.join(', ')}.`);
  const { method, epochs, batchSize = 128, lrSchedule = true, optimizer: optName = 'sgd', momentum = 0.9, lambdaGamma = 10, lambdaMax = 1, coralWeight = 1, seed = 0 } = options;
  if (!ADAPT_METHODS.includes(method)) throw new ArgumentError(`adapt: unknown method '${method}' (known: ${ADAPT_METHODS.join(', ')}).`);
  if (!Number.isInteger(epochs) || epochs < 1) throw new ArgumentError(`adapt: epochs must be a positive integer; got ${epochs}.`);
  if (!Number.isInteger(batchSize) || batchSize < 4 || batchSize % 2 !== 0) throw new ArgumentError(`adapt: batchSize must be an even integer ≥ 4 (half source, half target); got ${batchSize}.`);
  if (optName !== 'sgd' && optName !== 'adam') throw new ArgumentError(`adapt: optimizer must be 'sgd' or 'adam'; got '${optName}'.`);
  const lr0 = options.lr ?? (optName === 'sgd' ? 0.01 : 0.001);
  if (!(lr0 > 0)) throw new ArgumentError(`adapt: lr must be positive; got ${lr0}.`);
  if (method === 'adabn' && options.batchNorm !== true && !options.network?.extractor) {
    throw new ArgumentError("adapt: method 'adabn' adapts through batch-norm statistics; it needs batchNorm: true (an extractor with batch normalisation).");
  }
  if (options.perDomainStatistics !== undefined && (method === 'source-only' || method === 'adabn')) {
    throw new ArgumentError(`adapt: perDomainStatistics is for dann and coral; ${method === 'adabn' ? 'adabn always normalises each domain with its own statistics' : 'source-only uses no statistics of the target'}.`);
  }
  const per = checkSet('source', source, true);
  checkSet('target', target, false);
  checkSet('targetTest', targetTest, true);
  for (const [name, s] of [['target', target], ['targetTest', targetTest]] as const) {
    if (s.imageShape.join() !== source.imageShape.join()) {
      throw new ShapeError(`adapt: ${name} images are [${s.imageShape.join(', ')}] but source images are [${source.imageShape.join(', ')}]; resize one domain first.`);
    }
  }
  let classes = 0;
  for (const l of source.labels!) classes = Math.max(classes, l + 1);
  for (const l of targetTest.labels!) classes = Math.max(classes, l + 1);

  const net = buildDannNetwork({
    extractor: { inputShape: source.imageShape, batchNorm: options.batchNorm ?? false },
    ...options.network,
    classes,
    seed,
    perDomainStatistics: options.perDomainStatistics,
  });
  if (method === 'adabn' && !net.perDomainStatistics) {
    disposeDannNetwork(net);
    throw new ArgumentError("adapt: method 'adabn' needs an extractor with trainable batch normalisation.");
  }
  // source-only: the target is seen only as a model trained on the source would see it (see the header).
  const targetInInferenceMode = method === 'source-only';
  const params = dannParameters(net);
  const optimizer = optName === 'sgd' ? new SGD(params, { lr: lr0, momentum }) : new Adam(params, { lr: lr0 });

  const half = Math.min(batchSize / 2, source.count, target.count);
  const stepsPerEpoch = Math.max(1, Math.floor(source.count / half));
  const totalSteps = epochs * stepsPerEpoch;
  const domainLabels = new Float32Array(2 * half).fill(1, half);
  let targetOrder = permutation(target.count, (seed * 7919 + 13) >>> 0);
  let targetAt = 0;
  let targetRound = 0;
  const history: AdaptEpochLog[] = [];
  let predictions: Int32Array = new Int32Array(0);
  let step = 0;
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const started = performance.now();
      const order = permutation(source.count, (seed * 100_003 + epoch) >>> 0);
      let totals: Tensor | null = null;
      let lambda = 0;
      let lr = lr0;
      for (let s = 0; s < stepsPerEpoch; s++, step++) {
        const progress = step / totalSteps;
        lambda = method === 'dann' ? lambdaMax * dannLambda(progress, lambdaGamma) : 0;
        lr = lrSchedule ? dannLearningRate(progress, lr0) : lr0;
        net.reversal.lambda = lambda;
        optimizer.learningRate = lr;
        if (targetAt + half > target.count) {
          targetOrder = permutation(target.count, (seed * 7919 + 13 + ++targetRound) >>> 0);
          targetAt = 0;
        }
        const xs = gather(source, per, order, s * half, half);
        const xt = gather(target, per, targetOrder, targetAt, half);
        targetAt += half;
        const ys = new Int32Array(half);
        const hot = new Float32Array(half * classes);
        for (let i = 0; i < half; i++) {
          ys[i] = source.labels![order[s * half + i]!]!;
          hot[i * classes + ys[i]!] = 1;
        }
        const stats = tidy(() => {
          const batch: AdaptBatch = {
            xs: tensor(xs, [half, ...source.imageShape]),
            ys: tensor(ys, [half], 'i32'),
            ysHot: tensor(hot, [half, classes]),
            xt: tensor(xt, [half, ...source.imageShape]),
          };
          const domainTargets = tensor(domainLabels, [2 * half, 1]);
          optimizer.zeroGrad();
          const l = method === 'coral' ? coralLosses(net, batch, domainTargets, coralWeight) : dannLosses(net, batch, domainTargets, true, targetInInferenceMode);
          backward(l.total);
          optimizer.step();
          return noGrad(() => {
            const coral = 'coral' in l ? (l.coral as Tensor) : tensor([0], [1]);
            const row = concat([l.label, l.domain, coral, l.sourceCorrect, l.domainCorrect].map((t) => reshape(t, [1])), 0);
            return totals ? add(totals, row) : row;
          });
        });
        totals?.dispose();
        totals = stats;
      }
      optimizer.zeroGrad();
      const sums = await totals!.floats();
      totals!.dispose();
      if (net.perDomainStatistics && !targetInInferenceMode) useDomainStatistics(net, target);
      predictions = await predictClasses(net, targetTest);
      const log: AdaptEpochLog = {
        epoch: epoch + 1,
        labelLoss: sums[0]! / stepsPerEpoch,
        domainLoss: sums[1]! / stepsPerEpoch,
        coralLoss: sums[2]! / stepsPerEpoch,
        sourceAccuracy: sums[3]! / (stepsPerEpoch * half),
        domainAccuracy: sums[4]! / (stepsPerEpoch * 2 * half),
        targetAccuracy: accuracyOf(predictions, targetTest.labels!),
        lambda,
        lr,
        seconds: (performance.now() - started) / 1000,
      };
      history.push(log);
      options.onEpoch?.(log);
    }
  } finally {
    optimizer.dispose();
  }
  return { history, targetPredictions: predictions, network: net };
}
