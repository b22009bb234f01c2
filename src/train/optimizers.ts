/**
 * Optimizers: SGD (with optional momentum, Nesterov and L2 weight decay), Adam and AdamW.
 *
 * An optimizer holds parameter groups, each a list of parameters with its own learning rate and options,
 * and per-parameter state (SGD's velocity, Adam's two moments, and a step count on the CPU). `step()`
 * runs one in-place update kernel per parameter that has a gradient (src/ops/optimizer-updates.ts);
 * parameters without `.grad` are skipped and their step count does not advance (as in PyTorch).
 *
 *   const opt = new Adam(model.parameters(), { lr: 1e-3 });
 *   tidy(() => { opt.zeroGrad(); backward(loss(model(x))); opt.step(); });
 *
 * Learning rates. `opt.learningRate` is the base rate, the `lr` option. Setting it rescales every group
 * proportionally (new / old), so a group created with lr = base / 10 stays at a tenth of the base: this
 * is what a schedule wants. To set one group absolutely, assign `opt.paramGroups[i].lr`. Both take effect
 * at the next `step()` and never recompile a kernel, since rates travel in the kernels' uniforms.
 *
 * State tensors are allocated at a parameter's first step, are kept (they survive `tidy`), belong to the
 * optimizer and are freed by `dispose()`. `stateDict()` reads them back to the CPU for checkpoints and
 * `loadStateDict()` restores them.
 *
 * Gradient clipping (Keras's `clipvalue`, `clipnorm` and `global_clipnorm`; src/train/clipping.ts) is an
 * option of the whole optimizer, not of a group: `{ clipValue }` clamps every gradient element to [−c, c],
 * `{ clipNorm }` rescales each parameter's gradient to an L2 norm ≤ c, and `{ globalClipNorm }` rescales all
 * gradients together so that their joint norm is ≤ c. The clipped gradients feed the update; `p.grad` is
 * left as backward computed it. Everything stays on the GPU: no value is read back.
 */
import { ArgumentError, DisposedError, ShapeError } from '../errors.js';
import { noGrad } from '../autograd/tape.js';
import { Tensor, shapeStr } from '../tensor/tensor.js';
import { tensor } from '../tensor/create.js';
import { zeros } from '../ops/elementwise.js';
import { sameShape } from '../ops/kernel.js';
import { adamUpdate, sgdUpdate } from '../ops/optimizer-updates.js';
import { tidy } from '../tensor/scope.js';
import { CLIP_KEYS, type ClipOptions, clipGradients, validateClipOptions } from './clipping.js';
import { checkDecay, checkKeys, checkLr, checkParam, checkUnit, describeValue } from './optimizer-checks.js';

export type { ClipOptions } from './clipping.js';

/** Hyper-parameters other than the learning rate: named numbers and flags. */
type Hyper<H> = { [K in keyof H]: number | boolean };

/** A parameter group as passed to a constructor: its parameters, and options overriding the defaults. */
export type ParamGroupSpec<H extends Hyper<H>> = { params: Tensor[]; lr?: number } & Partial<H>;

export interface ParamState {
  /** Steps taken for this parameter (the t of Adam's bias correction). */
  step: number;
  /** The optimizer's state tensors for this parameter, by name (e.g. velocity, or m and v). */
  buffers: Record<string, Tensor>;
}

export interface OptimizerStateDict {
  kind: string;
  learningRate: number;
  /** Parameters are numbered in order across the groups, as the constructor received them. */
  groups: Array<{ lr: number; hyper: Record<string, number | boolean>; params: number[] }>;
  state: Array<{ param: number; step: number; buffers: Record<string, { shape: number[]; data: Float32Array }> }>;
  /** The gradient-clipping options ({} when none). Absent in dicts saved before clipping existed. */
  clipping?: ClipOptions;
}

/**
 * One parameter group: its parameters, its learning rate, and its options (`hyper`, validated and frozen;
 * only loadStateDict replaces them).
 */
