/**
 * `graft train`: the Keras transfer-learning tutorial from the command line. A pretrained base (ResNet50 or
 * VGG16) is frozen and a new head (global average pooling, Dense(512, relu), Dropout, Dense(softmax)) is
 * trained on an image folder; then, with --fine-tune-layers N, the base's last N layers are unfrozen and
 * everything trainable is fine-tuned at a low rate. The run folder (run-folder.ts) gets checkpoints after
 * every epoch, and at the end the final weights, report.json/md and the plots; --resume continues a run
 * that was interrupted.
 *
 * Features of the frozen part are cached once (--cache-views, on by default), so epochs cost only what
 * trains. The cut is where fine-tuning will begin, so one caching pass serves both phases.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ArgumentError, GraftError } from '../errors.js';
import { init } from '../gpu/runtime.js';
import { type Augmentation, type ImageDataset, imageDatasetFromDirectory } from '../data/image-dataset.js';
import type { Preprocessing } from '../data/image.js';
import { Adam } from '../train/optimizers.js';
import { EarlyStopping, type Callback } from '../train/callbacks.js';
import { type BatchSource, cacheProgress, emptyHistory, fit, type PrebuiltCaches, predictLabelled } from '../train/fit.js';
import { fineTune, fineTuneFrontier } from '../train/transfer.js';
import { restoreCheckpoint } from '../train/checkpoint.js';
import { writeRunReport } from '../report/run-report.js';
import type { CommandSpec, ParsedArgs } from './args.js';
import { ProgressBar } from './progress.js';
import { readJson, readState, RunCheckpoint, type RunState, writeJson } from './run-folder.js';
import { buildRunModel, preprocessingOf, type RunConfig, runConfigFrom, saveFinalModel } from './run-config.js';
import { cachedFeatures } from './feature-store.js';
import { setPrecision } from '../nn/precision.js';

export const trainCommand: CommandSpec = {
  name: 'train',
  summary: 'transfer learning on an image folder: a new head on a frozen base, then fine-tuning',
  usage: 'graft train --data DIR --out runs/NAME [--base resnet50] [--epochs 10] [--fine-tune-layers N --fine-tune-epochs 5] | graft train --resume --out runs/NAME',
  options: {
    data: { type: 'string', help: 'image folder with one sub-folder per class; with train/ and val/ sub-folders those are used' },
    'val-data': { type: 'string', help: 'a separate validation folder (otherwise DIR/val, or --validation-split of DIR)' },
    'validation-split': { type: 'number', help: 'fraction of DIR held out for validation when there is no val folder', default: 0.2 },
    base: { type: 'string', help: 'resnet50 or vgg16', default: 'resnet50' },
    weights: { type: 'string', help: "the base's weights (safetensors); 'none' for random weights (default for resnet50: weights/resnet50-imagenet.safetensors)" },
    'image-size': { type: 'number', help: 'images are resized to this square size', default: 224 },
    'batch-size': { type: 'number', help: 'examples per step', default: 32 },
    epochs: { type: 'number', help: 'epochs of head training (the base frozen)', default: 10 },
    lr: { type: 'number', help: 'Adam learning rate of head training', default: 1e-3 },
    head: { type: 'string', help: "widths of the head's hidden Dense(relu) layers, comma-separated ('' for none)", default: '512' },
    dropout: { type: 'number', help: 'dropout rate after each hidden layer of the head', default: 0.5 },
    'fine-tune-layers': { type: 'number', help: "unfreeze the base's last N layers (Keras's count) after head training; 0: no fine-tuning", default: 0 },
    'fine-tune-epochs': { type: 'number', help: 'epochs of fine-tuning', default: 5 },
    'fine-tune-lr': { type: 'number', help: 'Adam learning rate of fine-tuning', default: 1e-5 },
    'crop-to-aspect-ratio': { type: 'boolean', help: 'crop the largest centred square (the target aspect ratio) before resizing, instead of distorting (Keras crop_to_aspect_ratio)' },
    augment: { type: 'string', help: "training augmentation: 'none' or a list such as flip,zoom=0.1,rotation=0.1", default: 'flip' },
    'cache-views': { type: 'number', help: 'cache the frozen base\'s features for this many augmented passes; 0 runs the base every step', default: 2 },
    patience: { type: 'number', help: 'early stopping on val_loss after this many epochs without improvement, best weights restored; 0: off', default: 0 },
    'feature-cache': { type: 'string', help: 'keep cached features in this folder and reuse them in later runs with the same data, base, image size, views and cut' },
    'clip-norm': { type: 'number', help: 'clip the gradients to this global L2 norm (both phases)' },
    'skip-nonfinite': { type: 'boolean', help: 'skip a step whose loss or gradients are NaN/Inf (checks each step) instead of stopping the run' },
    seed: { type: 'number', help: 'seed of the split, shuffles, augmentation, head initialisation and dropout', default: 0 },
    precision: { type: 'string', help: "f16: the frozen base's activations and weights in f16, f32 sums (needs shader-f16); what trains stays f32", default: 'f32' },
    out: { type: 'string', help: 'the run folder (created; must not hold another run unless --resume)' },
    resume: { type: 'boolean', help: "continue the run in --out from its last checkpoint, with the run's own settings" },
  },
};

/** Augmentation from "flip,zoom=0.1,rotation=0.1" ('none' or '' for none). */
export function parseAugment(spec: string): Augmentation | undefined {
  if (spec === 'none' || spec === '') return undefined;
  const aug: Augmentation = {};
  for (const part of spec.split(',')) {
    const [name, value] = part.split('=');
    if (name === 'flip' && value === undefined) aug.flip = true;
    else if ((name === 'zoom' || name === 'rotation') && value !== undefined && Number.isFinite(Number(value))) aug[name] = Number(value);
    else throw new ArgumentError(`graft train: --augment: cannot read '${part}'; expected flip, zoom=FRACTION or rotation=RADIANS, comma-separated, or 'none'.`);
  }
  return aug;
}

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

