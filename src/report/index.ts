export { confusionMatrix, classificationReport, reportToText, reportToMarkdown, reportToJson } from './metrics.js';
export type { ClassMetrics, ClassificationReport } from './metrics.js';
export { Canvas } from './canvas.js';
export type { Color } from './canvas.js';
export { plotTrainingHistory, plotConfusionMatrix, plotLines, niceTicks } from './plots.js';
export type { TrainingHistory } from './plots.js';
