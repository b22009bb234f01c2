/**
 * The trainer page's worker: it owns the WebGPU device (`navigator.gpu` works in a worker), the model and
 * the images, and runs the same workflow as `graft train` (src/cli/train.ts) on in-memory data:
 *
 *   weights fetched → transfer model (frozen base + new head) → base features cached once (the cut where
 *   fine-tuning will begin) → head training → fine-tuning of the last N layers → evaluation, report, plots.
 *
 * Everything runs here, so the page's UI thread only draws what this posts (trainer-protocol.ts).
 */
import 'graft:shaders';
import { init } from '../gpu/runtime.js';
import { parseSafetensors, type SafetensorsFile } from '../weights/safetensors.js';
import { decodeImage, preprocess, resizeBilinear, type Preprocessing } from '../data/image.js';
import { imageDatasetFromFiles } from '../data/labelled-images.js';
import { createTransferModel, fineTune, fineTuneFrontier, type TransferModel } from '../train/transfer.js';
import { FeatureCache } from '../train/feature-cache.js';
import { arrayBatches, argmaxRows, cacheProgress, emptyHistory, fit, predict, predictLabelled, type ProgressEvent, recordEpoch } from '../train/fit.js';
import type { Callback } from '../train/callbacks.js';
import { Adam } from '../train/optimizers.js';
import { classificationReport, reportToMarkdown } from '../report/metrics.js';
import { plotConfusionMatrix, plotLines, plotTrainingHistory } from '../report/plots.js';
import { type RunConfig, runModelBytes, runModelFromSafetensors } from '../cli/run-config.js';
import type { FromWorker, ToWorker, TrainerSettings } from './trainer-protocol.js';

const scope = self as unknown as { postMessage(m: FromWorker, transfer?: Transferable[]): void; onmessage: ((e: MessageEvent<ToWorker>) => void) | null };
const post = (m: FromWorker, transfer: Transferable[] = []) => scope.postMessage(m, transfer);
const log = (text: string) => post({ type: 'log', text });
const bytesOf = (u: Uint8Array): ArrayBuffer => u.slice().buffer as ArrayBuffer;

let weightsCache: { url: string; file: SafetensorsFile } | null = null;
let trained: { model: TransferModel; config: RunConfig } | null = null;

