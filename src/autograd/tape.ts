/**
 * The tape: a graph of TapeNodes, recorded only when some input of an op requires grad.
 *
 * A node remembers which op ran (`op` plus its `attrs`), where its inputs came from (`parents`: another
 * node, a leaf tensor such as a weight, or null for inputs that need no gradient), and the tensors its
 * backward rule will read (`saved`). It does not hold its output tensor, so `tidy()` can free activations
 * that no rule needs while the forward pass is still running.
 *
 * Lifetime is reference counted: the output tensor and every child node hold a reference. When the count
 * reaches zero the node frees its saved tensors and lets go of its parents.
 */
import { GraftError } from '../errors.js';
import { type DType, type Shape, Tensor } from '../tensor/tensor.js';

/**
 * Op name → the attributes its forward pass records for backward. Each file in src/ops augments this
 * interface for its own ops (`declare module '../autograd/tape.js'`); src/ops/backward-rules.ts then
 * builds a table typed as `{ [K in OpName]: BackwardRule<K> }`, so an op without a rule does not compile.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface OpRegistry {}

export type OpName = keyof OpRegistry;

export type Parent = { node: TapeNode } | { leaf: Tensor } | null;

export interface InputMeta {
  shape: Shape;
  dtype: DType;
}

export class TapeNode<K extends OpName = OpName> {
  private refs = 1;
  /** Set once backward has consumed this node and freed its saved tensors. */
  consumed = false;

  constructor(
    readonly op: K,
    readonly attrs: OpRegistry[K],
    readonly parents: Parent[],
    readonly inputs: InputMeta[],
    readonly saved: Tensor[],
    readonly outShape: Shape,
  ) {}

  ref(): this {
    this.refs++;
    return this;
  }

  unref(): void {
    if (--this.refs > 0) return;
    this.freeSaved();
    for (const p of this.parents) if (p && 'node' in p) p.node.unref();
  }

  freeSaved(): void {
    for (const t of this.saved) t.dispose();
    this.saved.length = 0;
  }
}

let gradDepth = 0; // > 0 inside noGrad()

export function isGradEnabled(): boolean {
  return gradDepth === 0;
}

/** Runs `fn` without recording anything on the tape (inference, optimizer updates, backward itself). */
export function noGrad<T>(fn: () => T): T {
  gradDepth++;
  try {
    return fn();
  } finally {
    gradDepth--;
  }
}

/** A handle on the same data that is cut off from the tape: no gradient flows through it. */
export function detach(t: Tensor): Tensor {
  t.assertAlive('detach');
  return new Tensor(t.shape, t.dtype, t.storage.retain());
}

/**
 * Records `out = op(inputs)` on the tape when grad is enabled and some input requires grad.
 * `saved` are the tensors the backward rule will read; the node takes its own references to them.
 * Returns `out`.
 */
export function record<K extends OpName>(
  op: K,
  attrs: OpRegistry[K],
  inputs: readonly Tensor[],
  out: Tensor,
  saved: readonly Tensor[] = [],
): Tensor {
  if (gradDepth > 0 || !inputs.some((t) => t.requiresGrad)) return out;
  if (op !== 'cast' && (out.dtype === 'f16' || inputs.some((t) => t.dtype === 'f16'))) {
    // The backward kernels are f32 only: f16 storage serves layers that do not train (a frozen base).
    throw new GraftError(`${op}: no gradient through f16 tensors; f16 storage is for layers that do not train (a frozen base). Keep what trains in f32 (cast back first).`);
  }
  const parents: Parent[] = inputs.map((t) => {
    if (!t.requiresGrad) return null;
    if (t.node) {
      if (t.node.consumed) throw new GraftError(`${op}: input ${t} comes from a graph that backward() already freed.`);
      return { node: t.node.ref() };
    }
    return { leaf: t };
  });
  const held = saved.map((t) => {
    t.assertAlive(`${op} (saving for backward)`);
    return new Tensor(t.shape, t.dtype, t.storage.retain(), { track: false });
  });
  const metas = inputs.map((t) => ({ shape: t.shape, dtype: t.dtype }));
  out.node = new TapeNode(op, attrs, parents, metas, held, out.shape);
  out.requiresGrad = true;
  return out;
}

/** Nodes reachable from `root`, parents before children (iterative, so deep nets cannot overflow). */
export function topologicalOrder(root: TapeNode): TapeNode[] {
  const order: TapeNode[] = [];
  const seen = new Set<TapeNode>([root]);
  const stack: Array<{ node: TapeNode; next: number }> = [{ node: root, next: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const parents = top.node.parents;
    if (top.next < parents.length) {
      const p = parents[top.next++];
      if (p && 'node' in p && !seen.has(p.node)) {
        seen.add(p.node);
        stack.push({ node: p.node, next: 0 });
      }
    } else {
      order.push(top.node);
      stack.pop();
    }
  }
  return order;
}
