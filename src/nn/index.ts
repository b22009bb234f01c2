export * from './layer.js';
export * from './model.js';
export * from './layers/core.js';
export * from './layers/convolutional.js';
export * from './layers/pooling.js';
export * from './layers/dropout.js';
export * from './layers/normalization.js';
export * from './gradient-reversal.js';
