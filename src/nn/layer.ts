/**
 * Layers: named, stateful building blocks with weights, in the manner of Keras.
 *
 * A layer owns its weights (`addWeight`), creates them lazily from the first input shape it sees (`build`),
 * and computes its output with ops from src/ops (`forward`). It can be called two ways:
 *
 *   - eagerly, on tensors: `layer.call(x, {training})`, which returns a tensor;
 *   - symbolically, on SymbolicTensors, to wire a functional model: `layer.apply(x)` (src/nn/model.ts runs it).
 *
 * Trainability. `layer.trainable = false` freezes every weight of the layer and of its sublayers: their tensors
 * stop requiring grad, so the next forward pass records no gradient for them and an optimizer never sees a
 * gradient to apply. Nothing is recompiled; it takes effect at the next step. Weights that are never trainable
 * (BatchNorm's moving statistics) stay non-trainable whatever the flag says.
 *
 * Shapes exclude the batch dimension, as in Keras summaries: a Conv2D's output shape is [H, W, C].
 */
import { ArgumentError, ShapeError } from '../errors.js';
import { type Shape, type Tensor, shapeStr } from '../tensor/tensor.js';
import { releaseHalf } from './precision.js';

export interface CallOptions {
  /** Training mode: dropout drops, and unfrozen BatchNorm uses batch statistics. */
  training: boolean;
  /**
   * Return logits: a layer whose activation is softmax leaves the softmax out. A model passes this only to
   * the layer that produces its output (inner softmaxes, if any, still run). Losses take logits because
   * log-sum-exp is exact where −log(softmax) underflows (see src/train/fit.ts).
   */
  logits?: boolean;
  /**
   * Set by the model executor on a BatchNormalization whose output only a ReLU reads: the layer applies the
   * ReLU itself, and the executor skips the Activation (src/nn/relu-fusion.ts). Other layers ignore it.
   */
  fusedRelu?: boolean;
}

/** A weight of a layer: `name` is local (`kernel`, `bias`, `gamma`, `moving_mean`); its key is `layer/name`. */
export class Weight {
  constructor(
    readonly layer: Layer,
    readonly name: string,
    public value: Tensor,
    /** False for state that is never trained (BatchNorm's moving statistics). */
    readonly trainable: boolean,
  ) {}

  /** The Keras weight key, e.g. `conv1_conv/kernel`. */
  get key(): string {
    return `${this.layer.name}/${this.name}`;
  }

  /** Replaces the value (e.g. when loading weights); the shape must match and the old tensor is disposed. */
  assign(t: Tensor): void {
    if (t.shape.length !== this.value.shape.length || t.shape.some((d, i) => d !== this.value.shape[i])) {
      throw new ShapeError(`${this.key}: expected shape ${shapeStr(this.value.shape)}, got ${shapeStr(t.shape)}.`);
    }
    const requiresGrad = this.value.requiresGrad;
    this.value.dispose();
    t.keep();
    t.name = this.key;
    t.requiresGrad = requiresGrad;
    this.value = t;
  }
}

const nameCounts = new Map<string, number>();

/** Keras-style unique default names: `dense`, `dense_1`, `dense_2`, … */
export function uniqueName(base: string): string {
  const n = nameCounts.get(base) ?? 0;
  nameCounts.set(base, n + 1);
  return n === 0 ? base : `${base}_${n}`;
}

/** Keras's snake_case of a class name: Conv2D → conv2d, BatchNormalization → batch_normalization. */
export function snakeCase(className: string): string {
  return className
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase();
}

export interface LayerConfig {
  name?: string;
  trainable?: boolean;
}

/**
 * A placeholder for a tensor in a functional model: it has a shape (batch excluded) and remembers which layer
 * call produced it. Models are built by applying layers to SymbolicTensors, starting from `input(shape)`.
 */
export class SymbolicTensor {
  constructor(
    readonly shape: Shape,
    /** The layer call that produces this tensor (for an input, the InputLayer's own node). */
    readonly layer: Layer,
    readonly nodeIndex: number,
  ) {}

  get node(): LayerNode {
    return this.layer.nodes[this.nodeIndex]!;
  }

  toString(): string {
    return `SymbolicTensor(${shapeStr(this.shape)} from ${this.layer.name})`;
  }
}

/** One call of a layer in a functional graph: its symbolic inputs and output. */
export interface LayerNode {
  inputs: SymbolicTensor[];
  output: SymbolicTensor;
}

export abstract class Layer {
  readonly name: string;
  /** The Keras class name, shown by summary(). */
  abstract readonly className: string;
  protected own: Weight[] = [];
  private trainableFlag: boolean;
  built = false;
  /** Calls of this layer in functional graphs, in the order they were made. */
  readonly nodes: LayerNode[] = [];

  constructor(config: LayerConfig = {}, defaultBase?: string) {
    if (config.name !== undefined && (typeof config.name !== 'string' || config.name === '' || config.name.includes('/'))) {
      throw new ArgumentError(`Layer name must be a non-empty string without '/', got ${JSON.stringify(config.name)}.`);
    }
    this.name = config.name ?? uniqueName(defaultBase ?? snakeCase(new.target.name));
    this.trainableFlag = config.trainable ?? true;
  }

  /** Layers nested inside this one (a model's layers). */
  sublayers(): Layer[] {
    return [];
  }

