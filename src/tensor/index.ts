export { Tensor, Storage, sizeOf, shapeStr, checkShape, BYTES_PER_ELEMENT } from './tensor.js';
export type { DType, Shape } from './tensor.js';
export { tensor, scalar, write } from './create.js';
export type { TensorData } from './create.js';
export { tidy } from './scope.js';
export { memory } from './memory.js';
export type { MemoryInfo } from './memory.js';
