/**
 * `graft features --data DIR --layer NAME --out FILE.safetensors`: the output of one named layer for every
 * image of a folder, written as safetensors: `features` [N, ...shape] (F32) and `labels` [N] (I32), with the
 * layer, class names and files in the metadata. The model is a pretrained base (--base, --weights) or a
 * model trained by `graft train` (--model).
 */
import { ArgumentError } from '../errors.js';
import { init } from '../gpu/runtime.js';
import { imageDatasetFromDirectory } from '../data/image-dataset.js';
import { writeSafetensorsFile } from '../weights/files.js';
import type { Preprocessing } from '../data/image.js';
import { createTransferModel, DEFAULT_RESNET50_WEIGHTS, extractFeatures, type TransferModel } from '../train/transfer.js';
import type { CommandSpec, ParsedArgs } from './args.js';
import { ProgressBar } from './progress.js';
import { loadRunModel } from './run-config.js';
import { setPrecision } from '../nn/precision.js';

export const featuresCommand: CommandSpec = {
  name: 'features',
  summary: "extract a named layer's output for every image of a folder (safetensors)",
  usage: 'graft features --data DIR --layer conv5_block3_out --out features.safetensors [--model runs/NAME | --base resnet50 --weights FILE]',
  options: {
    data: { type: 'string', help: 'image folder with one sub-folder per class' },
    layer: { type: 'string', help: 'the layer whose output to save (names as in Keras: conv5_block3_out, block5_pool, head_pool, …)' },
    out: { type: 'string', help: 'output .safetensors file' },
    model: { type: 'string', help: 'a run folder of graft train (instead of --base)' },
    base: { type: 'string', help: 'resnet50 or vgg16', default: 'resnet50' },
    weights: { type: 'string', help: "the base's weights (default for resnet50: weights/resnet50-imagenet.safetensors); 'none' for random" },
    'image-size': { type: 'number', help: 'images are resized to this square size (a --model run uses its own)', default: 224 },
    'batch-size': { type: 'number', help: 'examples per step', default: 16 },
  },
};

export async function runFeatures(args: ParsedArgs): Promise<void> {
  const o = args.options;
  const [data, layer, out] = [o.data, o.layer, o.out] as Array<string | undefined>;
  if (!data || !layer || !out) throw new ArgumentError('graft features: --data DIR, --layer NAME and --out FILE.safetensors are required.');
  if (!out.endsWith('.safetensors')) throw new ArgumentError(`graft features: --out must end in .safetensors, got ${out}.`);
  const batchSize = o['batch-size'] as number;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new ArgumentError(`graft features: --batch-size must be a positive integer, got ${batchSize}.`);
  await init();
  let model: TransferModel;
  let imageSize = o['image-size'] as number;
  let classNames: string[] | undefined;
  let preprocessing: Preprocessing;
  let crop = false;
  if (o.model) {
    const run = loadRunModel(o.model as string);
    model = run.model;
    setPrecision(run.config.precision ?? 'f32'); // as the run trained
    imageSize = run.config.imageSize;
    classNames = run.config.classNames ?? undefined;
    preprocessing = run.config.preprocessing ?? 'caffe';
    crop = run.config.cropToAspectRatio === true;
  } else {
    const base = o.base as string;
    if (base !== 'resnet50' && base !== 'vgg16') throw new ArgumentError(`graft features: --base must be resnet50 or vgg16, got '${base}'.`);
    const weights = o.weights === 'none' ? null : ((o.weights as string | undefined) ?? (base === 'resnet50' ? DEFAULT_RESNET50_WEIGHTS : undefined));
    if (weights === undefined) throw new ArgumentError('graft features: --base vgg16 needs --weights FILE or --weights none.');
    if (!Number.isInteger(imageSize) || imageSize < 32) throw new ArgumentError(`graft features: --image-size must be an integer ≥ 32, got ${imageSize}.`);
    // The 2-class head is never run: features come from a layer of the base.
    model = createTransferModel({ base, weights, numClasses: 2, head: [], dropout: 0, inputShape: [imageSize, imageSize, 3] });
    preprocessing = model.preprocessing;
  }
  const bar = new ProgressBar(process.stdout, 'features:');
  try {
    const dataset = await imageDatasetFromDirectory(data, {
      imageSize: [imageSize, imageSize], batchSize, shuffle: false, preprocessing, cropToAspectRatio: crop,
      ...(classNames ? { classNames } : {}), onWarning: (m) => bar.log(`warning: ${m}`),
    });
    let done = 0;
    let step = 0;
    const source = {
      size: dataset.size,
      async *batches() {
        bar.update({ phase: 'validate', epoch: 0, step, examples: 0, total: dataset.size });
        for await (const b of dataset.batches(0)) {
          yield b;
          done += b.count;
          bar.update({ phase: 'validate', epoch: 0, step: ++step, examples: done, total: dataset.size });
        }
      },
    };
    const f = await extractFeatures(model, source, layer);
    bar.finish();
    writeSafetensorsFile(out, { features: { dtype: 'F32', shape: [f.count, ...f.shape], data: f.features }, labels: { dtype: 'I32', shape: [f.count], data: f.labels as Int32Array } }, {
      format: 'graft-features', layer, class_names: JSON.stringify(dataset.classNames), ...(f.count === dataset.size ? { files: JSON.stringify(dataset.files) } : {}),
    });
    bar.log(`wrote ${out}: features [${[f.count, ...f.shape].join(', ')}] from layer ${layer}, labels [${f.count}]`);
  } finally {
    model.dispose();
  }
}
