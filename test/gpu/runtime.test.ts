import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { runtime } from '../../src/gpu/runtime.js';
import { registerShaderSources } from '../../src/gpu/shader-source.js';
import { Uniforms } from '../../src/gpu/uniforms.js';
import { sizeClass } from '../../src/gpu/buffer-pool.js';
import { summarize } from '../../src/gpu/profiler.js';
import { GpuError, LimitError, ShaderCompileError } from '../../src/errors.js';
import { tensor } from '../../src/tensor/create.js';
import { tidy } from '../../src/tensor/scope.js';
import { Tensor } from '../../src/tensor/tensor.js';
import * as ops from '../../src/ops/index.js';
import { launch } from '../../src/ops/kernel.js';

useGpu();

registerShaderSources({
  test_broken: [
    '@group(0) @binding(1) var<storage, read_write> y: array<f32>;',
    '',
    '@compute @workgroup_size(1)',
    'fn main() {',
    '  let x: f32 = 1u;',
    '  y[0] = x;',
    '}',
  ].join('\n'),
  test_two_buffers: [
    '@group(0) @binding(1) var<storage, read> x: array<f32>;',
    '@group(0) @binding(2) var<storage, read_write> y: array<f32>;',
    '@compute @workgroup_size(1) fn main() { y[0] = x[0]; }',
  ].join('\n'),
});

describe('pipelines', () => {
  test('a WGSL compile error names the kernel and shows numbered source with a marker', async () => {
    const err = await runtime().pipelines.compile({ shader: 'test_broken' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShaderCompileError);
    const msg = (err as Error).message;
    expect(msg).toContain("kernel 'test_broken'");
    expect(msg).toMatch(/error at line 5:\d+: .*'let' of type 'f32'.*'u32'/);
    expect(msg).toMatch(/> 5 \|   let x: f32 = 1u;/);
    expect(msg).toMatch(/\n +\| +\^/);
  });

  test('a compile error in a dispatched kernel surfaces at the next synchronisation', async () => {
    const y = Tensor.empty([1], 'f32');
    launch('test', { shader: 'test_broken', inputs: [], outputs: [y], workgroups: [1] });
    await expect(y.data()).rejects.toThrow(/WGSL compile error in kernel 'test_broken'/);
    y.dispose();
  });

  test('pipelines are cached by shader and override constants', () => {
    const cache = runtime().pipelines;
    const a = cache.get({ shader: 'unary', constants: { OP: 0, WG: 64 } });
    const before = cache.size;
    expect(cache.get({ shader: 'unary', constants: { OP: 0, WG: 64 } })).toBe(a);
    expect(cache.size).toBe(before);
    const b = cache.get({ shader: 'unary', constants: { OP: 1, WG: 64 } });
    expect(b).not.toBe(a);
    expect(b.label).toBe('unary[OP=1,WG=64]');
  });

  test('a validation error becomes a GpuError that names the kernel', async () => {
    const x = Tensor.empty([4], 'f32');
    // The kernel declares two storage bindings; give it one, and WebGPU rejects the bind group.
    runtime().dispatch({ shader: 'test_two_buffers', buffers: [x.buffer], workgroups: [1] });
    const err = await runtime().sync().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpuError);
    expect((err as Error).message).toContain('test_two_buffers');
    x.dispose();
    // The runtime stays usable afterwards.
    const y = tidy(() => ops.addScalar(tensor([1, 2]), 1));
    expect(Array.from(await y.data())).toEqual([2, 3]);
    y.dispose();
  });
});

describe('buffers and uniforms', () => {
  test('size classes: powers of two up to 1 MiB, then eighths of a power of two', () => {
    expect(sizeClass(1)).toBe(16);
    expect(sizeClass(17)).toBe(32);
    expect(sizeClass(1000)).toBe(1024);
    expect(sizeClass(1 << 20)).toBe(1 << 20);
    expect(sizeClass((1 << 20) + 1)).toBe((1 << 20) + (1 << 17));
    for (const n of [3_000_000, 10_000_001, 123_456_789]) {
      expect(sizeClass(n)).toBeGreaterThanOrEqual(n);
      expect(sizeClass(n) / n).toBeLessThan(1.125 + 1e-9);
    }
  });

  test('an allocation above maxBufferSize names the tensor and the limit', () => {
    const limit = runtime().gpu.limits.maxBufferSize;
    const n = Math.ceil(limit / 4) + 1024;
    expect(() => Tensor.empty([n], 'f32', 'huge')).toThrow(LimitError);
    expect(() => Tensor.empty([n], 'f32', 'huge')).toThrow(new RegExp(`huge \\[${n}\\].*maxBufferSize of ${limit}`));
  });

  test('uniform layout: scalars packed, vec4 aligned to 16 bytes, size rounded to 16', () => {
    const u = new Uniforms().u32(7).f32(0.5).vec4u([1, 2, 3, 4]).i32(-3);
    expect(u.byteLength).toBe(48);
    const view = new DataView(new ArrayBuffer(48));
    u.writeTo(view, 0);
    expect(view.getUint32(0, true)).toBe(7);
    expect(view.getFloat32(4, true)).toBe(0.5);
    expect(view.getUint32(16, true)).toBe(1);
    expect(view.getUint32(28, true)).toBe(4);
    expect(view.getInt32(32, true)).toBe(-3);
  });

  test('writes to a buffer still used by queued work do not overtake that work', async () => {
    const x = tensor([1, 2, 3, 4]);
    const y = ops.mulScalar(x, 10); // queued, not yet submitted
    x.dispose();
    const z = tensor([5, 6, 7, 8]); // may reuse x's buffer
    expect(Array.from(await y.data())).toEqual([10, 20, 30, 40]);
    expect(Array.from(await z.data())).toEqual([5, 6, 7, 8]);
    y.dispose();
    z.dispose();
  });

  test('large elementwise problems spill into a 2-D grid', async () => {
    const n = 65_535 * 64 + 77; // more workgroups than one dimension allows
    const y = tidy(() => ops.addScalar(ops.full([n], 1.5), 1));
    const d = await y.data();
    expect(d.length).toBe(n);
    expect(d[0]).toBe(2.5);
    expect(d[n - 1]).toBe(2.5);
    y.dispose();
  });
});

describe('profiler', () => {
  test('timestamp queries time each dispatch by kernel', async () => {
    const rt = runtime();
    if (!rt.profiler.available) return; // the adapter lacks timestamp-query: nothing to test
    rt.profiler.start();
    const y = tidy(() => ops.sum(ops.exp(ops.full([1 << 16], 0.5))));
    const records = await rt.profiler.stop();
    y.dispose();
    const kernels = records.map((r) => r.kernel);
    expect(kernels.some((k) => k.startsWith('unary') && k.includes('[OP=1,'))).toBe(true); // exp (entry main or main_vec4)
    expect(kernels.some((k) => k.startsWith('reduce'))).toBe(true);
    for (const r of records) expect(r.ms).toBeGreaterThanOrEqual(0);
    const summary = summarize(records);
    expect(summary.reduce((n, s) => n + s.calls, 0)).toBe(records.length);
  });
});

describe('no adapter', () => {
  test('graft info fails with the command that installs a CPU driver', () => {
    const r = spawnSync(process.execPath, ['bin/graft.js', 'info'], {
      env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('No WebGPU adapter found');
    expect(r.stderr).toContain('sudo bash scripts/install-webgpu-cpu.sh');
  });
});
