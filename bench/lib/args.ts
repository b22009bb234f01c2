/**
 * Option values shared by the benches' argument parsers; each error names the bench, the option and what
 * it takes.
 */
import { ArgumentError } from '../../src/errors.js';

/** An integer option value ≥ min. */
export function intOption(bench: string, flag: string, value: string | undefined, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new ArgumentError(`${bench}: ${flag} takes an integer ≥ ${min}, got ${value}`);
  return n;
}

/** A comma-separated list of names, each one of `known` (`what` names them in the error). */
export function listOption<T extends string>(bench: string, what: string, value: string, known: readonly T[]): T[] {
  const names = value.split(',').filter((s) => s.length > 0);
  const bad = names.filter((s) => !known.includes(s as T));
  if (bad.length) throw new ArgumentError(`${bench}: unknown ${what} ${bad.join(', ')}; known: ${known.join(', ')}`);
  return names as T[];
}
