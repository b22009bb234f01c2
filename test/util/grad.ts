/**
 * Gradient checks. A test states an op twice, once on the GPU through the autograd engine and once as a
 * plain f64 reference, and both are reduced to a scalar loss L = Σ out·w with fixed random weights w,
 * so every output element matters. Then:
 *   1. the reference's analytic gradient (if given) matches finite differences of the reference, in f64;
 *   2. the GPU backward matches those finite differences.
 */
import { tensor } from '../../src/tensor/create.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { tidy } from '../../src/tensor/scope.js';
import { backward, mul, sum } from '../../src/ops/index.js';
import { expectClose, finiteDiff, randomData, type Tolerance } from './check.js';

export interface GradInput {
  data: Float32Array;
  shape: number[];
}

/** Runs `f` on the GPU and returns L and dL/d(input) for each input. */
export async function gpuGradients(f: (xs: Tensor[]) => Tensor, inputs: GradInput[], weightSeed = 99): Promise<{ loss: number; grads: Float32Array[]; outShape: number[] }> {
  const xs = inputs.map((i) => {
    const t = tensor(i.data, i.shape).keep();
    t.requiresGrad = true;
    return t;
  });
  const { loss, outShape } = tidy(() => {
    const out = f(xs);
    const w = tensor(randomData(out.size, weightSeed), out.shape);
    const l = sum(mul(out, w));
    backward(l);
    return { loss: l, outShape: [...out.shape] };
  });
  const value = await loss.item();
  loss.dispose();
  const grads = await Promise.all(xs.map(async (x) => Float32Array.from(await x.grad!.floats())));
  for (const x of xs) x.dispose();
  return { loss: value, grads, outShape };
}

/** L(x) = Σ ref(x)·w in f64, for finite differences. `ref` maps flat inputs to a flat output. */
export function referenceLoss(ref: (xs: Float64Array[]) => ArrayLike<number>, weightSeed = 99) {
  let w: Float32Array | null = null;
  return (xs: Float64Array[]) => {
    const out = ref(xs);
    w ??= randomData(out.length, weightSeed);
    let s = 0;
    for (let i = 0; i < out.length; i++) s += out[i]! * w[i]!;
    return s;
  };
}

/** Finite-difference gradients of L with respect to each input, in f64. */
export function referenceGradients(ref: (xs: Float64Array[]) => ArrayLike<number>, inputs: GradInput[], weightSeed = 99, eps = 1e-6): Float64Array[] {
  const L = referenceLoss(ref, weightSeed);
  const xs: Float64Array[] = inputs.map((i) => Float64Array.from(i.data));
  return xs.map((_, k) =>
    finiteDiff((xk) => {
      const all: Float64Array[] = xs.slice();
      all[k] = xk;
      return L(all);
    }, xs[k]!, eps),
  );
}

/** The whole check: GPU backward against f64 finite differences of the reference. */
export async function checkGradients(
  f: (xs: Tensor[]) => Tensor,
  ref: (xs: Float64Array[]) => ArrayLike<number>,
  inputs: GradInput[],
  tol: Tolerance = { rtol: 2e-3, atol: 2e-4 },
): Promise<void> {
  const gpu = await gpuGradients(f, inputs);
  const fd = referenceGradients(ref, inputs);
  fd.forEach((g, k) => expectClose(gpu.grads[k]!, g, tol, `d loss / d input ${k}`));
}
