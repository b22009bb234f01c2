import { runtime } from '../gpu/runtime.js';
import { liveTensorCount } from './tensor.js';

export interface MemoryInfo {
  /** Live tensor handles (not yet disposed), including those the autograd tape holds. */
  tensors: number;
  /** Bytes in pooled GPU buffers currently owned by tensors. */
  bytesInUse: number;
  /** Bytes in all pooled GPU buffers, in use or free for reuse. */
  bytesAllocated: number;
}

export function memory(): MemoryInfo {
  const s = runtime().pool.stats();
  return { tensors: liveTensorCount(), bytesInUse: s.bytesInUse, bytesAllocated: s.bytesAllocated };
}