export class ParamGroup<H extends Hyper<H>> {
  private lrValue: number;
  /** The optimizer's base rate when `lrValue` was set; the group's rate scales with the base from there. */
  private baseWhenSet: number;

  constructor(
    private readonly owner: Optimizer<H>,
    readonly params: readonly Tensor[],
    lr: number,
    public hyper: Readonly<H>,
  ) {
    this.lrValue = lr;
    this.baseWhenSet = owner.learningRate;
  }

  get lr(): number {
    const base = this.owner.learningRate;
    return base === this.baseWhenSet ? this.lrValue : this.lrValue * (base / this.baseWhenSet);
  }

  /** Sets this group's learning rate absolutely (it then scales with later changes of the base rate). */
  set lr(value: number) {
    checkLr(this.owner.kind, 'lr', value);
    this.lrValue = value;
    this.baseWhenSet = this.owner.learningRate;
  }
}

/** What SGD, Adam and AdamW share: groups, lazily created state, validation and checkpoints. */
export abstract class Optimizer<H extends Hyper<H>> {
  readonly paramGroups: ParamGroup<H>[] = [];
  private baseLr: number;
  private readonly state = new Map<Tensor, ParamState>();
  private disposed = false;
  private clip: Readonly<ClipOptions>;

  protected constructor(
    readonly kind: string,
    params: Tensor[] | ParamGroupSpec<H>[],
    options: { lr: number } & Partial<H> & ClipOptions,
    defaults: H,
  ) {
    if (options === null || typeof options !== 'object') throw new ArgumentError(`${kind}: options must be an object with at least { lr }; got ${String(options)}.`);
    checkKeys(kind, 'options', options, ['lr', ...Object.keys(defaults), ...CLIP_KEYS]);
    checkLr(kind, 'lr', options.lr);
    this.clip = validateClipOptions(kind, 'options', options);
    this.baseLr = options.lr;
    const base = this.makeHyper(defaults, options, 'options');
    if (!Array.isArray(params) || params.length === 0) {
      throw new ArgumentError(`${kind}: params must be a non-empty array of parameter tensors or of parameter groups; got ${describeValue(params)}.`);
    }
    const specs: ParamGroupSpec<H>[] = params.every((p) => p instanceof Tensor)
      ? [{ params: params as Tensor[] } as ParamGroupSpec<H>]
      : (params as ParamGroupSpec<H>[]);
    const seen = new Set<Tensor>();
    let index = 0;
    specs.forEach((spec, gi) => {
      const where = `param group ${gi}`;
      if (spec instanceof Tensor || spec === null || typeof spec !== 'object' || !Array.isArray(spec.params)) {
        throw new ArgumentError(`${kind}: params must be all tensors or all groups { params, ... }; ${where} is ${describeValue(spec)}.`);
      }
      for (const key of CLIP_KEYS) {
        if (key in spec) throw new ArgumentError(`${kind}: ${where}: ${key} applies to the whole optimizer; pass it in the options, not in a param group.`);
      }
      checkKeys(kind, where, spec, ['params', 'lr', ...Object.keys(defaults)]);
      if (spec.lr !== undefined) checkLr(kind, `${where}: lr`, spec.lr);
      for (const p of spec.params) checkParam(kind, p, index++, seen);
      const hyper = this.makeHyper(base, spec, where);
      this.paramGroups.push(new ParamGroup(this, [...spec.params], spec.lr ?? options.lr, hyper));
    });
  }

  /** Validates hyper-parameters; throws an ArgumentError naming the argument (`where`: e.g. 'options'). */
  protected abstract validate(h: H, where: string): void;
  /** Names of the state tensors a parameter of this group needs (none for plain SGD). */
  protected abstract stateNames(h: H): string[];
  /** Runs the update kernel for one parameter. `state.step` has already been advanced. */
  protected abstract update(param: Tensor, grad: Tensor, state: ParamState, h: H, lr: number): void;

