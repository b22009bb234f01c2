/**
 * The GPU runtime: one device, its buffer pool and pipeline cache, and a command batcher.
 *
 * Ops call `dispatch()` synchronously. Dispatches are recorded into one open compute pass and submitted in
 * batches, because on lavapipe a separate submit costs ~30 µs while a dispatch inside a pass costs ~18 µs.
 * A batch is submitted when it grows large, before a buffer that it uses is overwritten from the CPU, and
 * whenever the CPU waits for results (`read`, `sync`).
 *
 * Errors: every batch runs inside WebGPU error scopes, and every pipeline, bind group and pass is labelled
 * with its kernel's name, so a validation error comes back naming the kernel. Such errors arrive
 * asynchronously; they are thrown at the next synchronisation point, or at the next dispatch once known.
 * A lost device (src/gpu/device.ts) is checked first at each of those points, so after a loss the next
 * dispatch, upload, read or sync throws a DeviceLostError that says what to do, never a Dawn error.
 */
import { GpuError, GraftError, LimitError } from '../errors.js';
import { assertNotLost, acquireDevice, type DeviceOptions, type GpuDevice } from './device.js';
import { BufferPool } from './buffer-pool.js';
import { PipelineCache, type KernelKey, kernelLabel } from './pipeline-cache.js';
import { prepareShaderLoader } from './shader-source.js';
import { Profiler } from './profiler.js';
import type { Uniforms } from './uniforms.js';

export type Binding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size: number };

export interface DispatchSpec extends KernelKey {
  uniforms?: Uniforms;
  /** Storage buffers at @binding(1), @binding(2), … in order. */
  buffers: Binding[];
  workgroups: [number, number?, number?];
  /** Floating-point operations, for the profiler's GFLOP/s. */
  flops?: number;
}

const UNIFORM_CHUNK = 64 * 1024;
const MAX_DISPATCHES_PER_BATCH = 256;

export class GpuRuntime {
  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  readonly profiler: Profiler;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private batchKernels: string[] = [];
  private batchBuffers = new Set<GPUBuffer>();
  private uniformChunks: { buffer: GPUBuffer; data: ArrayBuffer }[] = [];
  private uniformChunk = 0;
  private uniformOffset = 0;
  private readonly uniformAlign: number;
  private errors: Error[] = [];
  private scopeChecks: Promise<void>[] = [];
  private dummy: GPUBuffer;
  /** Counters for benchmarks and tests. */
  readonly counters = { dispatches: 0, submits: 0 };

