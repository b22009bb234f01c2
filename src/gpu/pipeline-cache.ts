/**
 * Compute pipelines, cached by shader, entry point and override constants.
 *
 * Tile and workgroup sizes are WGSL `override` constants, so one shader file yields a few specialised
 * pipelines; each is compiled once. A WGSL compile error becomes a ShaderCompileError that names the kernel
 * and prints the source with line numbers, a marker under the failing column, and the compiler's message.
 */
import { ShaderCompileError } from '../errors.js';
import { shaderSource } from './shader-source.js';

export type Constants = Record<string, number | boolean>;

export interface KernelKey {
  /** File name in shaders/, without .wgsl. */
  shader: string;
  /** Entry point; defaults to `main`. */
  entry?: string;
  constants?: Constants;
}

export function kernelLabel(k: KernelKey): string {
  const entry = k.entry && k.entry !== 'main' ? `:${k.entry}` : '';
  const consts = k.constants ? Object.entries(k.constants).map(([n, v]) => `${n}=${Number(v)}`) : [];
  return `${k.shader}${entry}${consts.length ? `[${consts.join(',')}]` : ''}`;
}

/** Renders compiler messages under the numbered WGSL lines they point at (±2 lines of context). */
export function formatCompileError(kernel: string, source: string, messages: readonly GPUCompilationMessage[]): string {
  const lines = source.split('\n');
  const width = String(lines.length).length;
  const out: string[] = [`WGSL compile error in kernel '${kernel}':`];
  const errors = messages.filter((m) => m.type === 'error');
  for (const m of errors.length ? errors : messages) {
    out.push(`  ${m.type} at line ${m.lineNum}:${m.linePos}: ${m.message}`);
    const lo = Math.max(1, m.lineNum - 2);
    const hi = Math.min(lines.length, m.lineNum + 2);
    for (let n = lo; n <= hi; n++) {
      out.push(`${n === m.lineNum ? '>' : ' '} ${String(n).padStart(width)} | ${lines[n - 1]}`);
      if (n === m.lineNum && m.linePos > 0) out.push(`  ${' '.repeat(width)} | ${' '.repeat(m.linePos - 1)}^`);
    }
  }
  return out.join('\n');
}

export function numberedSource(source: string): string {
  const lines = source.split('\n');
  const width = String(lines.length).length;
  return lines.map((l, i) => `${String(i + 1).padStart(width)} | ${l}`).join('\n');
}

export interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  label: string;
}

export class PipelineCache {
  private pipelines = new Map<string, CachedPipeline>();
  private modules = new Map<string, GPUShaderModule>();
  /** Errors found asynchronously; the runtime throws them at its next synchronisation point. */
  readonly errors: Error[] = [];
  private checks: Promise<void>[] = [];

  constructor(private readonly device: GPUDevice) {}

  get size(): number {
    return this.pipelines.size;
  }

  /** Returns the pipeline at once; compile errors are reported through `errors` (see `settle`). */
  get(key: KernelKey): CachedPipeline {
    const label = kernelLabel(key);
    const hit = this.pipelines.get(label);
    if (hit) return hit;
    this.device.pushErrorScope('validation');
    const module = this.module(key.shader);
    const pipeline = this.device.createComputePipeline({
      label,
      layout: 'auto',
      compute: { module, entryPoint: key.entry ?? 'main', constants: toConstants(key.constants) },
    });
    const layout = pipeline.getBindGroupLayout(0);
    const check = this.device.popErrorScope().then(async (err) => {
      if (!err) return;
      this.pipelines.delete(label);
      this.errors.push(await this.describe(key, label, module, err.message));
    });
    this.checks.push(check);
    const entry = { pipeline, layout, label };
    this.pipelines.set(label, entry);
    return entry;
  }

  /** Creates the pipeline and waits for the compiler's verdict, throwing a ShaderCompileError on failure. */
  async compile(key: KernelKey): Promise<CachedPipeline> {
    const p = this.get(key);
    await this.settle();
    const e = this.errors.shift();
    if (e) throw e;
    return p;
  }

  /** Waits for every pending compile check. */
  async settle(): Promise<void> {
    const pending = this.checks;
    this.checks = [];
    await Promise.all(pending);
  }

  private module(shader: string): GPUShaderModule {
    let m = this.modules.get(shader);
    if (!m) {
      m = this.device.createShaderModule({ label: shader, code: shaderSource(shader) });
      this.modules.set(shader, m);
    }
    return m;
  }

  private async describe(key: KernelKey, label: string, module: GPUShaderModule, message: string): Promise<Error> {
    const info = await module.getCompilationInfo();
    const src = shaderSource(key.shader);
    if (info.messages.some((m) => m.type === 'error')) {
      this.modules.delete(key.shader);
      return new ShaderCompileError(formatCompileError(label, src, info.messages));
    }
    // The module compiled, so the pipeline failed (bad entry point or override constant).
    return new ShaderCompileError(`Pipeline creation failed for kernel '${label}': ${message}`);
  }
}

function toConstants(c: Constants | undefined): Record<string, number> | undefined {
  if (!c) return undefined;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(c)) out[k] = Number(v);
  return out;
}
