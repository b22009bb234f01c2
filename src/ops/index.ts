export * from './elementwise.js';
export * from './reduce.js';
export * from './matmul.js';
export * from './softmax.js';
export * from './losses.js';
export * from './optimizer-updates.js';
export { backward, backwardRules } from './backward-rules.js';
export { broadcastShapes } from './broadcast.js';