  constructor(readonly gpu: GpuDevice) {
    const d = gpu.device;
    this.pool = new BufferPool(d, gpu.limits.maxBufferSize);
    this.pipelines = new PipelineCache(d);
    this.profiler = new Profiler(this);
    this.uniformAlign = gpu.limits.minUniformBufferOffsetAlignment;
    this.dummy = d.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE, label: 'graft-dummy' });
    d.addEventListener('uncapturederror', (ev) => {
      const e = (ev as GPUUncapturedErrorEvent).error;
      this.errors.push(new GpuError(`Uncaptured WebGPU error: ${e.message}`));
    });
  }

  get device(): GPUDevice {
    return this.gpu.device;
  }

  /** A 16-byte buffer for optional bindings (e.g. "no bias"); the shader must not read it. */
  get emptyBuffer(): GPUBuffer {
    return this.dummy;
  }

  dispatch(spec: DispatchSpec): void {
    this.throwPending();
    const { pipeline, layout, label } = this.pipelines.get(spec);
    const [x, y = 1, z = 1] = spec.workgroups;
    const maxWg = this.gpu.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxWg || y > maxWg || z > maxWg) {
      throw new GraftError(`Kernel '${label}': dispatch of ${x}×${y}×${z} workgroups exceeds the limit of ${maxWg} per dimension.`);
    }
    if (x === 0 || y === 0 || z === 0) return;
    const entries: GPUBindGroupEntry[] = [];
    if (spec.uniforms) entries.push({ binding: 0, resource: this.uniformSlice(spec.uniforms) });
    const maxBinding = this.gpu.limits.maxStorageBufferBindingSize;
    spec.buffers.forEach((b, i) => {
      const res = 'buffer' in b ? b : { buffer: b, size: Math.min(b.size, maxBinding) };
      // Ops check their bindings first (src/ops/kernel.ts) and name the tensor; this is the last line of defence.
      if (res.size > maxBinding) {
        throw new LimitError(
          `Kernel '${label}': binding ${i + 1} (buffer '${res.buffer.label}') is ${res.size} bytes, over maxStorageBufferBindingSize ${maxBinding}.`,
        );
      }
      this.batchBuffers.add(res.buffer);
      entries.push({ binding: i + 1, resource: res });
    });
    if (!this.encoder) this.beginBatch();
    const bindGroup = this.device.createBindGroup({ label, layout, entries });
    const pass = this.profiler.active ? this.profiler.beginPass(this.encoder!, label, spec.flops ?? 0) : this.openPass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (this.profiler.active) pass.end();
    this.batchKernels.push(label);
    this.counters.dispatches++;
    if (this.batchKernels.length >= MAX_DISPATCHES_PER_BATCH) this.flush();
  }

  /** Copies `bytes` bytes between buffers, in order with the dispatches around it. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    if (!this.encoder) this.beginBatch();
    this.closePass();
    this.batchBuffers.add(src).add(dst);
    this.encoder!.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.batchKernels.push('copy');
  }

  /** Writes CPU data into a buffer. Pending work that used the buffer is submitted first. */
  upload(buffer: GPUBuffer, data: ArrayBufferView, byteOffset = 0): void {
    this.throwPending();
    if (this.batchBuffers.has(buffer)) this.flush();
    const bytes = data.byteLength;
    if (bytes % 4 === 0) {
      this.device.queue.writeBuffer(buffer, byteOffset, data.buffer, data.byteOffset, bytes);
    } else {
      const padded = new Uint8Array(Math.ceil(bytes / 4) * 4);
      padded.set(new Uint8Array(data.buffer, data.byteOffset, bytes));
      this.device.queue.writeBuffer(buffer, byteOffset, padded);
    }
  }

  /** Reads `bytes` bytes from a buffer, after everything dispatched so far. */
  async read(buffer: GPUBuffer, byteOffset: number, bytes: number): Promise<ArrayBuffer> {
    assertNotLost(this.gpu);
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, label: 'graft-readback' });
    this.copy(buffer, byteOffset, staging, 0, size);
    this.flush();
    try {
      await staging.mapAsync(GPUMapMode.READ);
      return staging.getMappedRange().slice(0, bytes);
    } catch (e) {
      await this.settle();
      await this.throwIfLostSoon();
      throw e;
    } finally {
      staging.destroy();
      await this.settle();
    }
  }

  /** Submits pending work, waits for the GPU to finish it, and throws any error it raised. */
  async sync(): Promise<void> {
    assertNotLost(this.gpu);
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.settle();
  }

  /** Submits the open batch. */
  flush(): void {
    if (!this.encoder) return;
    this.closePass();
    this.profiler.resolve(this.encoder);
    for (let i = 0; i <= this.uniformChunk && i < this.uniformChunks.length; i++) {
      const c = this.uniformChunks[i]!;
      const used = i < this.uniformChunk ? UNIFORM_CHUNK : this.uniformOffset;
      if (used > 0) this.device.queue.writeBuffer(c.buffer, 0, c.data, 0, used);
    }
    this.device.queue.submit([this.encoder.finish()]);
    this.counters.submits++;
    const kernels = this.batchKernels;
    const oom = this.device.popErrorScope();
    const validation = this.device.popErrorScope();
    this.scopeChecks.push(
      Promise.all([validation, oom]).then(([v, o]) => {
        for (const err of [v, o]) if (err) this.errors.push(this.explain(err, kernels));
      }),
    );
    this.profiler.afterSubmit();
    this.encoder = null;
    this.batchKernels = [];
    this.batchBuffers.clear();
    this.uniformChunk = 0;
    this.uniformOffset = 0;
  }

  /** Waits for outstanding error checks and throws the first error found. */
  async settle(): Promise<void> {
    const checks = this.scopeChecks;
    this.scopeChecks = [];
    await Promise.all(checks);
    await this.pipelines.settle();
    this.throwPending();
  }

  /**
   * When a device is lost, a pending mapAsync may fail before the device's `lost` promise has settled; then
   * wait a moment for it, so that the caller gets a DeviceLostError saying what to do, not a bare AbortError.
   */
  private async throwIfLostSoon(): Promise<void> {
    if (this.gpu.lostReason === null) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([this.gpu.lost, new Promise((resolve) => (timer = setTimeout(resolve, 100)))]);
      clearTimeout(timer);
    }
    assertNotLost(this.gpu);
  }

  private throwPending(): void {
    assertNotLost(this.gpu);
    const e = this.pipelines.errors.shift() ?? this.errors.shift();
    if (e) {
      this.errors.length = 0;
      this.pipelines.errors.length = 0;
      throw e;
    }
  }

  private explain(err: GPUError, kernels: string[]): Error {
    // Dawn's messages quote the labels of the objects involved; name the kernel from them if we can.
    const named = kernels.find((k) => err.message.includes(`"${k}"`));
    const where = named ? `in kernel '${named}'` : `in a batch of kernels [${[...new Set(kernels)].join(', ')}]`;
    return new GpuError(`WebGPU ${err.constructor.name.replace(/^GPU/, '')} ${where}: ${err.message}`);
  }

  private beginBatch(): void {
    this.device.pushErrorScope('validation');
    this.device.pushErrorScope('out-of-memory');
    this.encoder = this.device.createCommandEncoder({ label: 'graft-batch' });
  }

  private openPass(): GPUComputePassEncoder {
    if (!this.pass) this.pass = this.encoder!.beginComputePass({ label: 'graft-pass' });
    return this.pass;
  }

  private closePass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  private uniformSlice(u: Uniforms): GPUBufferBinding {
    const size = u.byteLength;
    if (this.uniformOffset + size > UNIFORM_CHUNK) {
      this.uniformChunk++;
      this.uniformOffset = 0;
    }
    if (this.uniformChunk >= this.uniformChunks.length) {
      this.uniformChunks.push({
        buffer: this.device.createBuffer({ size: UNIFORM_CHUNK, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'graft-uniforms' }),
        data: new ArrayBuffer(UNIFORM_CHUNK),
      });
    }
    const chunk = this.uniformChunks[this.uniformChunk]!;
    const offset = this.uniformOffset;
    u.writeTo(new DataView(chunk.data), offset);
    this.uniformOffset = Math.ceil((offset + size) / this.uniformAlign) * this.uniformAlign;
    return { buffer: chunk.buffer, offset, size };
  }

  destroy(): void {
    this.pool.destroy();
    this.dummy.destroy();
    for (const c of this.uniformChunks) c.buffer.destroy();
    this.profiler.destroy();
    this.device.destroy();
  }
}

let current: GpuRuntime | null = null;
let pending: Promise<GpuRuntime> | null = null;

/** Acquires the device (once). Every other Graft call needs this to have resolved. */
export async function init(options: DeviceOptions = {}): Promise<GpuRuntime> {
  if (current) return current;
  if (!pending) {
    pending = (async () => {
      await prepareShaderLoader();
      const gd = await acquireDevice(options);
      current = new GpuRuntime(gd);
      return current;
    })();
    pending.catch(() => {
      pending = null;
    });
  }
  return pending;
}

/** The initialised runtime; throws if `init()` has not completed. */
export function runtime(): GpuRuntime {
  if (!current) throw new GraftError('Graft is not initialised: call `await init()` before using tensors.');
  return current;
}

export function hasRuntime(): boolean {
  return current !== null;
}

/** Destroys the device and everything on it. A later `init()` starts afresh. */
export function shutdown(): void {
  current?.destroy();
  current = null;
  pending = null;
}

export { kernelLabel };
