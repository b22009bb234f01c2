/**
 * Argument checks of the optimizers (src/train/optimizers.ts): each names the optimizer, the argument and the
 * value received, so that a wrong option fails at construction with a message that says what was expected.
 */
import { ArgumentError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';

/** A value as an error message shows it. */
export function describeValue(v: unknown): string {
  if (v instanceof Tensor) return String(v);
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return v === null ? 'null' : typeof v === 'object' ? 'an object' : String(v);
}

export function checkLr(kind: string, what: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new ArgumentError(`${kind}: ${what} must be a finite number > 0; got ${describeValue(v)}.`);
  }
}

export function checkUnit(kind: string, where: string, name: string, v: unknown): void {
  if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw new ArgumentError(`${kind}: ${where}: ${name} must be in [0, 1); got ${describeValue(v)}.`);
}

export function checkDecay(kind: string, where: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new ArgumentError(`${kind}: ${where}: weightDecay must be a finite number ≥ 0; got ${describeValue(v)}.`);
  }
}

/** Unknown keys are errors: an option that is not implemented must not be ignored silently. */
export function checkKeys(kind: string, where: string, obj: object, allowed: string[]): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw new ArgumentError(`${kind}: ${where}: unknown or unsupported option '${key}'; supported: ${allowed.join(', ')}.`);
    }
  }
}

export function checkParam(kind: string, p: unknown, index: number, seen: Set<Tensor>): void {
  if (!(p instanceof Tensor)) throw new ArgumentError(`${kind}: parameter ${index} is ${describeValue(p)}, not a tensor.`);
  const name = `parameter ${index} (${p})`;
  if (p.isDisposed) throw new ArgumentError(`${kind}: ${name} was already disposed.`);
  if (!p.requiresGrad) throw new ArgumentError(`${kind}: ${name} does not require grad; set requiresGrad = true on parameters to optimize.`);
  if (p.dtype !== 'f32') throw new ArgumentError(`${kind}: ${name} has dtype ${p.dtype}; optimizers update f32 parameters only.`);
  if (seen.has(p)) throw new ArgumentError(`${kind}: ${name} appears more than once across the parameter groups.`);
  seen.add(p);
}
