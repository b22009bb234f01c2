/** Shared test setup: one device per test file (vitest runs each file in its own process). */
import { beforeAll } from 'vitest';
import { init } from '../../src/gpu/runtime.js';

export function useGpu(): void {
  beforeAll(async () => {
    await init();
  });
}
