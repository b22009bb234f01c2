/**
 * A process-wide on/off setting of the model executor's rewrites (BatchNorm folding, BN → ReLU fusion), on by
 * default, that a caller can change for the duration of one call: tests and benchmarks run a graph both ways
 * and compare.
 */
export class Switch {
  on = true;

  /** Runs `fn` with the setting `on`, then restores the previous one. */
  with<T>(on: boolean, fn: () => T): T {
    const before = this.on;
    this.on = on;
    try {
      return fn();
    } finally {
      this.on = before;
    }
  }
}
