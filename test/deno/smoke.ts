/**
 * Deno smoke test: one forward and one backward pass through the same src/ code that Node runs, on Deno's
 * own WebGPU (wgpu). Run with: deno run --unstable-webgpu --allow-read --allow-env test/deno/smoke.ts
 * Prints "deno smoke: ok" and exits 0, or prints the failure and exits 1.
 */
import { init, runtime } from '../../src/gpu/runtime.ts';
import { adapterName } from '../../src/gpu/device.ts';
import { tensor } from '../../src/tensor/create.ts';
import { tidy } from '../../src/tensor/scope.ts';
import * as ops from '../../src/ops/index.ts';

declare const Deno: { exit(code: number): never };

function check(name: string, got: ArrayLike<number>, want: number[], tol = 1e-5): void {
  const bad = want.findIndex((w, i) => !(Math.abs(got[i]! - w) <= tol * Math.max(1, Math.abs(w))));
  if (got.length !== want.length || bad >= 0) {
    throw new Error(`${name}: got [${Array.from(got).join(', ')}], expected [${want.join(', ')}]`);
  }
}

try {
  await init();
  const rt = runtime();
  console.log(`deno smoke: adapter ${adapterName(rt.gpu.info)}; subgroups ${rt.gpu.features.subgroups}`);
  const w = tensor([0.5, -1, 2], [3]).keep();
  w.requiresGrad = true;
  const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]).keep();
  // forward: loss = Σ tanh(x·w)² ; backward: dL/dw = Σ_rows 2·tanh·(1 − tanh²)·x
  const loss = tidy(() => {
    const l = ops.sum(ops.square(ops.tanh(ops.mul(x, w))));
    ops.backward(l);
    return l;
  });
  const xs = [1, 2, 3, 4, 5, 6];
  const ws = [0.5, -1, 2];
  let expectLoss = 0;
  const expectGrad = [0, 0, 0];
  xs.forEach((xv, i) => {
    const t = Math.tanh(xv * ws[i % 3]!);
    expectLoss += t * t;
    expectGrad[i % 3]! += 2 * t * (1 - t * t) * xv;
  });
  check('forward', await loss.data(), [expectLoss]);
  check('backward', await w.grad!.data(), expectGrad, 1e-4);
  console.log('deno smoke: ok');
  Deno.exit(0);
} catch (e) {
  console.error(`deno smoke: FAILED: ${(e as Error).stack ?? e}`);
  Deno.exit(1);
}
