/**
 * Functional models (a graph of layer calls, as Keras's `Model(inputs, outputs)`) and Sequential models.
 *
 *   const x = input([224, 224, 3]);
 *   const y = new Dense({ units: 10 }).apply(new Flatten().apply(x));
 *   const model = new Model({ inputs: x, outputs: y, name: 'tiny' });
 *   const logits = model.call(batch, { training: true });
 *
 * A model is itself a layer, so models nest. Its `layers` list follows Keras: the InputLayer first, then every
 * layer in the topological order of the graph; that is the order in which "the last N layers" are counted.
 *
 * Running the graph: each layer call consumes the tensors its inputs produced; an intermediate tensor is
 * disposed as soon as its last consumer has run. The autograd tape keeps its own references to whatever a
 * backward rule needs, so this frees every activation that training does not need during the forward pass.
 */
import { ArgumentError } from '../errors.js';
import { type Shape, type Tensor, shapeStr } from '../tensor/tensor.js';
import { type CallOptions, Layer, type LayerConfig, SymbolicTensor } from './layer.js';
import { type FoldedChain, foldingPays, planFolds, runFolded } from './folding.js';
import { planReluFusions } from './relu-fusion.js';
import { currentPrecision, sweepHalfCopies } from './precision.js';
import { cast } from '../ops/cast.js';
import { isGradEnabled } from '../autograd/tape.js';

/** The layer at the root of every functional graph: it holds the model's input shape. */
export class InputLayer extends Layer {
  readonly className = 'InputLayer';
  constructor(
    readonly inputShape: Shape,
    config: LayerConfig = {},
  ) {
    super(config, 'input_layer');
    if (inputShape.some((d) => !Number.isInteger(d) || d <= 0)) {
      throw new ArgumentError(`input: shape ${shapeStr(inputShape)} must be positive integers (the batch dimension excluded).`);
    }
    this.built = true;
    const out = new SymbolicTensor(inputShape, this, 0);
    this.nodes.push({ inputs: [], output: out });
  }

  computeOutputShape(): Shape {
    return this.inputShape;
  }

  protected forward(inputs: Tensor[]): Tensor {
    return inputs[0]!;
  }
}

/** A symbolic model input of `shape` (batch excluded), as Keras's `Input(shape=…)`. */
export function input(shape: Shape, name?: string): SymbolicTensor {
  return new InputLayer(shape, name === undefined ? {} : { name }).output;
}

interface Step {
  layer: Layer;
  node: number;
}

export interface ModelConfig extends LayerConfig {
  inputs: SymbolicTensor | SymbolicTensor[];
  outputs: SymbolicTensor;
}

export class Model extends Layer {
  readonly className: string = 'Functional';
  readonly inputs: SymbolicTensor[];
  readonly outputs: SymbolicTensor[];
  /** InputLayers first, then layers in topological order, each once. */
  readonly layers: Layer[];
  private readonly steps: Step[];

  constructor(config: ModelConfig) {
    super(config, 'model');
    this.inputs = Array.isArray(config.inputs) ? config.inputs : [config.inputs];
    this.outputs = [config.outputs];
    for (const i of this.inputs) {
      if (!(i.layer instanceof InputLayer)) throw new ArgumentError(`Model ${this.name}: inputs must come from input(), got ${i}.`);
    }
    this.steps = orderByDepth(this.topologicalSteps());
    const layers: Layer[] = [...this.inputs.map((i) => i.layer)];
    for (const s of this.steps) if (!layers.includes(s.layer)) layers.push(s.layer);
    this.layers = layers;
    this.built = true;
  }

  /** Layer calls from the inputs to the outputs, parents first, found without recursion. */
  private topologicalSteps(): Step[] {
    const key = (t: SymbolicTensor) => `${t.layer.name}#${t.nodeIndex}`;
    const inputKeys = new Set(this.inputs.map(key));
    const order: Step[] = [];
    const done = new Set<string>();
    const stack: Array<{ t: SymbolicTensor; expanded: boolean }> = this.outputs.map((t) => ({ t, expanded: false }));
    while (stack.length) {
      const top = stack.pop()!;
      const k = key(top.t);
      if (done.has(k)) continue;
      if (top.t.layer instanceof InputLayer) {
        if (!inputKeys.has(k)) throw new ArgumentError(`Model ${this.name}: the graph uses input '${top.t.layer.name}', which is not among the model's inputs.`);
        done.add(k);
        continue;
      }
      if (top.expanded) {
        done.add(k);
        order.push({ layer: top.t.layer, node: top.t.nodeIndex });
        continue;
      }
      stack.push({ t: top.t, expanded: true });
      for (const p of [...top.t.node.inputs].reverse()) if (!done.has(key(p))) stack.push({ t: p, expanded: false });
    }
    return order;
  }

