/**
 * Smoke test of `npm run bench -- models`: ResNet50 at 32×32, batch 2, Graft only, one warm step per mode.
 * Checks that the report has every field the JSON promises, with finite positive numbers, and that the
 * FLOP counts order the modes as they must (training counts more than inference; full more than last).
 */
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { parseModelsArgs, runModels } from '../../bench/models.js';

useGpu();

const positive = (v: unknown) => {
  expect(typeof v).toBe('number');
  expect(Number.isFinite(v as number)).toBe(true);
  expect(v as number).toBeGreaterThan(0);
};

describe('bench models', () => {
  test('ResNet50 at 32, batch 2, Graft only: every mode reports finite positive times, FLOPs and memory', async () => {
    const options = parseModelsArgs(['--model', 'resnet50', '--size', '32', '--batch', '2', '--warm', '1', '--peers', 'none', '--no-json']);
    expect(options.peers).toEqual([]);
    const report = await runModels(options);
    expect(report.bench).toBe('models');
    expect(report.adapter.length).toBeGreaterThan(0);
    expect(report.machine.cpu.length).toBeGreaterThan(0);
    positive(report.machine.cores);
    expect(report.loadAverageStart).toHaveLength(3);
    expect(report.results.map((r) => r.mode)).toEqual(['forward', 'frozen', 'last', 'full']);
    for (const r of report.results) {
      expect(r.model).toBe('resnet50');
      expect(r.size).toBe(32);
      positive(r.flops);
      positive(r.graft.coldMs);
      positive(r.graft.medianMs);
      expect(r.graft.times).toHaveLength(1);
      positive(r.graft.memory.peakBytesInUse);
      expect(r.graft.memory.bytesAllocatedAfterSteps).toHaveLength(1);
      positive(r.graft.memory.bytesAllocatedAfterSteps[0]);
      expect(r.graft.memory.peakBytesInUse).toBeLessThanOrEqual(r.graft.memory.bytesAllocatedAfterSteps[0]!);
      expect(typeof r.graft.memory.flat).toBe('boolean');
      expect(r.peers).toEqual({});
      // One profiled step: its kernel families add up to its GPU time, which fits inside its wall time.
      const b = r.graft.breakdown!;
      positive(b.dispatches);
      expect(b.kernels.reduce((n, k) => n + k.calls, 0)).toBe(b.dispatches);
      expect(b.kernels.reduce((n, k) => n + k.ms, 0)).toBeCloseTo(b.gpuMs, 6);
      expect(b.gpuMs).toBeLessThanOrEqual(b.wallMs);
      expect(b.kernels.some((k) => k.kernel.startsWith('conv2d') || k.kernel.startsWith('matmul'))).toBe(true);
      for (const k of b.kernels) expect(k.kernel).not.toMatch(/\[/);
      expect(b.bestGflops).toBe(Math.max(...b.kernels.filter((k) => k.gflops !== null && k.share >= 0.01).map((k) => k.gflops!)));
    }
    const flops = Object.fromEntries(report.results.map((r) => [r.mode, r.flops]));
    expect(flops.frozen).toBeGreaterThan(flops.forward!);
    expect(flops.last).toBeGreaterThan(flops.frozen!);
    expect(flops.full).toBeGreaterThan(flops.last!);
    expect(flops.full).toBeLessThan(3 * flops.forward! + 1); // ≈ 3× forward when everything trains
    const trained = Object.fromEntries(report.results.map((r) => [r.mode, r.graft.trainedLayers]));
    expect(trained).toEqual({ forward: 0, frozen: 2, last: 5, full: 55 });
  });
});
