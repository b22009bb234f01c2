export * from './image.js';
export * from './image-dataset.js';
export * from './idx.js';
export * from './mnist.js';
export * from './usps.js';
export * from './domain-spec.js';
