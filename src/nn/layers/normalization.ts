/**
 * BatchNormalization, as Keras's `BatchNormalization(axis=-1)`: it normalises channels-last input ([N, C],
 * NHWC, or any [N, ..., C]) with the `batchNorm` op of src/ops/batchnorm.ts. Its weights, created by
 * `build()` from the last dimension of the first input it sees, are Keras's, in Keras's order and with
 * Keras's keys: `<name>/gamma` (scale, trainable, starts at 1), `<name>/beta` (shift, trainable, 0),
 * `<name>/moving_mean` (0) and `<name>/moving_variance` (1); the moving statistics are state, never
 * trained by gradients, so they count as non-trainable weights.
 *
 *   const bn = new BatchNormalization({ name: 'conv1_bn', epsilon: 1.001e-5 });
 *   const y = bn.call(x, { training: true });   // batch statistics; the moving statistics are updated
 *   bn.trainable = false;                       // freeze: inference mode from now on, whatever `training` says
 *
 * THE KERAS RULE FOR FROZEN LAYERS. When `trainable` is false the layer ALWAYS runs in inference mode,
 * even when called with `training: true`: it normalises with its moving statistics and does not update
 * them. This is Keras's behaviour since TF 2.0, and it is what makes fine-tuning work. A pretrained base
 * (say ResNet50 on ImageNet) is frozen, a new head is trained on a small dataset, and later part of the
 * base is unfrozen to fine-tune. If a frozen layer still normalised with the statistics of each small,
 * differently distributed batch, every activation after it would shift away from what the pretrained
 * weights downstream were trained to expect, and the first steps would wreck the features; updating the
 * moving statistics would carry the damage into inference. (See Keras's transfer-learning guide, "about
 * BatchNormalization".) While frozen, γ and β also do not require grad, so they get no gradient, and
 * they are listed among the layer's `nonTrainableWeights`, as Keras lists them.
 *
 * Freezing works at any level: `bn.trainable = false`, or `model.trainable = false` on a model containing
 * the layer (Layer's setter propagates to sublayers). Flipping `trainable` takes effect at the next call and
 * compiles nothing: the mode is chosen per call in `forward`, and γ/β's `requiresGrad` is switched at once
 * by Layer's setter. A graph recorded before the switch is unaffected by it.
 *
 * FINE-TUNING: `inferenceMode = true` keeps an UNFROZEN layer in inference mode too: γ and β train, the
 * moving statistics are used as they are and never updated. This is Keras's advice of calling the base with
 * `training=False` when part of it is unfrozen, and `fineTune` (src/train/transfer.ts) sets it on every
 * BatchNormalization of the base, so fine-tuning at a low rate cannot disturb the pretrained statistics.
 *
 * `setWeights` loads pretrained values into the existing tensors (so an optimizer holding them keeps
 * working), in Keras's order [gamma, beta, moving_mean, moving_variance], skipping γ/β when `scale`/`center`
 * is false. The layer's tensors are kept (they survive `tidy`) and belong to it until `dispose()`; a
 * disposed layer throws rather than silently rebuilding fresh weights.
 */
import { ArgumentError, DisposedError, ShapeError } from '../../errors.js';
import { type TensorData, write } from '../../tensor/create.js';
import { type Shape, type Tensor, shapeStr } from '../../tensor/tensor.js';
import { batchNorm, full } from '../../ops/index.js';
import { type CallOptions, Layer, type LayerConfig, type Weight } from '../layer.js';
import { weightLike } from '../precision.js';

export interface BatchNormalizationConfig extends LayerConfig {
  /** Added to the variance. Default 1e-3 (Keras's default and the TF.js ResNet50's; Keras's ResNet50 uses 1.001e-5). */
  epsilon?: number;
  /** Keras convention: moving = moving·momentum + batch·(1 − momentum). Default 0.99. */
  momentum?: number;
  /** Learn β (Keras's `center`). Default true. */
  center?: boolean;
  /** Learn γ (Keras's `scale`). Default true. */
  scale?: boolean;
}

export class BatchNormalization extends Layer {
  readonly className = 'BatchNormalization';
  readonly epsilon: number;
  readonly momentum: number;
  readonly center: boolean;
  readonly scale: boolean;
  /** Scale, [C]; null before build and when `scale: false`. */
  gamma: Weight | null = null;
  /** Shift, [C]; null before build and when `center: false`. */
  beta: Weight | null = null;
  movingMean: Weight | null = null;
  movingVariance: Weight | null = null;
  /** Always normalise with the moving statistics, even when trainable and called with `training: true`. */
  inferenceMode = false;
  /**
   * When set, replaces `momentum` in the moving-statistics update; `recomputeBatchNormStatistics`
   * (src/nn/batchnorm-statistics.ts) sets it to k/(k+1) for the k-th batch to make a cumulative average.
   */
  momentumOverride: number | null = null;
  private disposed = false;

