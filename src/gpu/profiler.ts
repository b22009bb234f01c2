/**
 * A GPU timer built on timestamp queries, for bench/ and `graft bench`.
 *
 * While active, every dispatch gets its own compute pass whose beginning and end are stamped on the GPU
 * timeline. Stamps are resolved at each batch submit and read back asynchronously; `stop()` waits for them
 * and returns one record per dispatch. Where the adapter lacks `timestamp-query`, `start()` throws.
 */
import { GraftError } from '../errors.js';
import type { GpuRuntime } from './runtime.js';

export interface KernelTiming {
  kernel: string;
  ms: number;
  flops: number;
}

export interface KernelSummary {
  kernel: string;
  calls: number;
  ms: number;
  gflops: number;
}

const CAPACITY = 1024; // queries per batch: two per dispatch, and a batch holds at most 256 dispatches

export class Profiler {
  active = false;
  private querySet: GPUQuerySet | null = null;
  private resolveBuf: GPUBuffer | null = null;
  private used = 0;
  private labels: { kernel: string; flops: number }[] = [];
  private reads: Promise<void>[] = [];
  private records: KernelTiming[] = [];
  private pendingRead: { buffer: GPUBuffer; labels: { kernel: string; flops: number }[] } | null = null;

  constructor(private readonly rt: GpuRuntime) {}

  get available(): boolean {
    return this.rt.gpu.features.timestampQuery;
  }

  start(): void {
    if (!this.available) throw new GraftError('Profiling needs the timestamp-query feature, which this adapter lacks.');
    this.rt.flush();
    const d = this.rt.device;
    this.querySet ??= d.createQuerySet({ type: 'timestamp', count: CAPACITY, label: 'graft-profiler' });
    this.resolveBuf ??= d.createBuffer({ size: CAPACITY * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.records = [];
    this.active = true;
  }

  /** Opens a timed pass for one dispatch; the runtime ends it. */
  beginPass(encoder: GPUCommandEncoder, kernel: string, flops: number): GPUComputePassEncoder {
    if (this.used + 2 > CAPACITY) throw new GraftError('Profiler: too many dispatches in one batch.');
    const pass = encoder.beginComputePass({
      label: kernel,
      timestampWrites: { querySet: this.querySet!, beginningOfPassWriteIndex: this.used, endOfPassWriteIndex: this.used + 1 },
    });
    this.used += 2;
    this.labels.push({ kernel, flops });
    return pass;
  }

  /** Called by the runtime just before a batch is submitted. */
  resolve(encoder: GPUCommandEncoder): void {
    if (this.used === 0) return;
    const bytes = this.used * 8;
    const read = this.rt.device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.resolveQuerySet(this.querySet!, 0, this.used, this.resolveBuf!, 0);
    encoder.copyBufferToBuffer(this.resolveBuf!, 0, read, 0, bytes);
    this.pendingRead = { buffer: read, labels: this.labels };
    this.used = 0;
    this.labels = [];
  }

  /** Called by the runtime just after a batch is submitted. */
  afterSubmit(): void {
    const p = this.pendingRead;
    if (!p) return;
    this.pendingRead = null;
    this.reads.push(
      p.buffer.mapAsync(GPUMapMode.READ).then(() => {
        const t = new BigInt64Array(p.buffer.getMappedRange());
        p.labels.forEach((l, i) => {
          const ns = Number(t[2 * i + 1]! - t[2 * i]!);
          this.records.push({ kernel: l.kernel, ms: Math.max(0, ns) / 1e6, flops: l.flops });
        });
        p.buffer.unmap();
        p.buffer.destroy();
      }),
    );
  }

  /** Stops timing and returns one record per dispatch since `start()`. */
  async stop(): Promise<KernelTiming[]> {
    this.rt.flush();
    this.active = false;
    await Promise.all(this.reads);
    this.reads = [];
    return this.records;
  }

  destroy(): void {
    this.querySet?.destroy();
    this.resolveBuf?.destroy();
  }
}

/** Groups timings by kernel, slowest first. */
export function summarize(records: KernelTiming[]): KernelSummary[] {
  const by = new Map<string, KernelSummary & { flopsTotal: number }>();
  for (const r of records) {
    const s = by.get(r.kernel) ?? { kernel: r.kernel, calls: 0, ms: 0, gflops: 0, flopsTotal: 0 };
    s.calls++;
    s.ms += r.ms;
    s.flopsTotal += r.flops;
    by.set(r.kernel, s);
  }
  return [...by.values()]
    .map(({ flopsTotal, ...s }) => ({ ...s, gflops: s.ms > 0 ? flopsTotal / (s.ms * 1e6) : 0 }))
    .sort((a, b) => b.ms - a.ms);
}
