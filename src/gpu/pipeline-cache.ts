/**
 * Compute pipelines, cached by shader, entry point and override constants.
 *
 * Tile and workgroup sizes are WGSL `override` constants, so one shader file yields a few specialised
 * pipelines; each is compiled once.
 *
 * Storage type. WGSL has no type-valued overrides, so a kernel that can hold its tensors as f32 or f16
 * writes its storage arrays with the type name `Elem` (array<Elem>, array<vec4<Elem>>), converts on load
 * (f32(x[i]), vec4f(w[i])) and on store (vec4<Elem>(v)), and accumulates in f32. The module is compiled with
 * one declaration appended, `alias Elem = f32;` or `alias Elem = f16;` (then also `enable f16;` in front,
 * as WGSL wants directives first); `storage: 'f16'` in the key asks for the second (one more line before
 * the file's own, which compile errors account for). The source file is never edited as text.
 *
 * A WGSL compile error becomes a ShaderCompileError that names the kernel and prints the source with line
 * numbers, a marker under the failing column, and the compiler's message.
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
  /**
   * The type `Elem` of the kernel's storage arrays, for kernels written with it (see above). Kernels that
   * use `Elem` get 'f32' when this is not given. Needs the device feature 'shader-f16' for 'f16'.
   */
  storage?: StorageType;
}

/** 'u32' serves kernels that only move elements: any 32-bit dtype travels as raw words. */
export type StorageType = 'f32' | 'f16' | 'u32';

/** A shader module's name: the file, with a storage type other than f32 in angle brackets (`conv2d_v3<f16>`). */
function moduleName(shader: string, storage: StorageType = 'f32'): string {
  return storage === 'f32' ? shader : `${shader}<${storage}>`;
}

export function kernelLabel(k: KernelKey): string {
  const entry = k.entry && k.entry !== 'main' ? `:${k.entry}` : '';
  const consts = k.constants ? Object.entries(k.constants).map(([n, v]) => `${n}=${Number(v)}`) : [];
  return `${moduleName(k.shader, k.storage)}${entry}${consts.length ? `[${consts.join(',')}]` : ''}`;
}

/** The WGSL module of a kernel: the shader file with the storage type declared (see the header). */
export function moduleSource(shader: string, storage: StorageType = 'f32'): { code: string; linesBefore: number } {
  const src = shaderSource(shader);
  if (!/\bElem\b/.test(src)) {
    if (storage === 'f16') throw new ShaderCompileError(`Kernel '${shader}' has no f16 storage variant (its arrays do not use the type Elem).`);
    return { code: src, linesBefore: 0 };
  }
  return storage === 'f16'
    ? { code: `enable f16;\n${src}\nalias Elem = f16;\n`, linesBefore: 1 }
    : { code: `${src}\nalias Elem = ${storage};\n`, linesBefore: 0 };
}

/**
 * Renders compiler messages under the numbered WGSL lines they point at (±2 lines of context). Line
 * numbers are the shader file's: `linesBefore` lines that the module adds in front are subtracted.
 */
export function formatCompileError(kernel: string, source: string, messages: readonly GPUCompilationMessage[], linesBefore = 0): string {
  const lines = source.split('\n');
  const width = String(lines.length).length;
  const out: string[] = [`WGSL compile error in kernel '${kernel}':`];
  const errors = messages.filter((m) => m.type === 'error');
  for (const m of errors.length ? errors : messages) {
    const at = m.lineNum - linesBefore;
    out.push(`  ${m.type} at line ${at}:${m.linePos}: ${m.message}`);
    const lo = Math.max(1, at - 2);
    const hi = Math.min(lines.length, at + 2);
    for (let n = lo; n <= hi; n++) {
      out.push(`${n === at ? '>' : ' '} ${String(n).padStart(width)} | ${lines[n - 1]}`);
      if (n === at && m.linePos > 0) out.push(`  ${' '.repeat(width)} | ${' '.repeat(m.linePos - 1)}^`);
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
    const module = this.module(key.shader, key.storage);
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

  private module(shader: string, storage: StorageType = 'f32'): GPUShaderModule {
    const name = moduleName(shader, storage);
    let m = this.modules.get(name);
    if (!m) {
      m = this.device.createShaderModule({ label: name, code: moduleSource(shader, storage).code });
      this.modules.set(name, m);
    }
    return m;
  }

  private async describe(key: KernelKey, label: string, module: GPUShaderModule, message: string): Promise<Error> {
    const info = await module.getCompilationInfo();
    const src = shaderSource(key.shader);
    if (info.messages.some((m) => m.type === 'error')) {
      this.modules.delete(moduleName(key.shader, key.storage));
      return new ShaderCompileError(formatCompileError(label, src, info.messages, moduleSource(key.shader, key.storage).linesBefore));
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
