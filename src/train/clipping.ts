/**
 * Gradient clipping, with Keras's semantics, on the GPU and without reading anything back.
 *
 *   clipValue c       g ← clamp(g, −c, c), elementwise                          (Keras `clipvalue`)
 *   clipNorm c        g ← g · c / max(‖g‖₂, c), for each gradient on its own      (tf.clip_by_norm)
 *   globalClipNorm c  gᵢ ← gᵢ · c / max(N, c) for every i, N = sqrt(Σᵢ ‖gᵢ‖₂²)    (tf.clip_by_global_norm)
 *
 * max(‖g‖, c) leaves a gradient whose norm is already ≤ c unchanged (the factor is exactly c / c = 1) and
 * scales a larger one down to norm c. The global version scales every gradient by the same factor, so the
 * direction of the whole update is kept. As tf.clip_by_global_norm does, a non-finite global norm makes
 * the factor NaN (by adding N − N, which is 0 for finite N), so that a bad step is visible rather than
 * silently turned into a zero update. (That relies on IEEE NaN arithmetic, which every GPU we know of
 * does but WGSL does not promise; to detect a bad step reliably, use allFinite from ./nonfinite.ts.) The norms are scalar tensors: sum of squares (reduce), sqrt,
 * maximum and div are ordinary kernels, and the factor is applied by a broadcasting multiply.
 *
 * At most one of clipNorm and globalClipNorm may be given (Keras raises too). clipValue may be combined with
 * either; it is applied first, as TF-Keras 2's optimizers did (Keras 3 instead ignores clipvalue when a norm
 * clip is set; Graft never ignores an option silently).
 */
import { ArgumentError } from '../errors.js';
import { noGrad } from '../autograd/tape.js';
import type { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { add, clamp, div, full, maximum, mul, sqrt, square, sub } from '../ops/elementwise.js';
import { sum } from '../ops/reduce.js';

export interface ClipOptions {
  /** Clamp each gradient element to [−clipValue, clipValue]. */
  clipValue?: number;
  /** Rescale each parameter's gradient so that its L2 norm is at most clipNorm. */
  clipNorm?: number;
  /** Rescale all gradients together so that their global L2 norm is at most globalClipNorm. */
  globalClipNorm?: number;
}

export const CLIP_KEYS = ['clipValue', 'clipNorm', 'globalClipNorm'] as const;

/**
 * Checks the clipping options in `options` (other keys are ignored) and returns those that are set, frozen.
 * `who` names the optimizer and `where` the argument in the error message.
 */
export function validateClipOptions(who: string, where: string, options: object): Readonly<ClipOptions> {
  const o = options as Record<string, unknown>;
  const out: ClipOptions = {};
  for (const key of CLIP_KEYS) {
    const v = o[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      const shown = typeof v === 'string' ? JSON.stringify(v) : v === null ? 'null' : typeof v === 'object' ? 'an object' : String(v);
      throw new ArgumentError(`${who}: ${where}: ${key} must be a finite number > 0; got ${shown}.`);
    }
    out[key] = v;
  }
  if (out.clipNorm !== undefined && out.globalClipNorm !== undefined) {
    throw new ArgumentError(
      `${who}: ${where}: give at most one of clipNorm (${out.clipNorm}) and globalClipNorm (${out.globalClipNorm}); they are alternative ways to clip by norm.`,
    );
  }
  return Object.freeze(out);
}

/** The L2 norm of `g` as a rank-0 tensor. */
export function l2Norm(g: Tensor): Tensor {
  return noGrad(() => tidy(() => sqrt(sum(square(g)))));
}

/** `g` clamped elementwise to [−c, c]. */
export function clipByValue(g: Tensor, c: number): Tensor {
  return noGrad(() => clamp(g, -c, c));
}

/** c / max(norm, c): 1 when norm ≤ c, else the factor that brings the norm down to c. */
function clipFactor(norm: Tensor, c: number): Tensor {
  const cT = full([], c);
  return div(cT, maximum(norm, cT));
}

/** tf.clip_by_norm(g, c) over all axes: g · c / max(‖g‖₂, c). */
export function clipByNorm(g: Tensor, c: number): Tensor {
  return noGrad(() => tidy(() => mul(g, clipFactor(l2Norm(g), c))));
}

/**
 * tf.clip_by_global_norm(gs, c): every gᵢ times c / max(N, c), N the norm of all of them together.
 * Returns the clipped gradients and N (a rank-0 tensor; NaN or Inf when some gradient is not finite).
 */
export function clipByGlobalNorm(gs: readonly Tensor[], c: number): { clipped: Tensor[]; globalNorm: Tensor } {
  return noGrad(() => tidy(() => {
    if (gs.length === 0) return { clipped: [], globalNorm: full([], 0) };
    let sumSq = sum(square(gs[0]!));
    for (const g of gs.slice(1)) sumSq = add(sumSq, sum(square(g)));
    const globalNorm = sqrt(sumSq);
    // N − N is 0 for a finite norm and NaN otherwise: a non-finite norm poisons the factor, as in TF.
    const factor = add(clipFactor(globalNorm, c), sub(globalNorm, globalNorm));
    return { clipped: gs.map((g) => mul(g, factor)), globalNorm };
  }));
}

/**
 * The gradients an optimizer step applies: `grads` clipped as `options` say (value first, then norm).
 * Returns the inputs themselves when there is nothing to clip; otherwise new tensors (the caller's scope
 * owns them).
 */
export function clipGradients(grads: readonly Tensor[], options: ClipOptions): Tensor[] {
  const { clipValue, clipNorm, globalClipNorm } = options;
  if (clipValue === undefined && clipNorm === undefined && globalClipNorm === undefined) return [...grads];
  return tidy(() => {
    let gs = [...grads];
    if (clipValue !== undefined) gs = gs.map((g) => clipByValue(g, clipValue));
    if (clipNorm !== undefined) gs = gs.map((g) => clipByNorm(g, clipNorm));
    if (globalClipNorm !== undefined) gs = clipByGlobalNorm(gs, globalClipNorm).clipped;
    return gs;
  });
}

// ---------------------------------------------------------------------------------------------------------
// References in f64 on flat arrays, for the tests.

export function l2NormRef(g: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < g.length; i++) s += g[i]! * g[i]!;
  return Math.sqrt(s);
}

export function clipByValueRef(g: ArrayLike<number>, c: number): Float64Array {
  return Float64Array.from(g, (v) => Math.min(Math.max(v, -c), c));
}

export function clipByNormRef(g: ArrayLike<number>, c: number): Float64Array {
  const n = l2NormRef(g);
  return Float64Array.from(g, (v) => (v * c) / Math.max(n, c));
}

export function clipByGlobalNormRef(gs: ReadonlyArray<ArrayLike<number>>, c: number): Float64Array[] {
  const n = Math.sqrt(gs.reduce((s, g) => s + l2NormRef(g) ** 2, 0));
  const factor = c / Math.max(n, c) + (n - n);
  return gs.map((g) => Float64Array.from(g, (v) => v * factor));
}

export function clipGradientsRef(gs: ReadonlyArray<ArrayLike<number>>, o: ClipOptions): Float64Array[] {
  let out: Float64Array[] = gs.map((g) => Float64Array.from(g));
  if (o.clipValue !== undefined) out = out.map((g) => clipByValueRef(g, o.clipValue!));
  if (o.clipNorm !== undefined) out = out.map((g) => clipByNormRef(g, o.clipNorm!));
  if (o.globalClipNorm !== undefined) out = clipByGlobalNormRef(out, o.globalClipNorm);
  return out;
}