/** The training and validation folders (and split) a run's config describes. */
export async function openDatasets(c: RunConfig, preprocessing: Preprocessing, warn: (m: string) => void): Promise<{ train: ImageDataset; val: ImageDataset; valDescription: string }> {
  const common = { imageSize: [c.imageSize, c.imageSize] as [number, number], batchSize: c.batchSize, preprocessing, seed: c.seed, cropToAspectRatio: c.cropToAspectRatio === true, onWarning: warn };
  const augment = parseAugment(c.augment);
  const split = (subset: 'training' | 'validation') => ({ validationSplit: c.validationSplit, subset });
  let trainDir = c.data;
  let valDir = c.valData;
  if (!valDir && isDir(join(c.data, 'train')) && isDir(join(c.data, 'val'))) {
    trainDir = join(c.data, 'train');
    valDir = join(c.data, 'val');
  }
  const train = await imageDatasetFromDirectory(trainDir, { ...common, ...(valDir ? {} : split('training')), ...(augment ? { augment } : {}) });
  const val = valDir
    ? await imageDatasetFromDirectory(valDir, { ...common, shuffle: false, classNames: train.classNames })
    : await imageDatasetFromDirectory(trainDir, { ...common, ...split('validation') });
  if (val.size === 0) throw new ArgumentError(`graft train: the validation set is empty (${valDir ?? `--validation-split ${c.validationSplit} of ${trainDir}`}).`);
  return { train, val, valDescription: valDir ? `${valDir} (${val.size} images)` : `${Math.round(c.validationSplit * 100)}% of ${trainDir} held out, seed ${c.seed} (${val.size} images)` };
}

