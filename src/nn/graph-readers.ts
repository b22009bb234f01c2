/**
 * Who reads each tensor among the layer calls of one `Model.execute`: what the executor's rewrites (BatchNorm
 * folding, BN → ReLU fusion) ask before they merge a call into the one before it.
 */
import type { Layer, SymbolicTensor } from './layer.js';
import { Activation } from './layers/core.js';

/** One layer call: the layer and which of its nodes. */
export interface StepLike {
  layer: Layer;
  node: number;
}

/**
 * `onlyReader(t)`: the one step that reads `t`, or null when none or several do, or when `t` is in `keep`
 * (a tensor the caller wants back is never merged away). `reluAfter(t)`: that step when it is a ReLU.
 */
export function readersOf<S extends StepLike>(steps: readonly S[], keep: ReadonlySet<SymbolicTensor>) {
  const readers = new Map<SymbolicTensor, S[]>();
  for (const s of steps) for (const t of s.layer.nodes[s.node]!.inputs) readers.set(t, [...(readers.get(t) ?? []), s]);
  const onlyReader = (t: SymbolicTensor): S | null => {
    const r = readers.get(t);
    return r && r.length === 1 && !keep.has(t) ? r[0]! : null;
  };
  const reluAfter = (t: SymbolicTensor): S | null => {
    const r = onlyReader(t);
    return r !== null && r.layer instanceof Activation && r.layer.activation === 'relu' ? r : null;
  };
  return { onlyReader, reluAfter };
}
