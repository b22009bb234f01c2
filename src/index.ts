/** Graft's public API. */
export * from './errors.js';
export { init, runtime, shutdown, adapterName, Uniforms, summarize } from './gpu/index.js';
export * from './tensor/index.js';
export { noGrad, detach, isGradEnabled } from './autograd/index.js';
export * from './ops/index.js';
export * from './train/index.js';
export * from './nn/index.js';
export * from './models/index.js';
export * from './data/index.js';
export * from './report/index.js';
