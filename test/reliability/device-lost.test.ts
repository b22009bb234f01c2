/**
 * Losing the GPU device. `runtime().device.destroy()` simulates a loss (a driver reset or an out-of-memory
 * kill looks the same to WebGPU: the device's `lost` promise resolves and nothing on it works any more).
 * After it, the next operation must throw a DeviceLostError that says what happened and what to do, never
 * a Dawn validation error and never a hang.
 *
 * This file destroys devices on purpose. Vitest runs every test file in its own process with its own device
 * (vitest.config.ts: pool 'forks'), so no other file is affected; within this file each test starts from a
 * fresh device (`shutdown()` then `init()`), and tensors of a lost device are abandoned, not disposed.
 *
 * Run: npx vitest run test/reliability/device-lost.test.ts
 */
import { beforeEach, describe, expect, test } from 'vitest';
import { init, runtime, shutdown } from '../../src/gpu/runtime.js';
import { tensor } from '../../src/tensor/create.js';
import { tidy } from '../../src/tensor/scope.js';
import { add, backward, mul, softmaxCrossEntropy } from '../../src/ops/index.js';
import { Sequential } from '../../src/nn/model.js';
import { Dense } from '../../src/nn/layers/core.js';
import { Adam } from '../../src/train/optimizers.js';
import { DeviceLostError } from '../../src/errors.js';

/** What the message must tell the user: what happened, and what to do about it. */
const GUIDANCE = [/The WebGPU device was lost \(destroyed/, /every tensor on it is gone/, /run the command again/, /last checkpoint in its run folder is intact/, /`graft train --resume`/];

function expectLostError(e: unknown): void {
  expect(e).toBeInstanceOf(DeviceLostError);
  for (const re of GUIDANCE) expect((e as Error).message).toMatch(re);
}

/** `p`, or a rejection saying it hung. */
function withinSeconds<T>(p: Promise<T>, seconds = 10): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`hung for ${seconds} s`)), seconds * 1000)));
  return Promise.race([p, hang]).finally(() => clearTimeout(timer));
}

/** Runs `fn` and returns what it threw (synchronously or by rejecting), or fails if it did not throw. */
async function thrownBy(fn: () => unknown): Promise<unknown> {
  try {
    await withinSeconds(Promise.resolve().then(fn));
  } catch (e) {
    return e;
  }
  throw new Error('expected an error, but the operation succeeded');
}

async function loseDevice(): Promise<void> {
  const gd = runtime().gpu;
  runtime().device.destroy();
  await withinSeconds(gd.lost); // the runtime learns of the loss through this promise
}

beforeEach(async () => {
  shutdown();
  await init();
});

describe('after the device is lost', () => {
  test('every kind of operation throws a DeviceLostError with guidance', async () => {
    const a = tensor([1, 2, 3]);
    expect(Array.from(await add(a, a).data())).toEqual([2, 4, 6]);
    await loseDevice();
    expectLostError(await thrownBy(() => add(a, a))); // a dispatch
    expectLostError(await thrownBy(() => tensor([1, 2]))); // an upload
    expectLostError(await thrownBy(() => a.data())); // a readback
    expectLostError(await thrownBy(() => runtime().sync())); // a sync
  });

  test('work recorded just before the loss fails at its readback, without hanging', async () => {
    const a = tensor([1, 2, 3]);
    const y = mul(add(a, a), a); // recorded, not yet submitted
    runtime().device.destroy(); // no await: the runtime has not been told yet
    expectLostError(await thrownBy(() => y.data()));
  });

  test('a readback in flight when the device is lost rejects with a DeviceLostError, or completes', async () => {
    const a = tensor([1, 2, 3]);
    const pending = add(a, a).data();
    runtime().device.destroy();
    // Losing the device may race with the copy: either the data arrived intact, or the read says why not.
    const outcome = await withinSeconds(pending.then((d) => Array.from(d), (e: unknown) => e));
    if (Array.isArray(outcome)) expect(outcome).toEqual([2, 4, 6]);
    else expectLostError(outcome);
    // Either way, the next operation knows.
    expectLostError(await thrownBy(() => add(a, a).data()));
  });

  test('a training step throws a DeviceLostError out of its tidy', async () => {
    const model = new Sequential([new Dense({ units: 3, name: 'd' })], { inputShape: [4], name: 'lost' });
    const opt = new Adam(model.trainableParameters(), { lr: 1e-2, globalClipNorm: 1 });
    const x = tensor(new Float32Array(8).fill(0.5), [2, 4]).keep();
    const y = tensor([0, 2], [2], 'i32').keep();
    const step = () =>
      tidy(() => {
        opt.zeroGrad();
        const l = softmaxCrossEntropy(model.call(x, { training: true }), y);
        backward(l);
        opt.step();
        return l;
      });
    expect(Number.isFinite(await step().item())).toBe(true);
    await loseDevice();
    expectLostError(await thrownBy(step));
  });

  test('shutdown() and init() give a working device again in the same process', async () => {
    await loseDevice();
    shutdown();
    await init();
    const a = tensor([1, 2, 3]);
    expect(Array.from(await add(a, a).data())).toEqual([2, 4, 6]);
  });
});
