/**
 * `tidy(fn)`: every tensor created while `fn` runs is disposed when it returns, except the tensors it
 * returns and those marked with `keep()`. Scopes nest; returned tensors move to the enclosing scope.
 *
 * `fn` must be synchronous. Ops only record GPU work, so a whole training step (forward, backward and
 * update) fits in one synchronous tidy; await `loss.data()` after it.
 */
import { GraftError } from '../errors.js';
import type { Tensor } from './tensor.js';

const scopes: Set<Tensor>[] = [];

export function trackInScope(t: Tensor): void {
  scopes[scopes.length - 1]?.add(t);
}

export function untrack(t: Tensor): void {
  for (const s of scopes) s.delete(t);
}

/** Tensors reachable from a value: a tensor, or arrays and plain objects holding tensors. */
function collect(value: unknown, into: Set<Tensor>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 8) return;
  if (isTensor(value)) {
    into.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collect(v, into, depth + 1);
  } else if (value instanceof Map) {
    for (const v of value.values()) collect(v, into, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, into, depth + 1);
  }
}

function isTensor(v: object): v is Tensor {
  return 'storage' in v && 'shape' in v && 'dtype' in v && typeof (v as Tensor).dispose === 'function';
}

export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) if (!t.kept) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of scope) if (!t.kept) t.dispose();
    throw new GraftError('tidy() takes a synchronous function; await results outside the tidy.');
  }
  const keep = new Set<Tensor>();
  collect(result, keep);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (keep.has(t)) parent?.add(t);
    else if (!t.kept) t.dispose();
  }
  return result;
}

/** Number of open scopes (for tests). */
export function scopeDepth(): number {
  return scopes.length;
}
