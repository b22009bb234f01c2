/**
 * Acquiring a WebGPU device, on any runtime, behind one function.
 *
 * - Deno and browsers expose `navigator.gpu`.
 * - Node has no WebGPU of its own; the npm `webgpu` package (Google's Dawn) provides one through `create()`.
 *
 * We ask for the adapter's real limits rather than the WebGPU defaults: the default 128 MiB storage binding
 * is too small for VGG16's fc1 weights, and the adapter usually allows far more.
 */
import { DeviceLostError, NoAdapterError } from '../errors.js';

/** The command that installs a CPU WebGPU driver on a GPU-less Debian machine. */
export const INSTALL_DRIVER_COMMAND = 'sudo bash scripts/install-webgpu-cpu.sh';

export type RuntimeName = 'node' | 'deno' | 'browser';

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  runtime: RuntimeName;
  /** Subgroup size range reported by the adapter, when known (lavapipe: 8..8). */
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
}

export interface GpuDevice {
  /**
   * The GPU entry object. We hold it for the device's whole life: on Node, if the `GPU` object from
   * `create()` is garbage-collected, Dawn frees its instance while the device still uses it, and the
   * process crashes at a random later moment (seen as SIGSEGV in InstanceBase::ProcessEvents).
   */
  gpu: GPU;
  device: GPUDevice;
  adapter: GPUAdapter;
  info: AdapterDescription;
  /** Optional features that were found and enabled. */
  features: { f16: boolean; subgroups: boolean; timestampQuery: boolean };
  limits: GPUSupportedLimits;
  /** Resolves when the device is lost; `lostReason` is set then. */
  lost: Promise<GPUDeviceLostInfo>;
  lostReason: string | null;
}

export function detectRuntime(): RuntimeName {
  const g = globalThis as { Deno?: unknown; window?: unknown; process?: { versions?: { node?: string } } };
  if (g.Deno !== undefined) return 'deno';
  if (g.process?.versions?.node !== undefined) return 'node';
  return 'browser';
}

async function getGpu(runtime: RuntimeName): Promise<GPU | undefined> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (runtime !== 'node') return undefined;
  // The `webgpu` package is loaded lazily so that Deno and browser builds never touch it.
  const mod = (await import('webgpu')) as unknown as {
    create: (flags: string[]) => GPU;
    globals: Record<string, unknown>;
  };
  // The WebGPU constants (GPUBufferUsage, GPUShaderStage, …) are globals in browsers; Dawn exports them.
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  return mod.create([]);
}

function noAdapter(runtime: RuntimeName, why: string): NoAdapterError {
  const hint =
    runtime === 'deno'
      ? `Run Deno with --unstable-webgpu, and on a machine without a GPU install a CPU driver first: ${INSTALL_DRIVER_COMMAND}`
      : runtime === 'browser'
        ? 'Use a browser with WebGPU enabled (Chrome/Edge 113+, or Chromium with --enable-unsafe-webgpu).'
        : `On a machine without a GPU, install Mesa's lavapipe Vulkan driver: ${INSTALL_DRIVER_COMMAND}`;
  return new NoAdapterError(`No WebGPU adapter found (${why}). ${hint}`);
}

export interface DeviceOptions {
  powerPreference?: GPUPowerPreference;
  /** Turn off optional features, e.g. to test the portable kernel paths. */
  disableFeatures?: Array<'shader-f16' | 'subgroups' | 'timestamp-query'>;
}

export async function acquireDevice(options: DeviceOptions = {}): Promise<GpuDevice> {
  const runtime = detectRuntime();
  let gpu: GPU | undefined;
  try {
    gpu = await getGpu(runtime);
  } catch (e) {
    throw noAdapter(runtime, `loading WebGPU failed: ${(e as Error).message}`);
  }
  if (!gpu) throw noAdapter(runtime, 'navigator.gpu is undefined');
  const adapter = await gpu.requestAdapter(
    options.powerPreference ? { powerPreference: options.powerPreference } : undefined,
  );
  if (!adapter) throw noAdapter(runtime, 'requestAdapter() returned null');

  const off = new Set(options.disableFeatures ?? []);
  const want = (f: GPUFeatureName) => adapter.features.has(f) && !off.has(f as never);
  const requiredFeatures: GPUFeatureName[] = [];
  const features = { f16: want('shader-f16'), subgroups: want('subgroups'), timestampQuery: want('timestamp-query') };
  if (features.f16) requiredFeatures.push('shader-f16');
  if (features.subgroups) requiredFeatures.push('subgroups');
  if (features.timestampQuery) requiredFeatures.push('timestamp-query');

  const a = adapter.limits;
  const requiredLimits: Record<string, number> = {
    maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
    maxBufferSize: a.maxBufferSize,
    maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: a.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupSizeY: a.maxComputeWorkgroupSizeY,
    maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
  };
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });

  const raw = adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  const info: AdapterDescription = {
    vendor: raw.vendor ?? '',
    architecture: raw.architecture ?? '',
    device: raw.device ?? '',
    description: raw.description ?? '',
    runtime,
  };
  if (typeof raw.subgroupMinSize === 'number') info.subgroupMinSize = raw.subgroupMinSize;
  if (typeof raw.subgroupMaxSize === 'number') info.subgroupMaxSize = raw.subgroupMaxSize;

  const gd: GpuDevice = {
    gpu,
    device,
    adapter,
    info,
    features,
    limits: device.limits,
    lost: device.lost,
    lostReason: null,
  };
  void device.lost.then((l) => {
    gd.lostReason = `${l.reason}: ${l.message}`;
  });
  return gd;
}

/**
 * What a DeviceLostError says: what happened, that nothing on the device survives it, and what to do.
 * A lost device cannot be revived, and every tensor (weights, optimizer state) lived on it.
 */
export function deviceLostMessage(reason: string): string {
  return (
    `The WebGPU device was lost (${reason}). The GPU driver reset, the device ran out of memory, or it was destroyed, ` +
    'and every tensor on it is gone: Graft cannot continue in this process. What to do: run the command again. ' +
    "A training run's last checkpoint in its run folder is intact (checkpoints are written atomically), so " +
    '`graft train --resume` continues from it. If the loss happens again at the same point, try a smaller batch size.'
  );
}

export function assertNotLost(gd: GpuDevice): void {
  if (gd.lostReason !== null) throw new DeviceLostError(deviceLostMessage(gd.lostReason));
}

/** One line naming the adapter, e.g. "llvmpipe (LLVM 15.0.6, 256 bits) [mesa, llvmpipe-…]". */
export function adapterName(info: AdapterDescription): string {
  const main = info.description || info.device || info.architecture || 'unknown adapter';
  const extra = [info.vendor, info.architecture].filter((s) => s && !main.includes(s)).join(', ');
  return extra ? `${main} [${extra}]` : main;
}
