/**
 * TensorFlow.js with its WebGPU backend as the peer that benchmarks compare against, on the same adapter
 * as Graft: on Node, tfjs looks for `navigator.gpu`, so we hand it the GPU object Graft's device came from.
 * tfjs then requests its own adapter and device from it.
 */
import { runtime } from '../../src/gpu/runtime.js';

export type Tf = typeof import('@tensorflow/tfjs-core');

/** Loads tfjs-core and tfjs-backend-webgpu and selects the webgpu backend; on failure, says why. */
export async function loadTfjsWebgpu(): Promise<{ tf: Tf } | { error: string }> {
  try {
    const g = globalThis as { navigator?: { gpu?: GPU } };
    const gpu = runtime().gpu.gpu;
    if (!g.navigator) Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    else if (!g.navigator.gpu) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-webgpu');
    if (!(await tf.setBackend('webgpu'))) return { error: "tf.setBackend('webgpu') returned false" };
    await tf.ready();
    return { tf };
  } catch (e) {
    return { error: (e as Error).message ?? String(e) };
  }
}

/**
 * Loads tfjs-core and tfjs-backend-wasm and selects the wasm backend (WebAssembly on the CPU; SIMD where
 * Node has it); on failure, says why. tfjs keeps one backend active at a time: switch back with
 * `tf.setBackend('webgpu')`.
 */
export async function loadTfjsWasm(): Promise<{ tf: Tf } | { error: string }> {
  try {
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-wasm');
    if (!(await tf.setBackend('wasm'))) return { error: "tf.setBackend('wasm') returned false" };
    await tf.ready();
    return { tf };
  } catch (e) {
    return { error: (e as Error).message ?? String(e) };
  }
}

/**
 * Waits for the active tfjs backend's queued work without reading `t` back where it can: on webgpu, the
 * steps of its own read path (close the pass, submit) and onSubmittedWorkDone; elsewhere reads `t` (for
 * wasm, which computes synchronously, that costs nothing more).
 */
export async function tfjsSync(tf: Tf, t: { data(): Promise<unknown> }): Promise<void> {
  const b = tf.backend() as unknown as {
    ensureCommandEncoderReady?: () => void; endComputePassEncoder?: () => void; submitQueue?: () => void; device?: GPUDevice;
  };
  if (b.device && b.ensureCommandEncoderReady && b.endComputePassEncoder && b.submitQueue) {
    b.ensureCommandEncoderReady();
    b.endComputePassEncoder();
    b.submitQueue();
    await b.device.queue.onSubmittedWorkDone();
  } else {
    await t.data();
  }
}
