/**
 * Making tensors from CPU data. Filled tensors (zeros, ones, random) are made by kernels in src/ops.
 */
import { setFloat16 } from '@petamoriken/float16';
import { ShapeError } from '../errors.js';
import { runtime } from '../gpu/runtime.js';
import { type DType, type Shape, Tensor, shapeStr, sizeOf } from './tensor.js';
import { markWritten } from './write-generation.js';

export type TensorData = ArrayLike<number> | Float32Array | Int32Array | Uint32Array;

function encode(data: TensorData, dtype: DType): ArrayBufferView {
  switch (dtype) {
    case 'f32':
      return data instanceof Float32Array ? data : Float32Array.from(data);
    case 'i32':
      return data instanceof Int32Array ? data : Int32Array.from(data);
    case 'u32':
      return data instanceof Uint32Array ? data : Uint32Array.from(data);
    case 'f16': {
      const out = new DataView(new ArrayBuffer(data.length * 2));
      for (let i = 0; i < data.length; i++) setFloat16(out, i * 2, data[i]!, true);
      return out;
    }
  }
}

/** Uploads `data` (row-major) as a tensor of `shape`. */
export function tensor(data: TensorData, shape?: Shape, dtype: DType = 'f32'): Tensor {
  const s = shape ?? [data.length];
  if (sizeOf(s) !== data.length) {
    throw new ShapeError(`tensor: ${data.length} values do not fill shape ${shapeStr(s)} (${sizeOf(s)} elements).`);
  }
  const t = Tensor.empty(s, dtype, 'tensor');
  if (data.length > 0) runtime().upload(t.buffer, encode(data, dtype));
  return t;
}

export function scalar(v: number, dtype: DType = 'f32'): Tensor {
  return tensor([v], [], dtype);
}

/** Overwrites a tensor's contents from the CPU (e.g. the next batch of inputs). */
export function write(t: Tensor, data: TensorData): void {
  t.assertAlive('write');
  if (data.length !== t.size) {
    throw new ShapeError(`write: ${data.length} values for tensor ${shapeStr(t.shape)} (${t.size} elements).`);
  }
  runtime().upload(t.buffer, encode(data, t.dtype));
  markWritten(t);
}