  constructor(config: BatchNormalizationConfig = {}) {
    super(config, 'batch_normalization');
    this.epsilon = config.epsilon ?? 1e-3;
    this.momentum = config.momentum ?? 0.99;
    this.center = config.center ?? true;
    this.scale = config.scale ?? true;
    if (typeof this.epsilon !== 'number' || !(this.epsilon > 0) || !Number.isFinite(this.epsilon)) {
      throw new ArgumentError(`${this.name}: epsilon must be a finite number > 0, got ${this.epsilon}.`);
    }
    if (typeof this.momentum !== 'number' || !(this.momentum >= 0 && this.momentum <= 1)) {
      throw new ArgumentError(`${this.name}: momentum must be in [0, 1], got ${this.momentum}.`);
    }
  }

  /** In training mode an unfrozen layer normalises with the batch's statistics. */
  override get variesInTraining(): boolean {
    return this.trainable && !this.inferenceMode;
  }

  /** Number of channels (the input's last dimension); null before the layer is built. */
  get channels(): number | null {
    return this.movingMean?.value.shape[0] ?? null;
  }

  protected override build([shape]: Shape[]): void {
    this.assertAlive('build');
    const channels = this.channelsOf(shape!);
    const filled = (value: number) => full([channels], value);
    if (this.scale) this.gamma = this.addWeight('gamma', filled(1));
    if (this.center) this.beta = this.addWeight('beta', filled(0));
    this.movingMean = this.addWeight('moving_mean', filled(0), false);
    this.movingVariance = this.addWeight('moving_variance', filled(1), false);
  }

  computeOutputShape([shape]: Shape[]): Shape {
    const channels = this.channelsOf(shape!);
    if (this.channels !== null && channels !== this.channels) {
      throw new ShapeError(`${this.name}: expected ${this.channels} channels (the last axis), got ${channels} (input shape ${shapeStr(shape!)}).`);
    }
    return shape!;
  }

  /** Whether this call normalises with the batch's statistics (and updates the moving ones). */
  private usesBatchStatistics(options: CallOptions): boolean {
    return options.training && this.variesInTraining;
  }

  /** With the moving statistics (inference, or frozen) it can; batch statistics are f32 only. */
  override runsInHalf(options: CallOptions): boolean {
    return !this.usesBatchStatistics(options);
  }

  /**
   * Normalises `x` ([N, ..., C]). `training: true` uses the batch statistics and updates the moving ones,
   * unless the layer is frozen or in `inferenceMode`, in which case it runs in inference mode (see above).
   * With `fusedRelu` (set by the model executor) the following ReLU is applied here too.
   */
  protected forward([x]: Tensor[], options: CallOptions): Tensor {
    this.assertAlive('call');
    const like = (w: Weight | null) => (w ? weightLike(w.value, x!) : null);
    return batchNorm(x!, {
      gamma: like(this.gamma),
      beta: like(this.beta),
      mean: like(this.movingMean)!,
      variance: like(this.movingVariance)!,
      epsilon: this.epsilon,
      momentum: this.momentumOverride ?? this.momentum,
      training: this.usesBatchStatistics(options),
      relu: options.fusedRelu === true,
    });
  }

  /** Loads weights in Keras's order [gamma, beta, moving_mean, moving_variance], skipping absent γ/β. */
  setWeights(arrays: TensorData[]): void {
    this.assertAlive('setWeights');
    const channels = this.channels;
    if (channels === null) {
      throw new ArgumentError(`${this.name}: setWeights before the layer is built; call the layer once on an input (or use it in a model) so that it knows its channels.`);
    }
    const targets = this.own;
    if (arrays.length !== targets.length) {
      throw new ArgumentError(`${this.name}: setWeights got ${arrays.length} arrays, expected ${targets.length} (${targets.map((w) => w.name).join(', ')}).`);
    }
    // Check every array before writing any, so a failed load leaves the layer as it was.
    targets.forEach((w, i) => {
      if (arrays[i]!.length !== channels) throw new ShapeError(`${w.key}: expected ${channels} values, got ${arrays[i]!.length}.`);
    });
    targets.forEach((w, i) => write(w.value, arrays[i]!));
  }

  override getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), epsilon: this.epsilon, momentum: this.momentum, center: this.center, scale: this.scale };
  }

  /** Frees the layer's tensors; the layer cannot be used afterwards. */
  override dispose(): void {
    super.dispose();
    this.gamma = this.beta = this.movingMean = this.movingVariance = null;
    this.disposed = true;
  }

  /** The channel count of an input shape (batch excluded); the layer needs a channel axis. */
  private channelsOf(shape: Shape): number {
    const channels = shape[shape.length - 1];
    if (channels === undefined || !(channels > 0)) {
      throw new ShapeError(`${this.name}: BatchNormalization needs an input [batch, ..., channels] with channels > 0, got [batch${shape.map((d) => `, ${d}`).join('')}].`);
    }
    return channels;
  }

  private assertAlive(what: string): void {
    if (this.disposed) throw new DisposedError(`${this.name}: ${what} after dispose().`);
  }
}