  override sublayers(): Layer[] {
    return this.layers;
  }

  getLayer(name: string): Layer {
    const l = this.layers.find((x) => x.name === name);
    if (!l) {
      const names = this.layers.map((x) => x.name);
      const near = names.filter((n) => n.includes(name) || name.includes(n)).slice(0, 5);
      const some = names.length <= 8 ? names.join(', ') : `${names.slice(0, 8).join(', ')}, … and ${names.length - 8} more`;
      throw new ArgumentError(`${this.name} has no layer named '${name}'${near.length ? ` (similar: ${near.join(', ')})` : ''}; it has ${names.length} layers: ${some}.`);
    }
    return l;
  }

  /** A model sharing these layers and weights whose output is the named layer's output (feature extraction). */
  truncate(layerName: string, name = `${this.name}_to_${layerName}`): Model {
    const layer = this.getLayer(layerName);
    const own = layer.nodes.find((n) => this.steps.some((s) => s.layer === layer && layer.nodes[s.node] === n));
    if (!own) throw new ArgumentError(`${this.name}: layer '${layerName}' is an input; there is nothing to truncate to.`);
    return new Model({ inputs: this.inputs, outputs: own.output, name });
  }

  computeOutputShape(inputShapes: Shape[]): Shape {
    this.inputs.forEach((inp, i) => {
      const got = inputShapes[i];
      if (!got || got.length !== inp.shape.length || got.some((d, k) => d !== inp.shape[k])) {
        throw new ArgumentError(`${this.name}: input ${i} must have shape [batch, ${inp.shape.join(', ')}], got [batch, ${got?.join(', ') ?? '?'}].`);
      }
    });
    return this.outputs[0]!.shape;
  }

  override get arity(): number {
    return this.inputs.length;
  }

  protected forward(inputs: Tensor[], options: CallOptions): Tensor {
    const feeds = new Map<SymbolicTensor, Tensor>();
    this.inputs.forEach((sym, i) => feeds.set(sym, inputs[i]!));
    return this.execute(feeds, this.outputs, options)[0]!;
  }

