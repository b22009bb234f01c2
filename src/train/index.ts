export { SGD, Adam, AdamW, Optimizer, ParamGroup } from './optimizers.js';
export type { SGDOptions, SGDHyper, AdamOptions, AdamHyperParams, ParamGroupSpec, ParamState, OptimizerStateDict } from './optimizers.js';
export * from './fit.js';
export * from './callbacks.js';
