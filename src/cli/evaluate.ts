/**
 * `graft evaluate --model RUN [--data DIR] [--out DIR]`: the classification report, confusion matrix and loss
 * of a model trained by `graft train`, on the run's own validation set or on another image folder whose
 * class folders carry the same names.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ArgumentError } from '../errors.js';
import { init } from '../gpu/runtime.js';
import { imageDatasetFromDirectory } from '../data/image-dataset.js';
import { predictLabelled } from '../train/fit.js';
import { writeRunReport } from '../report/run-report.js';
import type { CommandSpec, ParsedArgs } from './args.js';
import { ProgressBar } from './progress.js';
import { loadRunModel } from './run-config.js';
import { setPrecision } from '../nn/precision.js';
import { openDatasets } from './train.js';

export const evaluateCommand: CommandSpec = {
  name: 'evaluate',
  summary: 'accuracy, loss, classification report and confusion matrix of a trained model',
  usage: 'graft evaluate --model runs/NAME [--data DIR] [--out DIR]',
  options: {
    model: { type: 'string', help: 'a run folder of graft train, or its model.safetensors' },
    data: { type: 'string', help: "an image folder with the run's class sub-folders (default: the run's validation set)" },
    out: { type: 'string', help: 'where to write report.json, report.md and confusion-matrix.png (default: RUN/evaluation)' },
    'batch-size': { type: 'number', help: 'examples per step', default: 32 },
  },
};

export async function runEvaluate(args: ParsedArgs, argv: string[]): Promise<void> {
  const path = args.options.model as string | undefined;
  if (!path) throw new ArgumentError('graft evaluate: --model RUN_FOLDER is required.');
  const batchSize = args.options['batch-size'] as number;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new ArgumentError(`graft evaluate: --batch-size must be a positive integer, got ${batchSize}.`);
  await init();
  const { model, config, file } = loadRunModel(path);
  setPrecision(config.precision ?? 'f32'); // as the run trained and reported
  const bar = new ProgressBar(process.stdout, 'evaluate:');
  try {
    const classNames = config.classNames!;
    const preprocessing = config.preprocessing ?? model.preprocessing;
    const dataDir = args.options.data as string | undefined;
    let data;
    let described: string;
    if (dataDir) {
      data = await imageDatasetFromDirectory(dataDir, {
        imageSize: [config.imageSize, config.imageSize], batchSize, shuffle: false, preprocessing, classNames, cropToAspectRatio: config.cropToAspectRatio === true, onWarning: (m) => bar.log(`warning: ${m}`),
      });
      described = `${dataDir} (${data.size} images)`;
    } else {
      const sets = await openDatasets({ ...config, batchSize }, preprocessing, (m) => bar.log(`warning: ${m}`));
      data = sets.val;
      described = `validation: ${sets.valDescription}`;
    }
    const onProgress = (e: Parameters<ProgressBar['update']>[0]) => bar.update(e);
    // One pass: the predictions and the loss (from the logits, as evaluate() computes it).
    const predictions = await predictLabelled(model, data, onProgress);
    const loss = predictions.loss ?? NaN;
    bar.finish();
    const out = (args.options.out as string | undefined) ?? join(file.replace(/model\.safetensors$/, ''), 'evaluation');
    mkdirSync(out, { recursive: true });
    const files = writeRunReport(out, { title: `Evaluation of ${file}`, classNames, predictions, loss, evaluatedOn: described, command: `graft ${['evaluate', ...argv].join(' ')}` });
    bar.log(`accuracy ${files.accuracy.toFixed(4)} on ${predictions.count} images, loss ${loss.toFixed(4)}; wrote ${files.markdown}, ${files.json}, ${files.confusion}`);
  } finally {
    model.dispose();
  }
}