  /** The base learning rate (the `lr` option). Setting it rescales every group by new / old. */
  get learningRate(): number {
    return this.baseLr;
  }

  set learningRate(value: number) {
    checkLr(this.kind, 'learningRate', value);
    // Each group computes its rate from the base on demand, so changing the base rescales them all.
    this.baseLr = value;
  }

  /** The gradient-clipping options ({} when there is no clipping). */
  get clipping(): Readonly<ClipOptions> {
    return this.clip;
  }

  /**
   * Updates every parameter that has a gradient, with the gradients clipped as the options say. Records
   * nothing on the tape; the clipped gradients are temporaries, freed before it returns.
   */
  step(): void {
    this.assertUsable('step');
    noGrad(() =>
      tidy(() => {
        const withGrad = this.allParams().filter((p) => p.grad);
        for (const p of withGrad) p.assertAlive(`${this.kind}.step`);
        const grads = clipGradients(withGrad.map((p) => p.grad!), this.clip);
        const gradOf = new Map(withGrad.map((p, i) => [p, grads[i]!]));
        for (const group of this.paramGroups) {
          const lr = group.lr;
          for (const p of group.params) {
            const g = gradOf.get(p);
            if (!g) continue;
            const s = this.stateFor(p, group.hyper);
            s.step++;
            this.update(p, g, s, group.hyper, lr);
          }
        }
      }),
    );
  }

  /** The gradients the next step would apply (of the parameters that have one), e.g. to check them. */
  gradients(): Tensor[] {
    return this.allParams().flatMap((p) => (p.grad ? [p.grad] : []));
  }

