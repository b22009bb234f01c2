/**
 * `graft predict IMG... [--top 5] [--weights FILE | --model runs/NAME]`: classification of image files, with
 * pretrained ImageNet weights or with a model trained by `graft train` (its classes, image size, crop and
 * preprocessing come from the run).
 */
import { readFileSync } from 'node:fs';
import { ArgumentError } from '../errors.js';
import { init } from '../gpu/runtime.js';
import { tensor } from '../tensor/create.js';
import { tidy } from '../tensor/scope.js';
import { noGrad } from '../autograd/tape.js';
import { cropToAspectRatio, decodeImage, preprocess, type Preprocessing, resizeBilinear } from '../data/image.js';
import type { Model } from '../nn/model.js';
import { loadRunModel } from './run-config.js';
import { setPrecision } from '../nn/precision.js';
import { decodePredictions, loadPretrained } from '../models/pretrained.js';
import type { CommandSpec, ParsedArgs } from './args.js';

export const predictCommand: CommandSpec = {
  name: 'predict',
  summary: 'classify images with ImageNet weights or a model trained by graft train (top-k labels and probabilities)',
  usage: 'graft predict IMG... [--top 5] [--weights weights/resnet50-imagenet.safetensors | --model runs/NAME] [--json]',
  options: {
    model: { type: 'string', help: 'a run folder of graft train (or its model.safetensors), instead of --weights' },
    top: { type: 'number', help: 'how many classes to show per image', default: 5 },
    weights: { type: 'string', help: 'safetensors file written by graft weights fetch/convert', default: 'weights/resnet50-imagenet.safetensors' },
    json: { type: 'boolean', help: 'print JSON' },
  },
};

export async function runPredict(args: ParsedArgs): Promise<void> {
  const files = args.positionals;
  if (files.length === 0) throw new ArgumentError('graft predict: give at least one image file.');
  const top = args.options.top as number;
  if (!Number.isInteger(top) || top < 1) throw new ArgumentError(`graft predict: --top must be a positive integer, got ${top}.`);
  await init();
  let model: Model;
  let labels: string[];
  let preprocessing: Preprocessing;
  let crop = false;
  if (args.options.model) {
    const run = loadRunModel(args.options.model as string);
    ({ model } = run);
    setPrecision(run.config.precision ?? 'f32'); // as the run trained
    labels = run.config.classNames ?? [];
    preprocessing = run.config.preprocessing ?? run.model.preprocessing;
    crop = run.config.cropToAspectRatio === true;
  } else {
    ({ model, labels, preprocessing } = loadPretrained(args.options.weights as string));
  }
  const [h, w] = model.inputs[0]!.shape as [number, number, number];
  const classes = model.outputs[0]!.shape[0]!;
  const results = [];
  for (const file of files) {
    let img = decodeImage(readFileSync(file), file);
    if (crop) img = cropToAspectRatio(img, w, h);
    img = resizeBilinear(img, w, h);
    const probs = noGrad(() => tidy(() => model.call(tensor(preprocess(img.data, preprocessing), [1, h, w, 3]))));
    const p = await probs.floats();
    probs.dispose();
    results.push({ file, predictions: decodePredictions(p, classes, labels, top)[0]! });
  }
  model.dispose();
  if (args.options.json) {
    console.log(JSON.stringify(results, null, 2));
    return;
  }
  for (const r of results) {
    console.log(r.file);
    for (const p of r.predictions) console.log(`  ${p.probability.toFixed(4)}  ${p.label} (${p.index})`);
  }
}
