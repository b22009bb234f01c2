/**
 * Detecting NaN and ±Inf on the GPU, for guarding a training step (e.g. skipping a step whose loss or
 * gradients blew up) without a readback per step.
 *
 * shaders/nonfinite.wgsl tests each element's bits: an f32 is NaN or ±Inf exactly when its exponent bits
 * are all ones. (Float tricks such as "x − x is 0 for finite x and NaN otherwise" would need NaN to behave
 * as IEEE 754 says, which WGSL does not promise: an implementation may assume values are finite.) One
 * dispatch per tensor ORs into a single flag, which reads as the f32 1.0 when some element was bad; the
 * result is 1 − flag. Large tensors run in windows of the storage binding limit (launchFlat).
 *
 *   const ok = allFinite([loss, ...grads]);     // rank-0 tensor, 1 or 0, still on the GPU
 *   await checkFinite('loss', loss);            // reads back; throws NonFiniteError naming the tensor
 */
import { GraftError } from '../errors.js';
import { noGrad } from '../autograd/tape.js';
import { Uniforms } from '../gpu/uniforms.js';
import { type Tensor, shapeStr } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { affine, full } from '../ops/elementwise.js';
import { launchFlat } from '../ops/kernel.js';

const WG = 64;

/** A tensor held NaN or ±Inf where finite values were required. */
export class NonFiniteError extends GraftError {}

/**
 * A rank-0 f32 tensor: 1 when every element of every tensor is finite, else 0. Nothing is read back; an
 * empty list (or only empty tensors) gives 1. Not differentiable (it records nothing on the tape).
 */
export function allFinite(tensors: readonly Tensor[]): Tensor {
  return noGrad(() =>
    tidy(() => {
      const flag = full([], 0); // bits 0; the kernel ORs in the bits of 1.0
      for (const t of tensors) {
        t.assertAlive('allFinite');
        if (t.dtype !== 'f32') throw new GraftError(`allFinite: tensor ${t} has dtype ${t.dtype}; expected f32.`);
        launchFlat('allFinite', {
          shader: 'nonfinite',
          constants: { WG },
          uniforms: ({ count }) => new Uniforms().u32(count).u32(0).u32(0).u32(0),
          inputs: [t],
          outputs: [flag.buffer], // bound whole: every window ORs into the same word
          elements: t.size,
          workgroupSize: WG,
        });
      }
      return affine(flag, -1, 1);
    }),
  );
}

/** Plain-TypeScript reference: true when every value of every array is finite. */
export function allFiniteRef(arrays: ReadonlyArray<ArrayLike<number>>): boolean {
  return arrays.every((a) => Array.prototype.every.call(a, (v: number) => Number.isFinite(v)));
}

/**
 * Throws a NonFiniteError naming `name` when `tensor` holds NaN or ±Inf. Reads back one flag; only when
 * it is bad does it read the tensor itself, to say how many values are bad and where the first one is.
 */
export async function checkFinite(name: string, tensor: Tensor): Promise<void> {
  const flag = allFinite([tensor]);
  let ok: number;
  try {
    ok = await flag.item();
  } finally {
    flag.dispose();
  }
  if (ok === 1) return;
  const data = await tensor.floats();
  let bad = 0;
  let first = -1;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) {
      bad++;
      if (first < 0) first = i;
    }
  }
  throw new NonFiniteError(
    `${name}: ${bad} of ${data.length} values of ${shapeStr(tensor.shape)} are not finite (the first, at flat index ${first}, is ${data[first]}). ` +
      'Training diverged: lower the learning rate, clip gradients (clipNorm / globalClipNorm), or check the inputs for bad values.',
  );
}