  /**
   * Runs the part of the graph that computes `targets` from `feeds`, values given for some symbolic tensors
   * of this model (its inputs, or intermediate tensors such as cached features). Only the layer calls that
   * lie between the feeds and the targets run. Feeds stay owned by the caller; the targets are returned in
   * order, and every other intermediate is disposed as soon as its last consumer has run (the tape holds
   * what backward needs). `logits` reaches only the layer call that produces the model's output.
   */
  execute(feeds: ReadonlyMap<SymbolicTensor, Tensor>, targets: readonly SymbolicTensor[], options: CallOptions): Tensor[] {
    const steps = this.stepsBetween(feeds, targets);
    const remaining = new Map<SymbolicTensor, number>();
    for (const s of steps) for (const t of s.layer.nodes[s.node]!.inputs) remaining.set(t, (remaining.get(t) ?? 0) + 1);
    const values = new Map<SymbolicTensor, Tensor>(feeds);
    const keep = new Set(targets);
    const callerOwned = new Set(feeds.values());
    const inner: CallOptions = { training: options.training };
    // Frozen Conv2D → BatchNormalization (→ Add(shortcut)) (→ ReLU) chains run as one convolution (folding.ts).
    const folds = planFolds(steps, new Set([...keep, this.outputs[0]!]));
    // BatchNormalization → ReLU pairs run as one batchNorm with its fused ReLU (relu-fusion.ts).
    const reluAfter = planReluFusions(steps, keep);
    const replaced = new Set<Step>();
    // With f16 precision, calls that need no gradient run on f16 copies of their inputs (precision.ts).
    const half = currentPrecision() === 'f16';
    if (half) sweepHalfCopies();
    const converted = new Map<SymbolicTensor, Tensor>();
    const valueAs = (t: SymbolicTensor, dtype: 'f32' | 'f16'): Tensor => {
      const v = values.get(t)!;
      if (v.dtype === dtype || (v.dtype !== 'f32' && v.dtype !== 'f16')) return v;
      let c = converted.get(t);
      if (!c) converted.set(t, (c = cast(v, dtype)));
      return c;
    };
    // Values read for the last time are freed (with their converted copies), except targets, feeds and `out`.
    const release = (read: readonly SymbolicTensor[], out: Tensor) => {
      for (const t of read) {
        const left = remaining.get(t)! - 1;
        remaining.set(t, left);
        if (left > 0 || keep.has(t)) continue;
        const v = values.get(t)!;
        const c = converted.get(t);
        if (c && c !== out) {
          c.dispose();
          converted.delete(t);
        }
        if (!callerOwned.has(v) && v !== out) {
          v.dispose();
          values.delete(t);
        }
      }
    };
    const inHalfFor = (s: Step, callOptions: CallOptions) =>
      half && s.layer.runsInHalf(callOptions) && !needsGradient(s.layer, s.layer.nodes[s.node]!.inputs.map((t) => values.get(t)!));
    // Folded chains waiting for their residual (a projection shortcut computed after their convolution).
    const waiting = new Map<SymbolicTensor, { chain: FoldedChain<Step>; step: Step }>();
    const produced = (t: SymbolicTensor, out: Tensor) => {
      values.set(t, out);
      const w = waiting.get(t);
      if (w) {
        waiting.delete(t);
        runChain(w.chain, w.step);
      }
    };
    const runChain = (chain: FoldedChain<Step>, s: Step) => {
      const node = s.layer.nodes[s.node]!;
      const x = valueAs(node.inputs[0]!, inHalfFor(s, inner) ? 'f16' : 'f32');
      const out = runFolded(chain, x, chain.residual ? valueAs(chain.residual, x.dtype as 'f32' | 'f16') : null);
      release(chain.residual ? [...node.inputs, chain.residual] : node.inputs, out); // the Add's read, done by the kernel
      produced(chain.output, out);
    };
    for (const s of steps) {
      if (replaced.has(s)) continue;
      const node = s.layer.nodes[s.node]!;
      const chain = folds.get(s);
      if (chain && foldingPays(chain, values.get(node.inputs[0]!)!.shape[0]!)) {
        for (const r of chain.replaced) replaced.add(r);
        if (chain.delayed && !values.has(chain.residual!)) waiting.set(chain.residual!, { chain, step: s });
        else runChain(chain, s);
        continue;
      }
      const callOptions = node.output === this.outputs[0] ? options : inner;
      const args = node.inputs.map((t) => valueAs(t, inHalfFor(s, callOptions) ? 'f16' : 'f32'));
      const relu = reluAfter.get(s);
      const fuse = relu !== undefined && !replaced.has(relu);
      if (fuse) replaced.add(relu);
      const out = s.layer.runNode(args, fuse ? { ...callOptions, fusedRelu: true } : callOptions);
      release(node.inputs, out);
      produced(fuse ? relu.layer.nodes[relu.node]!.output : node.output, out);
    }
    for (const c of converted.values()) c.dispose();
    // A model's outputs are f32 whatever precision its layers ran in.
    return targets.map((t) => {
      const v = values.get(t)!;
      if (v.dtype !== 'f16' || callerOwned.has(v)) return v;
      const full = cast(v, 'f32');
      v.dispose();
      return full;
    });
  }

  /** The layer calls (in this model's order) needed to compute `targets` when `feeds` are given. */
  private stepsBetween(feeds: ReadonlyMap<SymbolicTensor, Tensor>, targets: readonly SymbolicTensor[]): Step[] {
    const producer = new Map<SymbolicTensor, Step>();
    for (const s of this.steps) producer.set(s.layer.nodes[s.node]!.output, s);
    const needed = new Set<Step>();
    const stack = [...targets];
    while (stack.length) {
      const t = stack.pop()!;
      if (feeds.has(t)) continue;
      const s = producer.get(t);
      if (!s) {
        const what = t.layer instanceof InputLayer ? `the model input '${t.layer.name}'` : `${t}, which is not part of ${this.name}`;
        throw new ArgumentError(`${this.name}: cannot compute the requested outputs: they need ${what}, and no value was given for it.`);
      }
      if (needed.has(s)) continue;
      needed.add(s);
      stack.push(...s.layer.nodes[s.node]!.inputs);
    }
    return this.steps.filter((s) => needed.has(s));
  }

  /**
   * Where the trainable part of the graph begins. A layer call is constant when its layer has no trainable
   * weights, computes the same in training as in inference (Layer.variesInTraining is false) and all its
   * inputs are constant (the model's inputs are). The frontier is every constant tensor that a non-constant
   * call reads: given the frontier's values, `execute` computes the output, and only the non-constant calls
   * run. With a frozen base and a pooling head the frontier is the pooled features; with the last block of a
   * ResNet unfrozen, it is that block's input. It is empty when no layer call depends on a trainable weight or on training mode.
   */
  constantFrontier(varies: (layer: Layer) => boolean = defaultVaries): SymbolicTensor[] {
    const constant = this.constantTensors(varies);
    const frontier: SymbolicTensor[] = [];
    for (const s of this.steps) {
      const node = s.layer.nodes[s.node]!;
      if (constant.has(node.output)) continue;
      for (const t of node.inputs) if (constant.has(t) && !frontier.includes(t)) frontier.push(t);
    }
    return frontier;
  }

