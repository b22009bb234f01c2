/**
 * Dropout (Keras): drops a fraction `rate` of its inputs in training, scaling the rest by 1/(1 − rate);
 * the identity at inference. Each training call draws a new mask: the op's seed is derived from the layer's
 * seed and a call counter, so a run is reproducible from its seeds.
 */
import { ArgumentError } from '../../errors.js';
import type { Shape, Tensor } from '../../tensor/tensor.js';
import { dropout } from '../../ops/index.js';
import { type CallOptions, Layer, type LayerConfig } from '../layer.js';
import { seedFor } from './core.js';

export class Dropout extends Layer {
  readonly className = 'Dropout';
  readonly rate: number;
  private readonly seed: number;
  private calls = 0;

  constructor(config: LayerConfig & { rate: number; seed?: number }) {
    super(config, 'dropout');
    if (!(config.rate >= 0 && config.rate < 1)) throw new ArgumentError(`${this.name}: rate must be in [0, 1), got ${config.rate}.`);
    this.rate = config.rate;
    this.seed = config.seed ?? seedFor(this.name);
  }

  override get variesInTraining(): boolean {
    return this.rate > 0;
  }

  computeOutputShape([shape]: Shape[]): Shape {
    return shape!;
  }

  /** In inference dropout is the identity, which any dtype can pass through. */
  override runsInHalf(options: CallOptions): boolean {
    return !options.training;
  }

  protected forward([x]: Tensor[], options: CallOptions): Tensor {
    if (!options.training || this.rate === 0) return dropout(x!, { rate: this.rate, seed: this.seed, training: false });
    // 2^21 calls per seed keep the derived seed an exact integer below 2^53.
    const seed = (this.seed % 2 ** 32) * 2 ** 21 + (this.calls++ % 2 ** 21);
    return dropout(x!, { rate: this.rate, seed, training: true });
  }
}
