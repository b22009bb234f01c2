/**
 * Pinned workgroup shapes (`withWorkgroupShape`, src/ops/kernel.ts): the tiled kernels (matmul v2/v3, conv2d
 * v2/v3 forward, dX and dW) stay correct with any valid WG_X × WG_Y, because the grid is computed from the
 * pinned shape; the kernels really run with it (the profiler's labels carry the override constants); and
 * shapes the device or a subgroup kernel cannot run are refused with the reason.
 */
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { runtime } from '../../src/gpu/runtime.js';
import { withWorkgroupShape } from '../../src/ops/kernel.js';
import { kernelCase } from '../../src/web/kernel-cases.js';
import { maxError, resolveParams } from '../../src/web/kernel-case.js';

useGpu();

const SHAPES: Array<[number, number]> = [[8, 8], [16, 1], [32, 2], [8, 16], [64, 4]];
const CASES: Array<[string, Record<string, number | string>]> = [
  ['matmul', { M: 37, K: 29, N: 44 }],
  ['matmul', { M: 20, K: 24, N: 36, transposeB: 'yes' }],
  ['conv2d', { batch: 2, height: 11, width: 9, inChannels: 5, outChannels: 12, kernel: 3, stride: 2, padding: 'same' }],
  ['conv2d-input-grad', { batch: 2, height: 9, width: 7, inChannels: 8, outChannels: 12, kernel: 3 }],
  ['conv2d-filter-grad', { batch: 2, height: 9, width: 7, inChannels: 8, outChannels: 12, kernel: 3 }],
];

describe('withWorkgroupShape', () => {
  for (const [id, given] of CASES) {
    test(`${id} ${JSON.stringify(given)}: correct under every pinned shape, for every version`, async () => {
      const c = kernelCase(id);
      for (const version of c.versions ?? [undefined]) {
        for (const [x, y] of SHAPES) {
          const prepared = c.prepare(resolveParams(c, { ...given, WG_X: x, WG_Y: y }), version);
          const p = runtime().profiler;
          p.start();
          const out = prepared.execute();
          const labels = (await p.stop()).map((r) => r.kernel);
          const error = maxError(await out.data(), prepared.reference());
          out.dispose();
          prepared.dispose();
          expect(error, `${id} ${version} ${x}×${y}`).toBeLessThanOrEqual(prepared.tolerance);
          // Every tiled dispatch ran with the pinned constants.
          const tiled = labels.filter((l) => l.includes('WG_X=') && !/_v1[[:]/.test(l)); // v1, the naive baseline, has a fixed shape
          if (version !== 'v1') expect(tiled.length, `${id} ${version}: ${labels.join(' ')}`).toBeGreaterThan(0);
          for (const l of tiled) expect(l, `${id} ${version}`).toMatch(new RegExp(`WG_X=${x},WG_Y=${y}`));
        }
      }
    }, 120_000);
  }

  test('refuses shapes the device or a subgroup kernel cannot run', () => {
    expect(() => withWorkgroupShape({ WG_X: 64, WG_Y: 64 }, () => 0)).toThrow(/not a workgroup this device runs/);
    expect(() => withWorkgroupShape({ WG_X: 0, WG_Y: 4 }, () => 0)).toThrow(/positive integers/);
    const c = kernelCase('matmul');
    if (runtime().gpu.features.subgroups) {
      const prepared = c.prepare(resolveParams(c, { M: 8, K: 8, N: 8, WG_X: 4, WG_Y: 16 }), 'v3');
      expect(() => prepared.execute()).toThrow(/WG_X = 4 must be a multiple of the subgroup size/);
      prepared.dispose();
    }
  });
});