  /** Disposes every parameter's gradient, so the next backward starts from zero. */
  zeroGrad(): void {
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        p.grad?.dispose();
        p.grad = null;
      }
    }
  }

  /** This parameter's state, or undefined before its first step. */
  stateOf(param: Tensor): Readonly<ParamState> | undefined {
    return this.state.get(param);
  }

  /** Frees the state tensors. The optimizer cannot be used afterwards; parameters are untouched. */
  dispose(): void {
    this.clearState();
    this.disposed = true;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Learning rates, options and state, copied to the CPU (for checkpoints). */
  async stateDict(): Promise<OptimizerStateDict> {
    this.assertUsable('stateDict');
    const order = this.allParams();
    const state: OptimizerStateDict['state'] = [];
    for (const [i, p] of order.entries()) {
      const s = this.state.get(p);
      if (!s) continue;
      const buffers: Record<string, { shape: number[]; data: Float32Array }> = {};
      for (const [name, t] of Object.entries(s.buffers)) buffers[name] = { shape: [...t.shape], data: Float32Array.from(await t.floats()) };
      state.push({ param: i, step: s.step, buffers });
    }
    let next = 0;
    const groups = this.paramGroups.map((g) => ({ lr: g.lr, hyper: { ...g.hyper }, params: g.params.map(() => next++) }));
    return { kind: this.kind, learningRate: this.baseLr, groups, state, clipping: { ...this.clip } };
  }

  /** Restores what `stateDict()` returned, into an optimizer built over the same parameters and groups. */
  loadStateDict(dict: OptimizerStateDict): void {
    this.assertUsable('loadStateDict');
    const k = this.kind;
    if (dict.kind !== k) throw new ArgumentError(`${k}.loadStateDict: the state dict is from a ${dict.kind} optimizer.`);
    if (dict.groups.length !== this.paramGroups.length) {
      throw new ArgumentError(`${k}.loadStateDict: the state dict has ${dict.groups.length} param groups; this optimizer has ${this.paramGroups.length}.`);
    }
    const hypers = dict.groups.map((g, gi) => {
      const where = `param group ${gi}`;
      if (g.params.length !== this.paramGroups[gi]!.params.length) {
        throw new ArgumentError(`${k}.loadStateDict: ${where} has ${g.params.length} parameters in the state dict; this optimizer's has ${this.paramGroups[gi]!.params.length}.`);
      }
      checkLr(k, `loadStateDict: ${where}: lr`, g.lr);
      return this.makeHyper(this.paramGroups[gi]!.hyper as H, g.hyper as Partial<H>, `loadStateDict: ${where}`);
    });
    checkLr(k, 'loadStateDict: learningRate', dict.learningRate);
    // A dict saved before clipping existed has no `clipping`: keep this optimizer's.
    const clip = dict.clipping === undefined ? this.clip : validateClipOptions(k, 'loadStateDict: clipping', dict.clipping);
    const order = this.allParams();
    const groupOf = (p: Tensor) => this.paramGroups.findIndex((g) => g.params.includes(p));
    for (const s of dict.state) {
      const p = order[s.param];
      if (!p) throw new ArgumentError(`${k}.loadStateDict: state for parameter ${s.param}, but there are ${order.length} parameters.`);
      const names = this.stateNames(hypers[groupOf(p)]!);
      const given = Object.keys(s.buffers);
      if (given.length !== names.length || !names.every((n) => given.includes(n))) {
        throw new ArgumentError(`${k}.loadStateDict: parameter ${s.param} has state [${given.join(', ')}]; expected [${names.join(', ')}].`);
      }
      for (const n of names) {
        const b = s.buffers[n]!;
        if (!sameShape(b.shape, p.shape) || b.data.length !== p.size) {
          throw new ShapeError(`${k}.loadStateDict: state '${n}' of parameter ${s.param} has shape ${shapeStr(b.shape)}; the parameter is ${shapeStr(p.shape)}.`);
        }
      }
    }
    // Everything checked: now replace.
    this.clearState();
    this.clip = clip;
    this.baseLr = dict.learningRate;
    this.paramGroups.forEach((g, gi) => {
      g.hyper = hypers[gi]!;
      g.lr = dict.groups[gi]!.lr;
    });
    for (const s of dict.state) {
      const p = order[s.param]!;
      const buffers: Record<string, Tensor> = {};
      for (const [n, b] of Object.entries(s.buffers)) buffers[n] = tensor(b.data, p.shape).keep();
      this.state.set(p, { step: s.step, buffers });
    }
  }

  private stateFor(p: Tensor, h: H): ParamState {
    let s = this.state.get(p);
    if (!s) {
      const buffers: Record<string, Tensor> = {};
      for (const n of this.stateNames(h)) buffers[n] = zeros(p.shape).keep();
      s = { step: 0, buffers };
      this.state.set(p, s);
    }
    return s;
  }

  private makeHyper(base: H, overrides: Partial<H>, where: string): Readonly<H> {
    const h = { ...base } as H;
    for (const key of Object.keys(base) as Array<keyof H>) if (overrides[key] !== undefined) h[key] = overrides[key] as H[keyof H];
    this.validate(h, where);
    return Object.freeze(h);
  }

  private allParams(): Tensor[] {
    return this.paramGroups.flatMap((g) => [...g.params]);
  }

  private clearState(): void {
    for (const s of this.state.values()) for (const t of Object.values(s.buffers)) t.dispose();
    this.state.clear();
  }

  private assertUsable(what: string): void {
    if (this.disposed) throw new DisposedError(`${this.kind}.${what}: the optimizer was already disposed.`);
  }
}

// ---------------------------------------------------------------------------------------------------------

export interface SGDHyper {
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
}
export type SGDOptions = { lr: number } & Partial<SGDHyper> & ClipOptions;

/**
 * Stochastic gradient descent, PyTorch semantics with dampening 0: v ← μ·v + (g + wd·p), then
 * p ← p − lr·v, or with Nesterov p ← p − lr·(g + wd·p + μ·v). Without momentum, p ← p − lr·(g + wd·p).
 */