  get trainable(): boolean {
    return this.trainableFlag;
  }

  set trainable(value: boolean) {
    this.trainableFlag = value;
    for (const w of this.own) w.value.requiresGrad = value && w.trainable;
    for (const l of this.sublayers()) l.trainable = value;
  }

  /** Creates a weight, kept out of tidy() scopes and named by its Keras key. */
  protected addWeight(name: string, value: Tensor, trainable = true): Weight {
    if (this.own.some((w) => w.name === name)) throw new ArgumentError(`${this.name}: weight '${name}' already exists.`);
    const w = new Weight(this, name, value.keep(), trainable);
    value.name = w.key;
    value.requiresGrad = this.trainableFlag && trainable;
    this.own.push(w);
    return w;
  }

  /** This layer's own weights and those of its sublayers, each once. */
  get weights(): Weight[] {
    const seen = new Set<Weight>(this.own);
    for (const l of this.sublayers()) for (const w of l.weights) seen.add(w);
    return [...seen];
  }

  get trainableWeights(): Weight[] {
    return this.weights.filter((w) => w.trainable && w.layer.trainable);
  }

  get nonTrainableWeights(): Weight[] {
    return this.weights.filter((w) => !(w.trainable && w.layer.trainable));
  }

  /** The parameters an optimizer should update: the tensors of the trainable weights. */
  trainableParameters(): Tensor[] {
    return this.trainableWeights.map((w) => w.value);
  }

  countParams(): number {
    return this.weights.reduce((n, w) => n + w.value.size, 0);
  }

  getWeight(name: string): Weight {
    const w = this.own.find((x) => x.name === name);
    if (!w) throw new ArgumentError(`${this.name} has no weight '${name}' (it has: ${this.own.map((x) => x.name).join(', ') || 'none'}).`);
    return w;
  }

  /** Creates the weights for inputs of these shapes (batch excluded). Called once, before the first forward. */
  protected build(_inputShapes: Shape[]): void {}

  /** Output shape (batch excluded) for inputs of these shapes; also validates them. */
  abstract computeOutputShape(inputShapes: Shape[]): Shape;

  /** The computation, on real tensors whose first dimension is the batch. */
  protected abstract forward(inputs: Tensor[], options: CallOptions): Tensor;

  /**
   * True when a training-mode call is not a fixed function of its input: it draws random numbers (Dropout)
   * or normalises with the batch's statistics (an unfrozen BatchNormalization). Feature caching
   * (src/train/feature-cache.ts) only caches through layers for which this is false.
   */
  get variesInTraining(): boolean {
    return false;
  }

  /** Number of inputs the layer takes; `Add` and `Concatenate` take several. */
  get arity(): number | 'many' {
    return 1;
  }

  ensureBuilt(inputShapes: Shape[]): void {
    if (this.built) return;
    this.build(inputShapes);
    this.built = true;
  }

  /** Symbolic call: wires this layer into a functional graph and returns its symbolic output. */
  apply(inputs: SymbolicTensor | SymbolicTensor[]): SymbolicTensor {
    const list = Array.isArray(inputs) ? inputs : [inputs];
    this.checkArity(list.length);
    const shapes = list.map((t) => t.shape);
    this.ensureBuilt(shapes);
    const output = new SymbolicTensor(this.computeOutputShape(shapes), this, this.nodes.length);
    this.nodes.push({ inputs: list, output });
    return output;
  }

  /** The output of this layer's only call in a functional graph (as Keras's `layer.output`). */
  get output(): SymbolicTensor {
    if (this.nodes.length !== 1) {
      throw new ArgumentError(`${this.name}.output: the layer has been called ${this.nodes.length} times; it needs exactly one call.`);
    }
    return this.nodes[0]!.output;
  }

  /** Eager call on tensors. */
  call(inputs: Tensor | Tensor[], options: CallOptions = { training: false }): Tensor {
    const list = Array.isArray(inputs) ? inputs : [inputs];
    this.checkArity(list.length);
    const shapes = list.map((t) => t.shape.slice(1));
    this.ensureBuilt(shapes);
    this.computeOutputShape(shapes); // validates
    return this.forward(list, options);
  }

  /**
   * Whether this call can run with f16 activations and weights (src/nn/precision.ts): every kernel its
   * forward pass uses accepts f16 storage. The model also asks that the call need no gradient.
   */
  runsInHalf(_options: CallOptions): boolean {
    return false;
  }

  /** Runs `forward` for a model that has already validated shapes symbolically. */
  runNode(inputs: Tensor[], options: CallOptions): Tensor {
    return this.forward(inputs, options);
  }

  protected checkArity(n: number): void {
    const a = this.arity;
    if (a === 'many' ? n < 2 : n !== a) {
      throw new ArgumentError(`${this.name} (${this.className}) takes ${a === 'many' ? 'two or more inputs' : `${a} input`}, got ${n}.`);
    }
  }

  /** Keras-style config for summary/serialisation; subclasses add their options. */
  getConfig(): Record<string, unknown> {
    return { name: this.name, trainable: this.trainable };
  }

  dispose(): void {
    for (const w of this.own) {
      releaseHalf(w.value);
      w.value.dispose();
    }
    this.own = [];
    this.built = false;
  }
}