export async function runTrain(args: ParsedArgs, argv: string[]): Promise<void> {
  const started = performance.now();
  const out = args.options.out as string | undefined;
  if (!out) throw new ArgumentError('graft train: --out RUN_FOLDER is required (e.g. --out runs/ants-bees).');
  const resume = args.options.resume === true;
  let config: RunConfig;
  let state: RunState;
  if (resume) {
    const given = argv.filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')[0]).filter((n) => n !== 'out' && n !== 'resume');
    if (given.length) throw new ArgumentError(`graft train --resume takes the run's own settings from ${join(out, 'config.json')}; drop ${given.map((g) => `--${g}`).join(', ')}.`);
    config = readJson<RunConfig>(join(out, 'config.json'), 'run config');
    // Killed before its first epoch ended: nothing to restore, so the run starts over with its settings.
    state = existsSync(join(out, 'state.json')) ? readState(out) : { phase: 'head', nextEpoch: 0, history: emptyHistory(), checkpoint: null, checkpointPhase: null };
    // A run killed after it finished (state.json says done) has nothing left to do: resuming succeeds at
    // once, so that a retry loop around an interrupted job ends.
    if (state.phase === 'done') {
      console.log(`graft train --resume: the run in ${out} had already finished; nothing to do (see ${join(out, 'report.md')}).`);
      return;
    }
  } else {
    if (existsSync(join(out, 'config.json'))) throw new GraftError(`graft train: ${out} already holds a run; use --resume to continue it, or choose another --out.`);
    config = runConfigFrom(args);
    state = { phase: 'head', nextEpoch: 0, history: emptyHistory(), checkpoint: null, checkpointPhase: null };
  }
  mkdirSync(join(out, 'checkpoints'), { recursive: true });
  await init();
  setPrecision(config.precision ?? 'f32');
  const bar = new ProgressBar(process.stdout);
  const warnings: string[] = [];
  const preprocessing = preprocessingOf(config.weights);
  const { train, val, valDescription } = await openDatasets(config, preprocessing, (m) => warnings.push(m));
  for (const w of warnings.splice(0)) bar.log(`warning: ${w}`);
  if (config.classNames && config.classNames.join('\n') !== train.classNames.join('\n')) {
    throw new GraftError(`graft train --resume: the data's classes (${train.classNames.join(', ')}) differ from the run's (${config.classNames.join(', ')}).`);
  }
  config.classNames = train.classNames;
  config.preprocessing = preprocessing;
  if (!resume) writeJson(join(out, 'config.json'), config);
  const model = buildRunModel(config);
  const totalEpochs = config.epochs + (config.fineTuneLayers > 0 ? config.fineTuneEpochs : 0);
  bar.log(`graft train: ${config.base} base, ${train.classNames.length} classes (${train.classNames.join(', ')}), ${train.size} training and ${val.size} validation images at ${config.imageSize}×${config.imageSize}`);

  const timings: Record<string, number> = {};
  const onProgress = (e: Parameters<ProgressBar['update']>[0]) => {
    bar.setPrefix(e.phase === 'cache' ? (e.epoch < 0 ? 'validation set:' : `view ${e.epoch + 1}/${config.cacheViews}:`) : `epoch ${e.epoch + 1}/${totalEpochs}`);
    bar.update(e);
  };
  let caches: PrebuiltCaches | undefined;
  if (config.cacheViews > 0) {
    const t = performance.now();
    const at = config.fineTuneLayers > 0 ? fineTuneFrontier(model, config.fineTuneLayers) : model.constantFrontier();
    const store = config.featureCache ?? null;
    const log = (line: string) => bar.log(line);
    const trainCache = await cachedFeatures(store, 'train', model, train, config, { at, views: config.cacheViews, seed: config.seed, onBatch: cacheProgress(onProgress, false) }, log);
    const valCache = await cachedFeatures(store, 'validation', model, val, config, { at, shuffle: false, onBatch: cacheProgress(onProgress, true) }, log);
    caches = { train: trainCache, validation: valCache };
    timings.caching = (performance.now() - t) / 1000;
    bar.log(`cached ${at.map((s) => `${s.layer.name} [${s.shape.join('×')}]`).join(', ')} for ${trainCache.viewCount} view(s) of ${trainCache.size} + ${valCache.size} images (${(((trainCache.bytes + valCache.bytes) / 2 ** 20)).toFixed(0)} MiB) in ${timings.caching.toFixed(1)} s`);
  }
  const trainSource: BatchSource = caches?.train ?? train;
  const valSource: BatchSource = caches?.validation ?? val;
  const epochLine: Callback = {
    onEpochEnd(epoch, logs) {
      bar.log(`epoch ${epoch + 1}/${totalEpochs}: loss ${logs.loss!.toFixed(4)}  accuracy ${logs.accuracy!.toFixed(4)}  val_loss ${logs.val_loss!.toFixed(4)}  val_accuracy ${logs.val_accuracy!.toFixed(4)}${logs.skipped_steps ? `  (${logs.skipped_steps} non-finite steps skipped)` : ''}`);
    },
  };
  const callbacks = (phase: 'head' | 'fine-tune'): Callback[] => [
    ...(config.patience > 0 ? [new EarlyStopping({ monitor: 'val_loss', patience: config.patience, restoreBestWeights: true })] : []),
    epochLine,
    new RunCheckpoint(out, state, phase),
  ];
  const fitCommon = {
    loss: 'sparseCategoricalCrossentropy' as const, validation: valSource, onProgress, onNonFinite: config.skipNonFinite ? ('skip' as const) : ('stop' as const),
    ...(caches ? { cacheFeatures: caches } : {}),
  };
  const clip = config.clipNorm ? { globalClipNorm: config.clipNorm } : {};

  // Weights come from the last checkpoint when this process has not trained yet (a resumed run).
  let trained = false;
  if (state.phase === 'head') {
    const t = performance.now();
    const optimizer = new Adam(model.trainableParameters(), { lr: config.lr, ...clip });
    if (state.checkpoint) restoreCheckpoint(state.checkpoint, model, optimizer);
    await fit(model, trainSource, { ...fitCommon, optimizer, epochs: config.epochs, initialEpoch: state.nextEpoch, callbacks: callbacks('head') });
    trained = true;
    bar.finish();
    timings.head = (performance.now() - t) / 1000;
    state.phase = 'fine-tune';
    state.nextEpoch = Math.max(state.nextEpoch, config.epochs);
    writeJson(join(out, 'state.json'), state);
  }
  if (config.fineTuneLayers > 0) {
    const t = performance.now();
    const { optimizer, unfrozen } = fineTune(model, { unfreezeLast: config.fineTuneLayers, learningRate: config.fineTuneLr, clip });
    if (state.checkpoint && !trained) restoreCheckpoint(state.checkpoint, model, state.checkpointPhase === 'fine-tune' ? optimizer : undefined);
    bar.log(`fine-tuning ${unfrozen.length} layers (${unfrozen[0]} … ${unfrozen[unfrozen.length - 1]}) at lr ${config.fineTuneLr}`);
    await fit(model, trainSource, { ...fitCommon, optimizer, epochs: totalEpochs, initialEpoch: state.nextEpoch, callbacks: callbacks('fine-tune') });
    trained = true;
    bar.finish();
    timings['fine-tuning'] = (performance.now() - t) / 1000;
  } else if (state.checkpoint && !trained) {
    restoreCheckpoint(state.checkpoint, model);
  }

  const t = performance.now();
  const predictions = await predictLabelled(model, valSource); // one pass: predictions and loss
  const loss = predictions.loss ?? NaN;
  await saveFinalModel(join(out, 'model.safetensors'), model, config);
  timings.evaluation = (performance.now() - t) / 1000;
  timings.total = (performance.now() - started) / 1000;
  const files = writeRunReport(out, {
    title: `${config.base} transfer learning`, classNames: train.classNames, predictions, loss, evaluatedOn: `validation: ${valDescription}`,
    history: state.history, ...(config.fineTuneLayers > 0 ? { fineTuneFrom: config.epochs } : {}), command: `graft ${['train', ...argv].join(' ')}`, timings,
    facts: { base: config.base, 'image size': config.imageSize, 'training images': train.size, 'cached views': config.cacheViews, 'fine-tuned layers': config.fineTuneLayers },
  });
  state.phase = 'done';
  writeJson(join(out, 'state.json'), state);
  model.dispose();
  bar.log(`validation accuracy ${files.accuracy.toFixed(4)} (${predictions.count} images), loss ${loss.toFixed(4)}; ${timings.total.toFixed(0)} s in all`);
  bar.log(`wrote ${files.markdown}, ${files.json}, ${files.confusion}${files.history ? `, ${files.history}` : ''} and ${join(out, 'model.safetensors')}`);
}