export class SGD extends Optimizer<SGDHyper> {
  constructor(params: Tensor[] | ParamGroupSpec<SGDHyper>[], options: SGDOptions) {
    super('SGD', params, options, { momentum: 0, nesterov: false, weightDecay: 0 });
  }

  protected validate(h: SGDHyper, where: string): void {
    checkUnit('SGD', where, 'momentum', h.momentum);
    checkDecay('SGD', where, h.weightDecay);
    if (typeof h.nesterov !== 'boolean') throw new ArgumentError(`SGD: ${where}: nesterov must be a boolean; got ${describeValue(h.nesterov)}.`);
    if (h.nesterov && h.momentum === 0) throw new ArgumentError(`SGD: ${where}: nesterov needs momentum > 0; got momentum ${h.momentum}.`);
  }

  protected stateNames(h: SGDHyper): string[] {
    return h.momentum > 0 ? ['velocity'] : [];
  }

  protected update(p: Tensor, g: Tensor, s: ParamState, h: SGDHyper, lr: number): void {
    sgdUpdate(p, g, s.buffers.velocity ?? null, { lr, momentum: h.momentum, nesterov: h.nesterov, weightDecay: h.weightDecay });
  }
}

export interface AdamHyperParams {
  beta1: number;
  beta2: number;
  /** Default 1e-7, Keras's default (PyTorch uses 1e-8); it is added to sqrt(v̂) as in PyTorch. */
  epsilon: number;
  weightDecay: number;
}
export type AdamOptions = { lr: number } & Partial<AdamHyperParams> & ClipOptions;

/** Adam and AdamW: the same kernel and state; they differ in how weight decay enters. */
abstract class AdamFamily extends Optimizer<AdamHyperParams> {
  protected constructor(
    kind: string,
    private readonly decoupled: boolean,
    params: Tensor[] | ParamGroupSpec<AdamHyperParams>[],
    options: AdamOptions,
    defaultDecay: number,
  ) {
    super(kind, params, options, { beta1: 0.9, beta2: 0.999, epsilon: 1e-7, weightDecay: defaultDecay });
  }

  protected validate(h: AdamHyperParams, where: string): void {
    checkUnit(this.kind, where, 'beta1', h.beta1);
    checkUnit(this.kind, where, 'beta2', h.beta2);
    if (typeof h.epsilon !== 'number' || !Number.isFinite(h.epsilon) || h.epsilon <= 0) {
      throw new ArgumentError(`${this.kind}: ${where}: epsilon must be a finite number > 0; got ${describeValue(h.epsilon)}.`);
    }
    checkDecay(this.kind, where, h.weightDecay);
  }

  protected stateNames(): string[] {
    return ['m', 'v'];
  }

  protected update(p: Tensor, g: Tensor, s: ParamState, h: AdamHyperParams, lr: number): void {
    adamUpdate(p, g, s.buffers.m!, s.buffers.v!, { ...h, lr, decoupled: this.decoupled, step: s.step });
  }
}

/**
 * Adam with bias correction: p ← p − lr·m̂/(sqrt(v̂) + ε). `weightDecay` is L2 decay, added to the gradient
 * (PyTorch Adam). Defaults: beta1 0.9, beta2 0.999, epsilon 1e-7 (Keras's default; PyTorch's is 1e-8),
 * weightDecay 0.
 */
export class Adam extends AdamFamily {
  constructor(params: Tensor[] | ParamGroupSpec<AdamHyperParams>[], options: AdamOptions) {
    super('Adam', false, params, options, 0);
  }
}

/**
 * AdamW (PyTorch semantics): Adam without L2 in the gradient, and instead a decoupled decay
 * p ← p − lr·wd·p at each step. Same defaults as Adam except weightDecay 0.01 (PyTorch's default).
 */
export class AdamW extends AdamFamily {
  constructor(params: Tensor[] | ParamGroupSpec<AdamHyperParams>[], options: AdamOptions) {
    super('AdamW', true, params, options, 0.01);
  }
}
