/**
 * Which kernels a computation dispatched, from the profiler's labels: tests use it to check that a
 * specialised path (a vec4 entry, a fused kernel) really ran, not only that the result is right.
 */
import { runtime } from '../../src/gpu/runtime.js';
import { tidy } from '../../src/tensor/scope.js';
import type { Tensor } from '../../src/tensor/tensor.js';

/**
 * Runs `fn` (inside tidy) under the profiler. Returns its result's values and the kernels it dispatched:
 * the shader and entry point as the profiler labels them ("unary" for entry main, "unary:main_vec4"),
 * without the override constants.
 */
export async function withKernels(fn: () => Tensor): Promise<{ y: Float32Array; kernels: string[] }> {
  const p = runtime().profiler;
  p.start();
  const t = tidy(fn);
  const records = await p.stop();
  const y = await t.floats();
  t.dispose();
  return { y, kernels: records.map((r) => r.kernel.split('[')[0]!) };
}
