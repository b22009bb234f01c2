/**
 * Smoke test of `npm run bench -- gpu` (what bench/gpu.sh runs on a GPU machine), at sizes a CPU adapter
 * runs in seconds: matmul 64², ResNet50 at 32×32, batch 2, forward only, Graft f32 and f16, no tfjs.
 * Checks the report's fields, that the matmul rates are the FLOPs over the times, and that the targets are
 * judged from the measured numbers. Also: bench/gpu.sh is valid bash and refuses a CPU adapter by default.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { parseGpuArgs, runGpu, TARGETS } from '../../bench/gpu.js';
import { ArgumentError } from '../../src/errors.js';

useGpu();

describe('bench gpu', () => {
  test('tiny sizes: matmul f32 and f16, ResNet50 forward in f32 and f16, targets judged from the measurements', async () => {
    const o = parseGpuArgs(['--matmul', '64', '--size', '32', '--batch', '2', '--warm', '1', '--runs', '2', '--modes', 'forward', '--no-tfjs', '--no-json']);
    const r = await runGpu(o);
    expect(r.bench).toBe('gpu');
    expect(r.matmul.n).toBe(64);
    expect(r.matmul.cells.map((c) => c.what)).toEqual(['Graft f32', 'Graft f16 storage, f32 sums']); // this adapter has shader-f16
    for (const c of r.matmul.cells) {
      expect(c.ms).toBeGreaterThan(0);
      expect(c.tflops).toBeCloseTo((2 * 64 ** 3) / c.ms / 1e9, 12);
    }
    expect(r.models.results.map((m) => m.mode)).toEqual(['forward']);
    expect(r.models.results[0]!.graftF16!.medianMs).toBeGreaterThan(0);
    const t = r.targets['matmul f32 TFLOP/s']!;
    expect(t).toEqual({ target: TARGETS.matmulF32Tflops, measured: r.matmul.cells[0]!.tflops, met: false });
    expect(r.targets['ResNet50 training images/s']).toEqual({ target: TARGETS.resnet50TrainImagesPerSecond, measured: null, met: false }); // no 'full' mode run
  });

  test('bad options are named', () => {
    expect(() => parseGpuArgs(['--matmul', '30'])).toThrow(/multiple of 4/);
    expect(() => parseGpuArgs(['--modes', 'fast'])).toThrow(ArgumentError);
    expect(() => parseGpuArgs(['--gpu'])).toThrow(/unknown option --gpu/);
  });

  test('bench/gpu.sh parses, and stops on a CPU adapter unless told otherwise', () => {
    expect(spawnSync('bash', ['-n', 'bench/gpu.sh']).status).toBe(0);
    const r = spawnSync('bash', ['bench/gpu.sh'], { encoding: 'utf8', env: { ...process.env, GRAFT_ALLOW_CPU: '0' }, timeout: 120_000 });
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/CPU rasteriser, not the GPU/);
  });
});
