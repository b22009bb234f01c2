/**
 * The kernel explorer's cases (src/web/kernel-cases*.ts), checked on Node: together they cover every shader,
 * each matches its reference with its default parameters, with each kernel version, with each value of
 * each choice parameter and with a few edge parameters; each dispatches at least one of the shaders it lists
 * and no other (read from the profiler's labels); and none leaves a tensor alive.
 */
import { readdirSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { runtime } from '../../src/gpu/runtime.js';
import type { KernelTiming } from '../../src/gpu/profiler.js';
import { type Tensor, liveTensorCount } from '../../src/tensor/tensor.js';
import { type KernelCase, type Params, maxError, resolveParams } from '../../src/web/kernel-case.js';
import { KERNEL_CASES, kernelCase } from '../../src/web/kernel-cases.js';

useGpu();

const SHADERS = readdirSync(new URL('../../shaders/', import.meta.url))
  .filter((f) => f.endsWith('.wgsl'))
  .map((f) => f.slice(0, -'.wgsl'.length));

/** The shader of a profiler label: `shader`, `shader:entry`, `shader[constants]` or `shader:entry[constants]`. */
const shaderOf = (label: string) => label.split(/[:[<]/)[0]!; // conv2d_v3<f16>:main[...] → conv2d_v3

/** Prepares, runs under the profiler, reads back; checks the error, the shaders dispatched and that nothing leaks. */
async function check(c: KernelCase, given: Params, version?: string): Promise<void> {
  const live = liveTensorCount();
  const prepared = c.prepare(resolveParams(c, given), version);
  const rt = runtime();
  rt.profiler.start();
  let out: Tensor;
  let records: KernelTiming[];
  try {
    out = prepared.execute();
  } finally {
    records = await rt.profiler.stop();
  }
  const got = out.dtype === 'f16' ? await out.floats() : await out.data(); // f16 storage: widened values, not bits
  out.dispose();
  const error = maxError(got, prepared.reference());
  const what = `${c.id} ${JSON.stringify(given)}${version ? ` ${version}` : ''} (${prepared.describe})`;
  expect(error, `${what}: max error`).toBeLessThanOrEqual(prepared.tolerance);
  const dispatched = [...new Set(records.map((r) => shaderOf(r.kernel)))];
  expect(dispatched.filter((s) => !c.shaders.includes(s)), `${what}: dispatched but not listed`).toEqual([]);
  expect(dispatched.length, `${what}: dispatched nothing`).toBeGreaterThan(0);
  expect(Number.isFinite(prepared.flops) && prepared.flops >= 0, `${what}: flops`).toBe(true);
  prepared.dispose();
  expect(liveTensorCount(), `${what}: live tensors`).toBe(live);
}

test('the cases cover every shader and list only shaders that exist', () => {
  expect(Object.keys(EDGES).filter((id) => !KERNEL_CASES.some((c) => c.id === id))).toEqual([]);
  const listed = new Set(KERNEL_CASES.flatMap((c) => c.shaders));
  expect(SHADERS.length).toBeGreaterThan(0);
  expect(SHADERS.filter((s) => !listed.has(s))).toEqual([]);
  expect([...listed].filter((s) => !SHADERS.includes(s))).toEqual([]);
  expect(new Set(KERNEL_CASES.map((c) => c.id)).size).toBe(KERNEL_CASES.length);
});

/** Parameters that reach kernel paths the defaults do not (so those paths' shaders are checked against the lists too). */
const EDGES: Record<string, Params[]> = {
  // 1×1 convolutions run as matmuls; channel counts that are not multiples of 4 or 8 take other entry points.
  conv2d: [{ kernel: 1 }, { kernel: 1, outChannels: 6 }, { inChannels: 3 }],
  'conv2d-input-grad': [{ kernel: 1 }, { kernel: 1, inChannels: 6 }, { outChannels: 6, stride: 2 }],
  // Enough pixels to split the sum of dW (then reduce.wgsl adds the parts); an odd channel count.
  'conv2d-filter-grad': [{ batch: 8, height: 32, width: 32 }, { outChannels: 6 }],
  matmul: [{ M: 33, K: 255, N: 17, transposeB: 'yes' }],
  // Long rows with few outputs: a workgroup per row (main_wg).
  reduce: [{ d0: 1, d1: 16, d2: 4096 }],
  softmax: [{ outer: 2, n: 5000 }],
  'softmax-backward': [{ rows: 2, n: 5000 }],
  // Few channels and many rows: the automatic choice is the v2 statistics kernel.
  batchnorm: [{ batch: 64, channels: 8 }],
  'batchnorm-backward': [{ batch: 64, channels: 8 }],
  pool2d: [{ op: 'avg', pass: 'backward', poolSize: 2, stride: 1, height: 7, width: 5, channels: 3 }],
};

describe('each case matches its reference and dispatches only its shaders', () => {
  for (const c of KERNEL_CASES) {
    test(`${c.id}, defaults`, () => check(c, {}));
    for (const version of c.versions ?? []) test(`${c.id}, ${version}`, () => check(c, {}, version));
    // Each other value of each choice, the rest at their defaults.
    const variants = c.params.flatMap((p) => (p.choices ?? []).filter((v) => v !== p.default).map((v) => ({ [p.name]: v })));
    if (variants.length > 0) {
      test(`${c.id}, choices`, async () => {
        for (const v of variants) await check(c, v);
      });
    }
    const edges = EDGES[c.id] ?? [];
    if (edges.length > 0) {
      test(`${c.id}, edge parameters`, async () => {
        for (const e of edges) for (const version of [undefined, ...(c.versions ?? [])]) await check(c, e, version);
      });
    }
  }
});

test('resolveParams fills defaults and rejects values out of range or not among the choices', () => {
  const matmul = kernelCase('matmul');
  expect(resolveParams(matmul, { M: '12' })).toEqual({ M: 12, K: 256, N: 256, transposeB: 'no', storage: 'f32', WG_X: 'auto', WG_Y: 'auto' });
  expect(resolveParams(matmul, { WG_X: '32', WG_Y: '2' })).toMatchObject({ WG_X: 32, WG_Y: 2 });
  expect(() => resolveParams(matmul, { M: 0 })).toThrow(/M must be a number in \[1, 4096\]/);
  expect(() => resolveParams(matmul, { K: 4097 })).toThrow(/K must be a number/);
  expect(() => resolveParams(matmul, { N: 'many' })).toThrow(/N must be a number/);
  expect(() => resolveParams(matmul, { transposeB: 'maybe' })).toThrow(/transposeB must be one of no, yes/);
  expect(() => resolveParams(kernelCase('unary'), { op: 'cube' })).toThrow(/op must be one of/);
  // A select box gives text: a numeric choice matches '2' and keeps its type.
  expect(resolveParams(kernelCase('conv2d'), { stride: '2' }).stride).toBe(2);
  expect(() => resolveParams(kernelCase('conv2d'), { stride: '3' })).toThrow(/stride must be one of 1, 2/);
  expect(() => kernelCase('nope')).toThrow(/no kernel case 'nope'/);
});
