export { record, noGrad, detach, isGradEnabled, TapeNode, topologicalOrder } from './tape.js';
export type { OpRegistry, OpName, Parent, InputMeta } from './tape.js';
export { runBackward } from './backward.js';
export type { BackwardContext, BackwardRule, BackwardTable, EngineOps } from './backward.js';
