/**
 * Core layers: Dense, Activation, Flatten and Add, with Keras's names, defaults and weight keys.
 */
import { ArgumentError, ShapeError } from '../../errors.js';
import { type Shape, type Tensor, shapeStr } from '../../tensor/tensor.js';
import { add, dense, relu, sigmoid, softmax, tanh, reshape, flatten, glorotUniform, zeros } from '../../ops/index.js';
import { type CallOptions, Layer, type LayerConfig, type Weight } from '../layer.js';
import { denseRunsInHalf } from '../../ops/matmul.js';
import { weightLike } from '../precision.js';

export type ActivationName = 'linear' | 'relu' | 'sigmoid' | 'tanh' | 'softmax';
const ACTIVATIONS: readonly ActivationName[] = ['linear', 'relu', 'sigmoid', 'tanh', 'softmax'];

export function checkActivation(layer: string, a: string | undefined): ActivationName {
  const name = (a ?? 'linear') as ActivationName;
  if (!ACTIVATIONS.includes(name)) throw new ArgumentError(`${layer}: unknown activation '${a}' (known: ${ACTIVATIONS.join(', ')}).`);
  return name;
}

export function applyActivation(x: Tensor, a: ActivationName): Tensor {
  switch (a) {
    case 'linear': return x;
    case 'relu': return relu(x);
    case 'sigmoid': return sigmoid(x);
    case 'tanh': return tanh(x);
    case 'softmax': return softmax(x, -1);
  }
}

/** The activation a call applies: a softmax is left out when the caller asked for logits. */
export function outputActivation(a: ActivationName, options: CallOptions): ActivationName {
  return a === 'softmax' && options.logits ? 'linear' : a;
}

/** A deterministic default seed per layer, so that a model built twice gets the same initial weights. */
export function seedFor(name: string, salt = 0): number {
  let h = 2166136261 ^ salt;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return h >>> 0;
}

export interface DenseConfig extends LayerConfig {
  units: number;
  activation?: ActivationName;
  useBias?: boolean;
  /** Seed of the Glorot-uniform kernel initialiser (Keras's default); defaults to a hash of the layer name. */
  seed?: number;
}

export class Dense extends Layer {
  readonly className = 'Dense';
  readonly units: number;
  readonly activation: ActivationName;
  readonly useBias: boolean;
  private readonly seed: number | undefined;
  kernel: Weight | null = null;
  bias: Weight | null = null;

  constructor(config: DenseConfig) {
    super(config, 'dense');
    if (!Number.isInteger(config.units) || config.units <= 0) throw new ArgumentError(`${this.name}: units must be a positive integer, got ${config.units}.`);
    this.units = config.units;
    this.activation = checkActivation(this.name, config.activation);
    this.useBias = config.useBias ?? true;
    this.seed = config.seed;
  }

  protected override build([shape]: Shape[]): void {
    const inFeatures = shape![shape!.length - 1]!;
    this.kernel = this.addWeight('kernel', glorotUniform([inFeatures, this.units], this.seed ?? seedFor(this.name)));
    if (this.useBias) this.bias = this.addWeight('bias', zeros([this.units]));
  }

  computeOutputShape([shape]: Shape[]): Shape {
    if (!shape || shape.length < 1) throw new ShapeError(`${this.name}: Dense needs an input with a feature axis, got ${shapeStr(shape ?? [])}.`);
    const inFeatures = shape[shape.length - 1]!;
    if (this.kernel && this.kernel.value.shape[0] !== inFeatures) {
      throw new ShapeError(`${this.name}: expected ${this.kernel.value.shape[0]} input features, got ${inFeatures} (input shape ${shapeStr(shape)}).`);
    }
    return [...shape.slice(0, -1), this.units];
  }

  override runsInHalf(options: CallOptions): boolean {
    return outputActivation(this.activation, options) !== 'softmax' && denseRunsInHalf(this.units);
  }

  protected forward([x]: Tensor[], options: CallOptions): Tensor {
    const rows = x!.rank === 2 ? x! : reshape(x!, [-1, x!.shape[x!.rank - 1]!]);
    const fused = this.activation === 'relu' ? 'relu' : 'none';
    let y = dense(rows, weightLike(this.kernel!.value, x!), this.bias ? weightLike(this.bias.value, x!) : null, fused);
    if (x!.rank !== 2) y = reshape(y, [...x!.shape.slice(0, -1), this.units]);
    return fused === 'relu' ? y : applyActivation(y, outputActivation(this.activation, options));
  }

  override getConfig(): Record<string, unknown> {
    return { ...super.getConfig(), units: this.units, activation: this.activation, useBias: this.useBias };
  }
}

export class Activation extends Layer {
  readonly className = 'Activation';
  readonly activation: ActivationName;
  constructor(config: LayerConfig & { activation: ActivationName }) {
    super(config, 'activation');
    this.activation = checkActivation(this.name, config.activation);
  }
  computeOutputShape([shape]: Shape[]): Shape {
    return shape!;
  }
  override runsInHalf(options: CallOptions): boolean {
    return outputActivation(this.activation, options) !== 'softmax';
  }
  protected forward([x]: Tensor[], options: CallOptions): Tensor {
    return applyActivation(x!, outputActivation(this.activation, options));
  }
}

/** [N, ...] → [N, prod(...)], in NHWC order (as Keras with channels_last); a view, no copy. */
export class Flatten extends Layer {
  readonly className = 'Flatten';
  constructor(config: LayerConfig = {}) {
    super(config, 'flatten');
  }
  computeOutputShape([shape]: Shape[]): Shape {
    return [shape!.reduce((a, b) => a * b, 1)];
  }
  override runsInHalf(): boolean {
    return true;
  }
  protected forward([x]: Tensor[]): Tensor {
    return flatten(x!);
  }
}

/** Elementwise sum of inputs of the same shape (ResNet's residual connections). */
export class Add extends Layer {
  readonly className = 'Add';
  constructor(config: LayerConfig = {}) {
    super(config, 'add');
  }
  override get arity(): 'many' {
    return 'many';
  }
  computeOutputShape(shapes: Shape[]): Shape {
    const first = shapes[0]!;
    shapes.forEach((s, i) => {
      if (s.length !== first.length || s.some((d, k) => d !== first[k])) {
        throw new ShapeError(`${this.name}: input ${i} has shape ${shapeStr(s)}, but input 0 has ${shapeStr(first)}; Add needs equal shapes.`);
      }
    });
    return first;
  }
  override runsInHalf(): boolean {
    return true;
  }
  protected forward(xs: Tensor[], _options: CallOptions): Tensor {
    let sum = add(xs[0]!, xs[1]!);
    for (const x of xs.slice(2)) {
      const next = add(sum, x);
      sum.dispose();
      sum = next;
    }
    return sum;
  }
}
