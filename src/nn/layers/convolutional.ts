/**
 * Convolution and padding layers: Conv2D and ZeroPadding2D, with Keras's names, defaults and weight keys
 * (`<name>/kernel` in HWIO layout, `<name>/bias`).
 */
import { ArgumentError } from '../../errors.js';
import type { Shape, Tensor } from '../../tensor/tensor.js';
import { type ConvPadding, conv2d, conv2dGeometry, glorotUniform, zeroPadding2d, zeros } from '../../ops/index.js';
import { resolveZeroPadding, type ZeroPadding2dSpec } from '../../ops/padding.js';
import { convRunsInHalf } from '../../ops/conv-kernels.js';
import { Layer, type LayerConfig, type Weight } from '../layer.js';
import { type ActivationName, applyActivation, checkActivation, seedFor } from './core.js';
import { releaseFolded } from '../folding.js';
import { weightLike } from '../precision.js';

export interface Conv2DConfig extends LayerConfig {
  filters: number;
  kernelSize: number | [number, number];
  strides?: number | [number, number];
  /** 'valid', 'same' (TF's rule), or explicit [[top, bottom], [left, right]] (for torchvision-style padding). */
  padding?: ConvPadding;
  activation?: ActivationName;
  useBias?: boolean;
  seed?: number;
}

/** `v` as [height, width]: one positive integer for both, or a pair of them; `what` names it in the error. */
function pairOf(layer: string, what: string, v: number | [number, number]): [number, number] {
  const pair: unknown = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((n) => Number.isInteger(n) && n >= 1)) {
    throw new ArgumentError(`${layer}: ${what} must be a positive integer or a pair [height, width] of them, got ${JSON.stringify(v) ?? String(v)}.`);
  }
  return pair as [number, number];
}

export class Conv2D extends Layer {
  readonly className = 'Conv2D';
  readonly filters: number;
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly padding: ConvPadding;
  readonly activation: ActivationName;
  readonly useBias: boolean;
  private readonly seed: number | undefined;
  kernel: Weight | null = null;
  bias: Weight | null = null;

  constructor(config: Conv2DConfig) {
    super(config, 'conv2d');
    if (!Number.isInteger(config.filters) || config.filters <= 0) {
      throw new ArgumentError(`${this.name}: filters must be a positive integer, got ${config.filters}.`);
    }
    this.filters = config.filters;
    this.kernelSize = pairOf(this.name, 'kernelSize', config.kernelSize);
    this.strides = pairOf(this.name, 'strides', config.strides ?? 1);
    this.padding = config.padding ?? 'valid';
    const p = this.padding;
    const explicit = Array.isArray(p) && p.length === 2 && p.every((q) => Array.isArray(q) && q.length === 2 && q.every((n) => Number.isInteger(n) && n >= 0));
    if (p !== 'valid' && p !== 'same' && !explicit) {
      throw new ArgumentError(`${this.name}: padding must be 'valid', 'same' or [[top, bottom], [left, right]], got ${JSON.stringify(p)}.`);
    }
    this.activation = checkActivation(this.name, config.activation);
    this.useBias = config.useBias ?? true;
    this.seed = config.seed;
  }

  protected override build([shape]: Shape[]): void {
    const cin = shape![shape!.length - 1]!;
    const [kh, kw] = this.kernelSize;
    this.kernel = this.addWeight('kernel', glorotUniform([kh, kw, cin, this.filters], this.seed ?? seedFor(this.name)));
    if (this.useBias) this.bias = this.addWeight('bias', zeros([this.filters]));
  }

  computeOutputShape([shape]: Shape[]): Shape {
    const g = conv2dGeometry(this.name, [1, ...shape!], this.kernel!.value.shape, { strides: this.strides, padding: this.padding });
    return [g.OH, g.OW, g.F];
  }

  override runsInHalf(): boolean {
    return this.activation !== 'softmax' && convRunsInHalf(this.filters);
  }

  protected forward([x]: Tensor[]): Tensor {
    const fused = this.activation === 'relu';
    const y = conv2d(x!, weightLike(this.kernel!.value, x!), {
      strides: this.strides,
      padding: this.padding,
      bias: this.bias ? weightLike(this.bias.value, x!) : null,
      activation: fused ? 'relu' : 'none',
    });
    return fused ? y : applyActivation(y, this.activation);
  }

  /** Also frees the folded kernel and bias kept for BatchNorm folding (src/nn/folding.ts). */
  override dispose(): void {
    releaseFolded(this);
    super.dispose();
  }

  override getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), filters: this.filters, kernelSize: this.kernelSize, strides: this.strides, padding: this.padding, activation: this.activation, useBias: this.useBias };
  }
}

export class ZeroPadding2D extends Layer {
  readonly className = 'ZeroPadding2D';
  readonly padding: ZeroPadding2dSpec;
  constructor(config: LayerConfig & { padding?: ZeroPadding2dSpec } = {}) {
    super(config, 'zero_padding2d');
    this.padding = config.padding ?? 1;
    resolveZeroPadding(this.padding); // validates
  }
  computeOutputShape([shape]: Shape[]): Shape {
    const p = resolveZeroPadding(this.padding);
    return [shape![0]! + p.top + p.bottom, shape![1]! + p.left + p.right, shape![2]!];
  }
  override runsInHalf(): boolean {
    return true;
  }
  protected forward([x]: Tensor[]): Tensor {
    return zeroPadding2d(x!, this.padding);
  }
}
