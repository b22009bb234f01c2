/**
 * Pooling layers: MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D and GlobalMaxPooling2D (Keras).
 */
import type { Shape, Tensor } from '../../tensor/tensor.js';
import { type Pool2dOptions, avgPool2d, globalAveragePool2d, globalMaxPool2d, maxPool2d, poolGeometry } from '../../ops/index.js';
import { Layer, type LayerConfig } from '../layer.js';

export interface Pooling2DConfig extends LayerConfig {
  poolSize?: number | [number, number];
  strides?: number | [number, number];
  padding?: 'valid' | 'same';
}

abstract class Pooling2D extends Layer {
  readonly options: Pool2dOptions;
  constructor(config: Pooling2DConfig, base: string) {
    super(config, base);
    this.options = { poolSize: config.poolSize ?? 2, padding: config.padding ?? 'valid' };
    if (config.strides !== undefined) this.options.strides = config.strides;
    poolGeometry(this.name, [1, 8, 8, 1], this.options); // validates the options now, not at the first call
  }
  computeOutputShape([shape]: Shape[]): Shape {
    const g = poolGeometry(this.name, [1, ...shape!], this.options);
    return [g.outHeight, g.outWidth, g.channels];
  }
}

export class MaxPooling2D extends Pooling2D {
  readonly className = 'MaxPooling2D';
  constructor(config: Pooling2DConfig = {}) {
    super(config, 'max_pooling2d');
  }
  override runsInHalf(): boolean {
    return true;
  }
  protected forward([x]: Tensor[]): Tensor {
    return maxPool2d(x!, this.options);
  }
}

export class AveragePooling2D extends Pooling2D {
  readonly className = 'AveragePooling2D';
  constructor(config: Pooling2DConfig = {}) {
    super(config, 'average_pooling2d');
  }
  override runsInHalf(): boolean {
    return true;
  }
  protected forward([x]: Tensor[]): Tensor {
    return avgPool2d(x!, this.options);
  }
}

export class GlobalAveragePooling2D extends Layer {
  readonly className = 'GlobalAveragePooling2D';
  constructor(config: LayerConfig = {}) {
    super(config, 'global_average_pooling2d');
  }
  computeOutputShape([shape]: Shape[]): Shape {
    return [shape![2]!];
  }
  override runsInHalf(): boolean {
    return true;
  }
  protected forward([x]: Tensor[]): Tensor {
    return globalAveragePool2d(x!);
  }
}

export class GlobalMaxPooling2D extends Layer {
  readonly className = 'GlobalMaxPooling2D';
  constructor(config: LayerConfig = {}) {
    super(config, 'global_max_pooling2d');
  }
  computeOutputShape([shape]: Shape[]): Shape {
    return [shape![2]!];
  }
  override runsInHalf(): boolean {
    return true;
  }
  protected forward([x]: Tensor[]): Tensor {
    return globalMaxPool2d(x!);
  }
}
