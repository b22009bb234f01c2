/**
 * What the kernel explorer (explorer.ts) needs to know about a kernel: which shaders it exercises, which
 * parameters the user may set, and how to run it once on the GPU and once in the plain-TypeScript reference
 * of its op family (src/ops/*). The explorer times the GPU run with timestamp queries, reads the output back
 * and shows the largest difference from the reference.
 *
 * The cases run on Node too (test/web/kernel-cases.test.ts), so every case is checked without a browser.
 */
import type { Tensor } from '../tensor/tensor.js';
import { withWorkgroupShape } from '../ops/kernel.js';

export type ParamValue = number | string;

export interface ParamSpec {
  name: string;
  default: ParamValue;
  /** A fixed set of values (a select box); otherwise a number input within [min, max]. */
  choices?: readonly ParamValue[];
  min?: number;
  max?: number;
  help?: string;
}

export type Params = Record<string, ParamValue>;

/** One run of a case: inputs uploaded, nothing dispatched yet. */
export interface PreparedCase {
  /** Dispatches the kernel(s) under test and returns the output to check (the explorer disposes it). */
  execute(): Tensor;
  /** The reference output, as `execute()`'s output read back (flat, row-major). */
  reference(): ArrayLike<number>;
  /** Largest allowed |gpu − reference| (absolute, after scaling by max(1, |reference|)). */
  tolerance: number;
  /** Floating-point operations of one `execute()`, for GFLOP/s (0 where counting them means nothing). */
  flops: number;
  /** A one-line description of the problem, e.g. "[64×96] · [96×80]". */
  describe: string;
  /** Frees the inputs. */
  dispose(): void;
}

export interface KernelCase {
  id: string;
  title: string;
  /** The shaders/*.wgsl files (without .wgsl) this case dispatches; the explorer shows their source. */
  shaders: readonly string[];
  params: readonly ParamSpec[];
  /** Numbered kernel versions that can be forced (conv2d, matmul); timed side by side by the explorer. */
  versions?: readonly string[];
  /** Uploads inputs for these parameters; with `version`, execute() runs that kernel version. */
  prepare(params: Params, version?: string): PreparedCase;
}

/** Defaults of a case's parameters, overridden by `given`; numbers are checked against min and max. */
export function resolveParams(c: KernelCase, given: Params = {}): Params {
  const out: Params = {};
  for (const p of c.params) {
    const v = given[p.name] ?? p.default;
    if (p.choices) {
      // A page's select box gives strings: a choice matches by its text, and keeps its own type.
      const choice = p.choices.find((x) => String(x) === String(v));
      if (choice === undefined) throw new Error(`${c.id}: ${p.name} must be one of ${p.choices.join(', ')}, got ${v}.`);
      out[p.name] = choice;
    } else if (typeof p.default === 'number') {
      const n = Number(v);
      if (!Number.isFinite(n) || (p.min !== undefined && n < p.min) || (p.max !== undefined && n > p.max)) {
        throw new Error(`${c.id}: ${p.name} must be a number in [${p.min ?? '-∞'}, ${p.max ?? '∞'}], got ${v}.`);
      }
      out[p.name] = n;
    } else out[p.name] = v;
  }
  return out;
}

/** Deterministic inputs in [-1, 1) (an LCG), so a case gives the same numbers on every runtime. */
export function randomValues(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** `randomValues` mapped onto [lo, hi) (and rounded to f32, so the GPU and the reference see the same numbers). */
export function randomIn(n: number, seed: number, lo: number, hi: number): Float32Array {
  return randomValues(n, seed).map((v) => lo + ((hi - lo) * (v + 1)) / 2);
}

/** max |got − want| / max(1, |want|) over all elements (NaN where lengths differ or a value is not finite). */
export function maxError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) return NaN;
  let worst = 0;
  for (let i = 0; i < got.length; i++) {
    const e = Math.abs(got[i]! - want[i]!) / Math.max(1, Math.abs(want[i]!));
    if (!(e <= worst)) worst = Number.isNaN(e) ? NaN : e;
    if (Number.isNaN(worst)) return NaN;
  }
  return worst;
}

/**
 * The workgroup shape of the tiled kernels (matmul v2/v3, conv2d v2/v3 and its gradients), an override
 * constant pair the user may pin; 'auto' leaves the op's choice.
 */
export const TILE_PARAMS: readonly ParamSpec[] = [
  { name: 'WG_X', default: 'auto', choices: ['auto', 4, 8, 16, 32, 64], help: 'workgroup width (override constant WG_X); v3 kernels need a multiple of the subgroup size' },
  { name: 'WG_Y', default: 'auto', choices: ['auto', 1, 2, 4, 8, 16], help: 'workgroup height (override constant WG_Y)' },
];

/** Runs `run` with the workgroup shape the parameters pin (WG_X and WG_Y both given), else as the op chooses. */
export function withTiles<T>(p: Params, run: () => T): T {
  if (p.WG_X === undefined || p.WG_X === 'auto' || p.WG_Y === 'auto') return run();
  return withWorkgroupShape({ WG_X: Number(p.WG_X), WG_Y: Number(p.WG_Y) }, run);
}
