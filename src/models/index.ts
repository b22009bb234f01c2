export { vgg16, checkApplicationConfig } from './vgg16.js';
export type { ApplicationConfig } from './vgg16.js';
export { resnet50 } from './resnet50.js';
export type { ResNet50Config } from './resnet50.js';
export { loadPretrained, decodePredictions } from './pretrained.js';
export type { Pretrained, PretrainedOptions, Prediction } from './pretrained.js';
