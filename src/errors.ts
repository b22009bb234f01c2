/**
 * Graft's error types. This file imports nothing, so every layer may use it.
 *
 * Every error names the thing that was wrong (an op, a tensor, a kernel, a file or an argument) and what
 * was expected, so that a user can act on the message without reading Graft's source.
 */

export class GraftError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** No WebGPU adapter could be found. The message carries the command that installs a CPU driver. */
export class NoAdapterError extends GraftError {}

/** A WGSL shader failed to compile. The message shows the numbered source around each error. */
export class ShaderCompileError extends GraftError {}

/** WebGPU reported a validation, out-of-memory or internal error while running a kernel. */
export class GpuError extends GraftError {}

/** The GPU device was lost (driver reset, destroyed device, out of memory). */
export class DeviceLostError extends GraftError {}

/** An op received tensors of incompatible shapes or dtypes. */
export class ShapeError extends GraftError {}

/** A public API or CLI argument was invalid. */
export class ArgumentError extends GraftError {}

/** A tensor was used after dispose(). */
export class DisposedError extends GraftError {}

/** A request exceeds what the device allows (buffer size, binding size). */
export class LimitError extends GraftError {}

/** A file is malformed. */
export class GraftFormatError extends GraftError {}
