export * from './elementwise.js';
export * from './reduce.js';
export * from './matmul.js';
export { backward, backwardRules } from './backward-rules.js';
export { broadcastShapes } from './broadcast.js';
