/**
 * Deterministic "formula" weights, the TypeScript twin of test/golden/make_goldens.py (keep the two in step):
 * the PyTorch goldens in test/fixtures/pytorch/ were computed with exactly these numbers, so the parity test
 * needs no weights file, only the formula.
 *
 *   t  = the index of the weight's Keras key ('conv1_conv/kernel', …) in the sorted list of the model's keys
 *   i  = the element's index in the row-major Keras layout (conv kernels HWIO, dense kernels [in, out])
 *   j = (i + 7919·t) mod 1000003
 *   s(t, i) = sin(j² mod 1000003)                            (an integer argument, in radians)
 *   kernel           s(t, i) · 2 / sqrt(fan_in)   fan_in = product of all but the last dimension (He scale)
 *   bias             0.1 · s(t, i)
 *   gamma            1 + 0.1 · s(t, i)
 *   beta             0.1 · s(t, i)
 *   moving_mean      0.1 · s(t, i)
 *   moving_variance  1 + 0.2 · |s(t, i)|
 *   input            s(1000, i) over the NHWC input [batch, H, W, 3]
 *
 * The integer arithmetic is exact in doubles (j² < 2^40), so both languages take the sine of the same integer;
 * their sines may differ in the last bit, far below the test's tolerance. The square (a chirp) makes the values
 * behave like noise (no correlation between neighbours, a kernel's singular values spread like a random
 * matrix's); a linear phase sin(a·i + b) would make every [K, O] kernel a rank-2 matrix.
 */
import type { SafetensorsTensor } from '../../src/weights/safetensors.js';
import type { Layer } from '../../src/nn/layer.js';

export const INPUT_T = 1000;

/** s(t, i) for i = 0 … n-1, each multiplied by `scale` and shifted by `shift` (|s| first when `abs`). */
export function formulaValues(t: number, n: number, scale = 1, shift = 0, abs = false): Float32Array {
  const out = new Float32Array(n);
  const P = 1000003;
  let j = (7919 * t) % P; // j = (i + 7919·t) mod P, stepped along with i
  for (let i = 0; i < n; i++, j = j + 1 === P ? 0 : j + 1) {
    const v = Math.sin((j * j) % P);
    out[i] = shift + scale * (abs ? Math.abs(v) : v);
  }
  return out;
}

/** The formula tensor of one weight, given its Keras key, shape and index t among the sorted keys. */
export function formulaWeight(key: string, shape: readonly number[], t: number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const kind = key.slice(key.lastIndexOf('/') + 1);
  switch (kind) {
    case 'kernel':
      return formulaValues(t, n, 2 / Math.sqrt(n / shape[shape.length - 1]!));
    case 'bias':
    case 'beta':
    case 'moving_mean':
      return formulaValues(t, n, 0.1);
    case 'gamma':
      return formulaValues(t, n, 0.1, 1);
    case 'moving_variance':
      return formulaValues(t, n, 0.2, 1, true);
    default:
      throw new Error(`formula-weights: no formula for ${key}`);
  }
}

/** Every weight of `model` as a formula tensor, keyed as loadWeights expects; t follows the sorted keys. */
export function formulaWeights(model: Layer): Map<string, SafetensorsTensor> {
  const shapes = new Map(model.weights.map((w) => [w.key, [...w.value.shape]]));
  const keys = [...shapes.keys()].sort();
  return new Map(keys.map((key, t) => [key, { dtype: 'F32' as const, shape: shapes.get(key)!, data: formulaWeight(key, shapes.get(key)!, t) }]));
}

/** The formula input [batch, H, W, 3], NHWC flat. */
export function formulaInput(batch: number, h: number, w: number): Float32Array {
  return formulaValues(INPUT_T, batch * h * w * 3);
}
