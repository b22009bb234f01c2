/**
 * Write versions: a counter per tensor storage of the in-place writes into it: uploads (`write`), optimizer
 * updates, BatchNorm's moving-statistics update and weight snapshots copied back. Values derived from
 * weights and cached (the folded convolution kernels of src/nn/folding.ts, the f16 weight copies of
 * src/nn/precision.ts) record a `WriteStamp` of the tensors they were computed from, and are valid while
 * those same tensors are at the same versions: a head's optimizer step does not invalidate the folded
 * kernels of the frozen base it trains on, while any write into a source tensor does.
 */
import type { Tensor } from './tensor.js';

const versions = new WeakMap<object, number>();

/** Call after writing into existing tensors in place (views share their storage's version). */
export function markWritten(...written: Tensor[]): void {
  for (const t of written) versions.set(t.storage, (versions.get(t.storage) ?? 0) + 1);
}

/** The number of in-place writes into t's storage so far. */
export function writeVersion(t: Tensor): number {
  return versions.get(t.storage) ?? 0;
}

/** Which tensors a cached value was computed from, and their write versions then. */
export class WriteStamp {
  private readonly sources: ReadonlyArray<Tensor | null>;
  private readonly at: number[];

  constructor(sources: ReadonlyArray<Tensor | null>) {
    this.sources = [...sources];
    this.at = sources.map((t) => (t ? writeVersion(t) : 0));
  }

  /** True while `sources` are the same tensors, alive and unwritten since the stamp was taken. */
  current(sources: ReadonlyArray<Tensor | null>): boolean {
    return (
      sources.length === this.sources.length &&
      sources.every((t, i) => t === this.sources[i] && (t === null || (!t.isDisposed && writeVersion(t) === this.at[i])))
    );
  }
}