  /**
   * The model's inputs and every tensor computed from them by constant layer calls (see constantFrontier).
   * `varies(layer)` says which layers are not constant; by default those with trainable weights or whose
   * training-mode call varies.
   */
  constantTensors(varies: (layer: Layer) => boolean = defaultVaries): Set<SymbolicTensor> {
    const constant = new Set<SymbolicTensor>(this.inputs);
    for (const s of this.steps) {
      const node = s.layer.nodes[s.node]!;
      if (!varies(s.layer) && node.inputs.every((t) => constant.has(t))) constant.add(node.output);
    }
    return constant;
  }

  /** Frees the weights of every layer of the model (layers shared with another model are freed too). */
  override dispose(): void {
    for (const l of this.layers) l.dispose();
    super.dispose();
  }

  /** A Keras-like summary table with total, trainable and non-trainable parameter counts. */
  summary(lineLength = 110): string {
    return formatSummary(this, lineLength);
  }
}

/** Whether a layer call records for backward: gradients are on and an input or a weight of it requires one. */
function needsGradient(layer: Layer, inputs: readonly Tensor[]): boolean {
  return isGradEnabled() && (inputs.some((t) => t.requiresGrad) || layer.trainableWeights.some((w) => w.value.requiresGrad));
}

function defaultVaries(layer: Layer): boolean {
  return layer.trainableWeights.length > 0 || layer.variesInTraining;
}

/** A linear stack of layers, as Keras's Sequential; it builds a functional graph from its input shape. */
export class Sequential extends Model {
  override readonly className = 'Sequential';
  constructor(layers: Layer[], config: LayerConfig & { inputShape: Shape }) {
    const x = input(config.inputShape);
    let y = x;
    for (const l of layers) y = l.apply(y);
    super({ ...config, inputs: x, outputs: y });
  }
}

/**
 * Keras's layer order: by decreasing depth (the longest path to the output), ties in depth-first order.
 * For a residual block this lists the main path and the shortcut interleaved, exactly as `model.layers` does
 * in Keras, which matters because fine-tuning "the last N layers" counts in this order.
 */
function orderByDepth(steps: Step[]): Step[] {
  const depth = new Map<Step, number>();
  const producer = new Map<SymbolicTensor, Step>();
  for (const s of steps) producer.set(s.layer.nodes[s.node]!.output, s);
  for (let i = steps.length - 1; i >= 0; i--) {
    const s = steps[i]!;
    const d = depth.get(s) ?? 0;
    depth.set(s, d);
    for (const t of s.layer.nodes[s.node]!.inputs) {
      const p = producer.get(t);
      if (p) depth.set(p, Math.max(depth.get(p) ?? 0, d + 1));
    }
  }
  const index = new Map(steps.map((s, i) => [s, i]));
  return [...steps].sort((a, b) => depth.get(b)! - depth.get(a)! || index.get(a)! - index.get(b)!);
}

function formatSummary(model: Model, width: number): string {
  const cols = [0.34, 0.22, 0.12, 0.32].map((f) => Math.floor(f * width));
  const row = (cells: string[]) => cells.map((c, i) => (c.length > cols[i]! - 1 ? `${c.slice(0, cols[i]! - 2)}…` : c).padEnd(cols[i]!)).join('').trimEnd();
  const lines = [`Model: "${model.name}"`, '─'.repeat(width), row(['Layer (type)', 'Output Shape', 'Param #', 'Connected to']), '═'.repeat(width)];
  for (const layer of model.layers) {
    for (const node of layer.nodes) {
      const sources = node.inputs.map((t) => `${t.layer.name}[${t.nodeIndex}]`);
      lines.push(row([`${layer.name} (${layer.className})`, `(None, ${node.output.shape.join(', ')})`, layer.countParams().toLocaleString('en-US'), sources[0] ?? '-']));
      for (const extra of sources.slice(1)) lines.push(row(['', '', '', extra]));
    }
  }
  const total = model.countParams();
  const trainable = model.trainableWeights.reduce((n, w) => n + w.value.size, 0);
  const mb = (n: number) => `${((n * 4) / 2 ** 20).toFixed(2)} MB`;
  lines.push('═'.repeat(width));
  lines.push(`Total params: ${total.toLocaleString('en-US')} (${mb(total)})`);
  lines.push(`Trainable params: ${trainable.toLocaleString('en-US')} (${mb(trainable)})`);
  lines.push(`Non-trainable params: ${(total - trainable).toLocaleString('en-US')} (${mb(total - trainable)})`);
  return lines.join('\n');
}
