/**
 * Reverse-mode differentiation over the tape, in topological order (never recursively).
 *
 * The rules themselves live with their ops in src/ops and are passed in as one table whose type,
 * `BackwardTable`, has a key for every op in `OpRegistry`: an op without a rule is a compile error.
 */
import { GraftError, ShapeError } from '../errors.js';
import { tidy } from '../tensor/scope.js';
import { type Shape, type Tensor, shapeStr } from '../tensor/tensor.js';
import { type InputMeta, type OpName, type OpRegistry, type TapeNode, noGrad, topologicalOrder } from './tape.js';

export interface BackwardContext<K extends OpName> {
  attrs: OpRegistry[K];
  /** The tensors the forward pass saved, in the order it saved them. */
  saved: readonly Tensor[];
  /** Shape and dtype of each input. */
  inputs: readonly InputMeta[];
  outShape: Shape;
  /** needsGrad[i] is false where input i needs no gradient: a rule may skip that work and return null. */
  needsGrad: readonly boolean[];
}

/** Given dL/d(output), returns dL/d(input i) for each input (null where not needed). */
export type BackwardRule<K extends OpName> = (ctx: BackwardContext<K>, grad: Tensor) => Array<Tensor | null>;

export type BackwardTable = { [K in OpName]: BackwardRule<K> };

/** The two ops the engine itself needs: a tensor of ones (the seed) and addition (accumulation). */
export interface EngineOps {
  onesLike(shape: Shape): Tensor;
  add(a: Tensor, b: Tensor): Tensor;
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Computes gradients of `root` with respect to every leaf that requires grad, accumulating into `.grad`.
 * `seed` is dL/d(root); it defaults to ones, which requires `root` to have one element.
 * The graph's saved tensors are freed afterwards.
 */
export function runBackward(root: Tensor, table: BackwardTable, ops: EngineOps, seed?: Tensor): void {
  root.assertAlive('backward');
  if (!root.node) {
    throw new GraftError(`backward: ${root} was not produced by a recorded op (no input required grad, or it ran under noGrad).`);
  }
  if (root.node.consumed) throw new GraftError('backward: this graph was already used by backward() and its saved tensors freed.');
  if (!seed && root.size !== 1) {
    throw new ShapeError(`backward: ${root} has ${root.size} elements; pass a gradient seed of the same shape for a non-scalar root.`);
  }
  if (seed && !sameShape(seed.shape, root.shape)) {
    throw new ShapeError(`backward: seed shape ${shapeStr(seed.shape)} does not match root shape ${shapeStr(root.shape)}.`);
  }
  const order = topologicalOrder(root.node);
  noGrad(() => {
    const grads = new Map<TapeNode, Tensor>();
    grads.set(root.node!, seed ? seed.view(seed.shape) : ops.onesLike(root.shape));
    for (let i = order.length - 1; i >= 0; i--) {
      const node = order[i]!;
      const g = grads.get(node);
      if (!g) continue;
      grads.delete(node);
      const ctx = {
        attrs: node.attrs,
        saved: node.saved,
        inputs: node.inputs,
        outShape: node.outShape,
        needsGrad: node.parents.map((p) => p !== null),
      };
      const rule = table[node.op] as BackwardRule<OpName>;
      const inputGrads = tidy(() => rule(ctx as BackwardContext<OpName>, g));
      const delivered = new Set<Tensor>();
      node.parents.forEach((parent, k) => {
        let ig = inputGrads[k];
        if (!parent || !ig) return;
        if (!sameShape(ig.shape, node.inputs[k]!.shape)) {
          throw new ShapeError(
            `backward rule of '${node.op}' returned a gradient of shape ${shapeStr(ig.shape)} for input ${k} of shape ${shapeStr(node.inputs[k]!.shape)}.`,
          );
        }
        if (ig === g || delivered.has(ig)) ig = ig.view(ig.shape);
        delivered.add(ig);
        if ('node' in parent) {
          const prev = grads.get(parent.node);
          grads.set(parent.node, prev ? accumulate(ops, prev, ig) : ig);
        } else {
          const leaf = parent.leaf;
          leaf.assertAlive('backward (accumulating a leaf gradient)');
          leaf.grad = leaf.grad ? accumulate(ops, leaf.grad, ig) : ig;
          leaf.grad.keep();
        }
      });
      for (const ig of inputGrads) if (ig && ig !== g && !delivered.has(ig)) ig.dispose();
      if (!delivered.has(g)) g.dispose();
    }
    for (const node of order) {
      node.consumed = true;
      node.freeSaved();
    }
  });
}

function accumulate(ops: EngineOps, a: Tensor, b: Tensor): Tensor {
  const sum = ops.add(a, b);
  a.dispose();
  b.dispose();
  return sum;
}
