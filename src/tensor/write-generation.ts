/**
 * A counter of in-place writes into existing tensors: uploads (`write`), optimizer updates, BatchNorm's
 * moving-statistics update and weight snapshots copied back. Values derived from weights and cached (the
 * folded convolution kernels of src/nn/folding.ts) are valid only while the generation they were computed
 * at is still current, so a write anywhere invalidates them all: cheap to check, impossible to miss.
 */
let generation = 0;

/** Call after writing into an existing tensor in place. */
export function markWritten(): void {
  generation++;
}

export function writeGeneration(): number {
  return generation;
}