async function fetchWeights(url: string): Promise<SafetensorsFile> {
  if (weightsCache?.url === url) return weightsCache.file;
  const t = performance.now();
  const res = await fetch(url);
  if (!res.ok) throw new Error(`cannot fetch the base's weights ${url} (HTTP ${res.status}); run \`npx graft weights fetch resnet50\` where graft serve runs.`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const file = parseSafetensors(bytes, url, { widen: true });
  log(`weights ${url}: ${(bytes.length / 2 ** 20).toFixed(0)} MiB, ${file.tensors.size} tensors, in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  weightsCache = { url, file };
  return file;
}

async function train(s: TrainerSettings, images: { name: string; className: string; bytes: ArrayBuffer }[]): Promise<void> {
  const started = performance.now();
  await init();
  trained?.model.dispose();
  trained = null;
  const weights = s.weightsUrl ? await fetchWeights(s.weightsUrl) : null;
  const preprocessing = (weights?.metadata.preprocessing ?? 'caffe') as Preprocessing;
  const warnings: string[] = [];
  const files = images.map((f) => ({ name: f.name, className: f.className, bytes: new Uint8Array(f.bytes) }));
  const common = { imageSize: [s.imageSize, s.imageSize] as [number, number], batchSize: s.batchSize, preprocessing, seed: s.seed, onWarning: (m: string) => warnings.push(m) };
  const [trainSet, valSet] = imageDatasetFromFiles(files, { ...common, validationSplit: s.validationSplit, subset: 'both', ...(s.flip ? { augment: { flip: true } } : {}) });
  warnings.forEach((w) => log(`warning: ${w}`));
  if (trainSet.classNames.length < 2) throw new Error(`the images name ${trainSet.classNames.length} class; at least 2 are needed.`);
  if (valSet.size === 0) throw new Error('the validation split is empty: add images or raise the validation fraction.');
  const classNames = trainSet.classNames;
  log(`${classNames.length} classes (${classNames.join(', ')}): ${trainSet.size} training and ${valSet.size} validation images at ${s.imageSize}×${s.imageSize}`);

  const model = createTransferModel({
    base: s.base, weights: weights && s.weightsUrl ? { name: s.weightsUrl, file: weights } : null, numClasses: classNames.length,
    head: s.head, dropout: s.dropout, inputShape: [s.imageSize, s.imageSize, 3], seed: s.seed,
  });
  const totalEpochs = s.epochs + (s.fineTuneLayers > 0 ? s.fineTuneEpochs : 0);
  // The epoch in progress, step by step: running loss and accuracy, plotted at most about once a second.
  const steps = { epoch: -1, loss: [] as number[], accuracy: [] as number[], plottedAt: 0 };
  const plotSteps = (final: boolean) => {
    if (steps.loss.length === 0 || (!final && performance.now() - steps.plottedAt < 1000)) return;
    steps.plottedAt = performance.now();
    const png = plotLines([{ label: 'loss', values: steps.loss }, { label: 'accuracy', values: steps.accuracy }], {
      title: `epoch ${steps.epoch + 1}/${totalEpochs}`, subtitle: 'running mean over the epoch so far', xLabel: 'step', yLabel: 'value', legend: 'upper', width: 560, height: 400,
    });
    post({ type: 'steps', epoch: steps.epoch, png: bytesOf(png) });
  };
  const onProgress = (e: ProgressEvent) => {
    const base = { type: 'progress' as const, phase: e.phase, epoch: e.epoch, totalEpochs, examples: e.examples, total: e.total ?? null };
    if (e.phase === 'train' && e.metrics && e.step > 0) {
      const epoch = e.epoch, step = e.step;
      e.metrics().then(
        (m) => {
          post({ ...base, loss: m.loss, accuracy: m.accuracy });
          if (epoch !== steps.epoch) Object.assign(steps, { epoch, loss: [], accuracy: [] });
          steps.loss[step - 1] = m.loss;
          steps.accuracy[step - 1] = m.accuracy;
          plotSteps(e.total !== undefined && e.examples >= e.total);
        },
        (err: Error) => log(`progress: ${err.message}`),
      );
    } else post({ ...base, loss: null, accuracy: null });
  };

  // Features of the frozen part, once: at the cut where fine-tuning will begin, so both phases use them.
  let t = performance.now();
  const at = s.fineTuneLayers > 0 ? fineTuneFrontier(model, s.fineTuneLayers) : model.constantFrontier();
  const trainCache = await FeatureCache.build(model, trainSet, { at, views: s.cacheViews, seed: s.seed, onBatch: cacheProgress(onProgress, false) });
  const valCache = await FeatureCache.build(model, valSet, { at, shuffle: false, onBatch: cacheProgress(onProgress, true) });
  log(`cached ${at.map((a) => `${a.layer.name} [${a.shape.join('×')}]`).join(', ')} for ${trainCache.viewCount} view(s) in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const history = emptyHistory();
  const fineTuneFrom = s.fineTuneLayers > 0 ? s.epochs : null;
  const epochEnd: Callback = {
    onEpochEnd(epoch, logs) {
      recordEpoch(history, epoch, logs);
      log(`epoch ${epoch + 1}/${totalEpochs}: loss ${logs.loss!.toFixed(4)}, accuracy ${logs.accuracy!.toFixed(4)}, val_loss ${logs.val_loss!.toFixed(4)}, val_accuracy ${logs.val_accuracy!.toFixed(4)}`);
      const marker = fineTuneFrom !== null && epoch >= fineTuneFrom ? { marker: { at: fineTuneFrom - 1, label: 'start fine-tuning' } } : {};
      const png = plotTrainingHistory(history, { title: `${s.base} transfer learning`, ...marker });
      post({ type: 'epoch', history: structuredClone(history), fineTuneFrom, historyPng: bytesOf(png) });
    },
  };
  const common2 = { loss: 'sparseCategoricalCrossentropy' as const, validation: valCache, cacheFeatures: { train: trainCache, validation: valCache }, onProgress, callbacks: [epochEnd] };
  t = performance.now();
  await fit(model, trainCache, { ...common2, optimizer: new Adam(model.trainableParameters(), { lr: s.lr }), epochs: s.epochs });
  if (s.fineTuneLayers > 0) {
    const { optimizer, unfrozen } = fineTune(model, { unfreezeLast: s.fineTuneLayers, learningRate: s.fineTuneLr });
    log(`fine-tuning ${unfrozen.length} layers (${unfrozen[0]} … ${unfrozen[unfrozen.length - 1]}) at lr ${s.fineTuneLr}`);
    await fit(model, trainCache, { ...common2, optimizer, epochs: totalEpochs, initialEpoch: s.epochs });
  }
  log(`trained ${totalEpochs} epochs in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const predictions = await predictLabelled(model, valCache); // one pass: predictions and loss
  const loss = predictions.loss ?? NaN;
  const r = classificationReport(predictions.labels, argmaxRows(predictions.probabilities, predictions.classes), classNames);
  const confusionPng = plotConfusionMatrix(r.confusion, classNames, { title: 'confusion matrix (validation)' });
  trained = { model, config: runConfigOf(s, classNames, model.preprocessing) };
  post({ type: 'done', report: { accuracy: r.accuracy, loss, classNames, confusion: r.confusion, markdown: reportToMarkdown(r), confusionPng: bytesOf(confusionPng) }, seconds: (performance.now() - started) / 1000 });
}

async function predictImages(images: { name: string; bytes: ArrayBuffer }[]): Promise<void> {
  if (!trained) throw new Error('train or load a model first: there is nothing to predict with.');
  const { model, config } = trained;
  const classNames = config.classNames!;
  const size = config.imageSize;
  const x = new Float32Array(images.length * size * size * 3);
  images.forEach((img, i) => {
    let rgb = decodeImage(new Uint8Array(img.bytes), img.name);
    if (rgb.width !== size || rgb.height !== size) rgb = resizeBilinear(rgb, size, size);
    x.set(preprocess(rgb.data, model.preprocessing), i * size * size * 3);
  });
  const probabilities = await predict(model, arrayBatches(x, new Int32Array(images.length), { batchSize: config.batchSize, inputShape: [size, size, 3] }));
  const k = classNames.length;
  const best = argmaxRows(probabilities, k);
  post({ type: 'predictions', results: images.map((img, i) => ({ name: img.name, label: classNames[best[i]!]!, probabilities: [...probabilities.subarray(i * k, (i + 1) * k)] })) });
}

/** The trained model as `graft train` writes model.safetensors, so Node's `graft evaluate/predict --model` load it. */
async function checkpoint(): Promise<void> {
  if (!trained) throw new Error('train or load a model first: there is no checkpoint to download.');
  const { model, config } = trained;
  const bytes = await runModelBytes(model, config);
  post({ type: 'checkpoint', name: `graft-${config.base}-${config.classNames!.join('-')}.safetensors`, bytes: bytes.buffer as ArrayBuffer }, [bytes.buffer as ArrayBuffer]);
}

/** A checkpoint from this page or from `graft train` (its model.safetensors): ready to predict and download. */
async function load(name: string, bytes: ArrayBuffer): Promise<void> {
  await init();
  const { model, config } = runModelFromSafetensors(parseSafetensors(new Uint8Array(bytes), name, { widen: true }), name);
  trained?.model.dispose();
  trained = { model, config };
  log(`loaded ${name}: ${config.base}, ${config.imageSize}×${config.imageSize}, classes ${config.classNames!.join(', ')}`);
  post({ type: 'loaded', name, classNames: config.classNames!, base: config.base, imageSize: config.imageSize });
}

/** The run's settings in `graft train`'s config.json form, for the checkpoint's metadata. */
function runConfigOf(s: TrainerSettings, classNames: string[], preprocessing: Preprocessing): RunConfig {
  const { weightsUrl, flip, dataName, ...shared } = s;
  return {
    format: 'graft-run', ...shared, data: dataName, valData: null, weights: weightsUrl ? `weights/${weightsUrl.split('/').pop()}` : null,
    augment: flip ? 'flip' : 'none', patience: 0, clipNorm: null, skipNonFinite: false, classNames, preprocessing,
  };
}

scope.onmessage = (e) => {
  const m = e.data;
  const work = m.type === 'train' ? train(m.settings, m.images) : m.type === 'predict' ? predictImages(m.images) : m.type === 'load' ? load(m.name, m.bytes) : checkpoint();
  work.catch((err: unknown) => post({ type: 'error', message: err instanceof Error ? err.message : String(err) }));
};
