/**
 * `graft adapt --source SPEC --target SPEC --method dann|coral|source-only --epochs N --out runs/NAME`:
 * unsupervised domain adaptation (src/train/adapt.ts) from a labelled source domain to an unlabelled target.
 *
 * SPEC is `mnist`, `usps` (read from --data-root), `mnist:DIR`, `usps:DIR`, or an image folder with one
 * subfolder per class (src/data/domain-spec.ts). Training uses --samples-source labelled source images and
 * --samples-target unlabelled target images drawn from the training splits (defaults: the MNIST ↔ USPS
 * protocol's 2,000 MNIST / 1,800 USPS; every image of a folder). Target accuracy is measured on the target's
 * TEST split (MNIST t10k, USPS zip.test.gz; a folder's own images) after every epoch; its labels never enter
 * training. The --out folder receives report.json, report.md, accuracy.png (target and source accuracy),
 * domain.png (domain-classifier accuracy) and confusion.png (the target confusion matrix).
 * --augment-views N (with --augment-zoom / --augment-shift) gives each sampled source image N − 1 zoomed and
 * shifted views (src/data/domain-augment.ts) before training; an epoch then has N times the steps.
 * --augment-target-views N --augment-target-shift PX gives each unlabelled target image N − 1 shifted copies
 * (at the target's own scale), so that the domain classifier cannot learn the few target images by heart.
 * --validation N scores on N labelled images of the target's TRAINING split that the sample left out
 * (heldOutDomain) instead of the test split: for choosing settings without looking at the test split.
 */
import { join } from 'node:path';
import { ArgumentError } from '../errors.js';
import { init } from '../gpu/runtime.js';
import { type DomainSet, greyToRgb, heldOutDomain, loadDomain, sampleDomain } from '../data/domain-spec.js';
import { type ViewAugmentation, augmentDomain, checkViewAugmentation } from '../data/domain-augment.js';
import { ADAPT_METHODS, type AdaptEpochLog, type AdaptMethod, adapt } from '../train/adapt.js';
import { DEFAULT_DOMAIN_HIDDEN, disposeDannNetwork } from '../train/dann.js';
import { classificationReport, reportToMarkdown } from '../report/metrics.js';
import { plotConfusionMatrix, plotLines } from '../report/plots.js';
import { writeFileAtomic } from '../weights/files.js';
import type { CommandSpec, ParsedArgs } from './args.js';

export const adaptCommand: CommandSpec = {
  name: 'adapt',
  summary: 'unsupervised domain adaptation (DANN, Deep CORAL, or a source-only baseline) with a report',
  usage: 'graft adapt --source mnist --target usps --method dann --epochs 10 --out runs/mnist-usps-dann [options]',
  options: {
    source: { type: 'string', help: 'labelled source domain: mnist, usps, mnist:DIR, usps:DIR or an image folder' },
    target: { type: 'string', help: 'unlabelled target domain (same forms)' },
    method: { type: 'string', help: `adaptation method: ${ADAPT_METHODS.join(', ')}`, default: 'dann' },
    epochs: { type: 'number', help: 'epochs (an epoch = samples-source / (batch-size/2) steps)', default: 10 },
    out: { type: 'string', help: 'folder for report.json, report.md and the plots' },
    seed: { type: 'number', help: 'seed of the sampled subsets, the initial weights and the batch order', default: 1 },
    'batch-size': { type: 'number', help: 'images per step, half source and half target', default: 128 },
    lr: { type: 'number', help: 'initial learning rate μ0 (annealed as μ0/(1+10p)^0.75); default 0.01 for sgd, 0.001 for adam' },
    optimizer: { type: 'string', help: 'sgd (momentum 0.9, as the DANN paper) or adam', default: 'sgd' },
    'samples-source': { type: 'number', help: 'source training images (0 = protocol default: 2000 MNIST, 1800 USPS, all of a folder)', default: 0 },
    'samples-target': { type: 'number', help: 'target training images (0 = protocol default, as above)', default: 0 },
    'coral-weight': { type: 'number', help: 'α, the weight of the CORAL loss (method coral); 100 brings it to the size of the label loss for the LeNet features', default: 100 },
    'lambda-max': { type: 'number', help: 'the largest gradient-reversal λ (method dann): λ = max · (2/(1+exp(−10p)) − 1)', default: 1 },
    'batch-norm': { type: 'boolean', help: 'batch normalisation after each convolution of the LeNet extractor: per-domain statistics for dann, coral and adabn (the target\'s when predicting on it); source-only uses the source\'s only' },
    'mixed-batch-statistics': { type: 'boolean', help: 'with --batch-norm and dann or coral: normalise each batch with the statistics of both domains together instead' },
    'augment-views': { type: 'number', help: 'source images per original, the original included: the others zoomed and shifted (1 = none; an epoch grows with it)', default: 1 },
    'augment-zoom': { type: 'string', help: 'with --augment-views: zoom range LO,HI of the extra views (MNIST→USPS 1,1.45; USPS→MNIST 0.69,1)' },
    'augment-shift': { type: 'number', help: 'with --augment-views: largest shift of the extra views in pixels, in x and y' },
    'augment-target-views': { type: 'number', help: 'unlabelled target images per original, the original included; the others shifted by up to --augment-target-shift px (1 = none)', default: 1 },
    'augment-target-shift': { type: 'number', help: 'with --augment-target-views: largest shift of the target\'s extra views in pixels, in x and y' },
    'domain-hidden': { type: 'string', help: 'hidden Dense widths of the domain classifier, comma-separated (the DANN paper\'s MNIST head: 100)', default: DEFAULT_DOMAIN_HIDDEN.join(',') },
    validation: { type: 'number', help: 'score on N labelled target TRAINING images left out of the sample, instead of the test split (for choosing settings)', default: 0 },
    'image-size': { type: 'number', help: 'side of the square images both domains are resized to', default: 28 },
    'data-root': { type: 'string', help: 'folder holding mnist/ and usps/', default: '../shared/data' },
    quiet: { type: 'boolean', help: 'no per-epoch progress lines' },
  },
};

/** The --augment-* options as a ViewAugmentation, or null for none; a zoom or shift without views is an error. */
function viewAugmentation(o: ParsedArgs['options'], seed: number): ViewAugmentation | null {
  const views = o['augment-views'] as number;
  const zoomText = o['augment-zoom'] as string | undefined;
  const shift = o['augment-shift'] as number | undefined;
  if (!Number.isInteger(views) || views < 1) throw new ArgumentError(`graft adapt: --augment-views must be an integer ≥ 1, got ${views}.`);
  if (views === 1) {
    if (zoomText !== undefined || shift !== undefined) {
      throw new ArgumentError(`graft adapt: --augment-zoom and --augment-shift shape the extra views of --augment-views; give --augment-views 2 or more (got ${views}).`);
    }
    return null;
  }
  if (zoomText === undefined && shift === undefined) {
    throw new ArgumentError(`graft adapt: --augment-views ${views} needs --augment-zoom LO,HI and/or --augment-shift PX (without them the extra views would be copies).`);
  }
  const zoom = (zoomText ?? '1,1').split(',').map(Number);
  if (zoom.length !== 2 || zoom.some((z) => !Number.isFinite(z))) throw new ArgumentError(`graft adapt: --augment-zoom must be two numbers LO,HI, e.g. 1,1.45; got '${zoomText}'.`);
  const aug: ViewAugmentation = { views, zoom: zoom as [number, number], shift: shift ?? 0, seed: seed * 2 + 3 };
  checkViewAugmentation(aug, 'graft adapt (--augment-*)');
  return aug;
}

function domainHidden(text: string): number[] {
  const widths = text.split(',').map(Number);
  if (text.trim() === '' || widths.some((w) => !Number.isInteger(w) || w < 1)) {
    throw new ArgumentError(`graft adapt: --domain-hidden must be positive integers separated by commas, e.g. 100 or 500,500; got '${text}'.`);
  }
  return widths;
}

/**
 * The --augment-target-* options: shifted copies of the unlabelled target images (the target keeps its own
 * scale: it is what the source is aligned to), or null for none. Only the methods that use the target
 * (dann, coral, adabn) see them; source-only's probe does too, but nothing of it reaches the features.
 */
function targetAugmentation(o: ParsedArgs['options'], seed: number): ViewAugmentation | null {
  const views = o['augment-target-views'] as number;
  const shift = o['augment-target-shift'] as number | undefined;
  if (!Number.isInteger(views) || views < 1) throw new ArgumentError(`graft adapt: --augment-target-views must be an integer ≥ 1, got ${views}.`);
  if (views === 1 && shift === undefined) return null;
  if (views === 1 || shift === undefined || !(shift > 0)) {
    throw new ArgumentError(`graft adapt: --augment-target-views (≥ 2) and --augment-target-shift (> 0 px) go together; got views ${views}, shift ${shift ?? 'none'}.`);
  }
  const aug: ViewAugmentation = { views, zoom: [1, 1], shift, seed: seed * 2 + 4 };
  checkViewAugmentation(aug, 'graft adapt (--augment-target-*)');
  return aug;
}

const PROTOCOL_SAMPLES: Record<string, number> = { mnist: 2000, usps: 1800 };

function samplesFor(spec: string, requested: number, flag: string): number {
  if (!Number.isInteger(requested) || requested < 0) throw new ArgumentError(`graft adapt: --${flag} must be a non-negative integer, got ${requested}.`);
  if (requested > 0) return requested;
  return PROTOCOL_SAMPLES[spec.split(':')[0]!] ?? Number.MAX_SAFE_INTEGER;
}

function progressLine(log: AdaptEpochLog, epochs: number, method: AdaptMethod): string {
  const width = String(epochs).length;
  const extra = method === 'coral' ? ` coral ${log.coralLoss.toExponential(3)}` : '';
  return (
    `epoch ${String(log.epoch).padStart(width)}/${epochs}  label loss ${log.labelLoss.toFixed(4)}  domain loss ${log.domainLoss.toFixed(4)}${extra}` +
    `  source acc ${log.sourceAccuracy.toFixed(4)}  target acc ${log.targetAccuracy.toFixed(4)}  domain acc ${log.domainAccuracy.toFixed(4)}` +
    `  λ ${log.lambda.toFixed(3)}  lr ${log.lr.toExponential(2)}  ${log.seconds.toFixed(1)}s`
  );
}

const text = (s: string) => new TextEncoder().encode(s);

export async function runAdapt(args: ParsedArgs): Promise<void> {
  const o = args.options;
  for (const k of ['source', 'target', 'out'] as const) if (typeof o[k] !== 'string' || o[k] === '') throw new ArgumentError(`graft adapt: --${k} is required.`);
  if (args.positionals.length) throw new ArgumentError(`graft adapt: unexpected argument '${args.positionals[0]}' (all inputs are options).`);
  const method = o.method as AdaptMethod;
  if (!ADAPT_METHODS.includes(method)) throw new ArgumentError(`graft adapt: --method must be one of ${ADAPT_METHODS.join(', ')}; got '${method}'.`);
  if (method === 'adabn' && o['batch-norm'] !== true) throw new ArgumentError('graft adapt: --method adabn adapts through batch-norm statistics; add --batch-norm.');
  if (o['mixed-batch-statistics'] === true && (method === 'adabn' || method === 'source-only')) {
    throw new ArgumentError(`graft adapt: --mixed-batch-statistics is for dann and coral; ${method} ${method === 'adabn' ? 'always normalises each domain with its own statistics' : 'uses no statistics of the target'}.`);
  }
  const optimizer = o.optimizer as string;
  if (optimizer !== 'sgd' && optimizer !== 'adam') throw new ArgumentError(`graft adapt: --optimizer must be sgd or adam; got '${optimizer}'.`);
  const source = o.source as string, target = o.target as string, out = o.out as string;
  const seed = o.seed as number, epochs = o.epochs as number, imageSize = o['image-size'] as number;
  if (!Number.isInteger(seed) || seed < 0) throw new ArgumentError(`graft adapt: --seed must be a non-negative integer, got ${seed}.`);
  if (!Number.isInteger(imageSize) || imageSize < 8) throw new ArgumentError(`graft adapt: --image-size must be an integer ≥ 8, got ${imageSize}.`);
  const dataRoot = o['data-root'] as string;
  const hidden = domainHidden(o['domain-hidden'] as string);
  const validation = o.validation as number;
  if (!Number.isInteger(validation) || validation < 0) throw new ArgumentError(`graft adapt: --validation must be a non-negative integer, got ${validation}.`);
  const quiet = o.quiet === true;

  const load = (spec: string, split: 'train' | 'test') => loadDomain(spec, { dataRoot, split, imageSize });
  const augmentation = viewAugmentation(o, seed);
  const targetViews = targetAugmentation(o, seed);
  let sourceTrain: DomainSet = sampleDomain(await load(source, 'train'), samplesFor(source, o['samples-source'] as number, 'samples-source'), seed * 2 + 1);
  const sourceOriginals = sourceTrain.count;
  if (augmentation) sourceTrain = augmentDomain(sourceTrain, augmentation);
  const targetAll = await load(target, 'train');
  const targetSamples = samplesFor(target, o['samples-target'] as number, 'samples-target');
  let targetTrain: DomainSet = sampleDomain(targetAll, targetSamples, seed * 2 + 2);
  const targetOriginals = targetTrain.count;
  if (targetViews) targetTrain = augmentDomain(targetTrain, targetViews);
  let targetTest: DomainSet = validation > 0 ? heldOutDomain(targetAll, Math.min(targetSamples, targetAll.count), validation, seed * 2 + 2, 'graft adapt --validation') : await load(target, 'test');
  // What the target accuracy is measured on, in the progress line, report.json, report.md and the plot.
  const scored = validation > 0
    ? { on: `${validation} held-out target training images`, evaluation: `${validation} held-out target training images (not in the sample; labels used only for this score)`, label: 'target (held-out)' }
    : { on: 'the target test split', evaluation: 'target test split (labels used only for this score)', label: 'target (test)' };
  if (sourceTrain.imageShape[2] !== targetTrain.imageShape[2]) {
    [sourceTrain, targetTrain, targetTest] = [greyToRgb(sourceTrain), greyToRgb(targetTrain), greyToRgb(targetTest)];
  }
  if (sourceTrain.classNames.join() !== targetTest.classNames.join()) {
    throw new ArgumentError(`graft adapt: source and target must share their classes; source has [${sourceTrain.classNames.join(', ')}], target [${targetTest.classNames.join(', ')}].`);
  }
  await init();
  if (!quiet) {
    const views = augmentation ? ` × ${augmentation.views} views, zoom [${augmentation.zoom.join(', ')}], shift ≤ ${augmentation.shift} px` : '';
    console.log(`adapt ${method}: ${source} (${sourceOriginals} labelled${views}) → ${target} (${targetOriginals} unlabelled${targetViews ? ` × ${targetViews.views} views, shift ≤ ${targetViews.shift} px` : ''}; scored on ${scored.on}, ${targetTest.count} images), ${epochs} epochs, seed ${seed}`);
  }
  const started = performance.now();
  const result = await adapt(sourceTrain, targetTrain, targetTest, {
    method,
    epochs,
    seed,
    batchSize: o['batch-size'] as number,
    optimizer,
    ...(o.lr !== undefined ? { lr: o.lr as number } : {}),
    coralWeight: o['coral-weight'] as number,
    lambdaMax: o['lambda-max'] as number,
    batchNorm: o['batch-norm'] === true,
    ...(o['mixed-batch-statistics'] === true ? { perDomainStatistics: false } : {}),
    network: { domainHidden: hidden },
    onEpoch: (log) => {
      if (!quiet) console.log(progressLine(log, epochs, method));
    },
  });
  const seconds = (performance.now() - started) / 1000;
  disposeDannNetwork(result.network);

  const history = result.history;
  const last = history[history.length - 1]!;
  const report = classificationReport(targetTest.labels, result.targetPredictions, targetTest.classNames);
  const json = {
    command: 'adapt',
    method,
    source,
    target,
    seed,
    epochs,
    batchSize: o['batch-size'],
    optimizer,
    lr: o.lr ?? (optimizer === 'sgd' ? 0.01 : 0.001),
    coralWeight: method === 'coral' ? o['coral-weight'] : undefined,
    lambdaMax: method === 'dann' ? o['lambda-max'] : undefined,
    domainHidden: hidden,
    batchNorm: o['batch-norm'] !== true ? false : method === 'source-only' ? 'source statistics' : o['mixed-batch-statistics'] === true ? 'mixed statistics' : 'per-domain statistics',
    augmentation: augmentation ? { views: augmentation.views, zoom: augmentation.zoom, shift: augmentation.shift } : null,
    targetAugmentation: targetViews ? { views: targetViews.views, shift: targetViews.shift } : null,
    samples: { source: sourceOriginals, sourceWithViews: sourceTrain.count, target: targetOriginals, targetWithViews: targetTrain.count, targetTest: targetTest.count },
    evaluation: scored.evaluation,
    targetAccuracy: last.targetAccuracy,
    domainAccuracy: last.domainAccuracy,
    sourceAccuracy: last.sourceAccuracy,
    seconds,
    history,
    classificationReport: { accuracy: report.accuracy, perClass: report.perClass, macroAvg: report.macroAvg, weightedAvg: report.weightedAvg, confusion: report.confusion },
  };
  writeFileAtomic(join(out, 'report.json'), text(`${JSON.stringify(json, null, 2)}\n`));
  const md = [
    `# graft adapt: ${source} → ${target}, ${method}`,
    '',
    `Seed ${seed}, ${epochs} epochs, batch ${o['batch-size']} (half source, half target), ${optimizer}, ${sourceOriginals} labelled source${augmentation ? ` (× ${augmentation.views} views: zoom [${augmentation.zoom.join(', ')}], shift ≤ ${augmentation.shift} px)` : ''} and ${targetOriginals} unlabelled target training images${targetViews ? ` (× ${targetViews.views} views: shift ≤ ${targetViews.shift} px)` : ''}; scored on ${scored.on} (${targetTest.count} images). ${seconds.toFixed(0)} s.`,
    '',
    `**Target accuracy ${last.targetAccuracy.toFixed(4)}**; domain-classifier accuracy in the last epoch ${last.domainAccuracy.toFixed(4)} (0.5 = domains indistinguishable to it${method === 'dann' ? '' : '; a probe here, with no gradient into the features'}).`,
    '',
    '| epoch | label loss | domain loss | CORAL loss | source acc | target acc | domain acc | λ | lr | s |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...history.map((h) =>
      `| ${h.epoch} | ${h.labelLoss.toFixed(4)} | ${h.domainLoss.toFixed(4)} | ${h.coralLoss.toExponential(2)} | ${h.sourceAccuracy.toFixed(4)} | ${h.targetAccuracy.toFixed(4)} | ${h.domainAccuracy.toFixed(4)} | ${h.lambda.toFixed(3)} | ${h.lr.toExponential(2)} | ${h.seconds.toFixed(1)} |`,
    ),
    '',
    '## Target classification report (last epoch)',
    '',
    reportToMarkdown(report),
    '',
    '![target and source accuracy](accuracy.png) ![domain-classifier accuracy](domain.png) ![confusion matrix](confusion.png)',
    '',
  ].join('\n');
  writeFileAtomic(join(out, 'report.md'), text(md));
  writeFileAtomic(
    join(out, 'accuracy.png'),
    plotLines(
      [
        { label: scored.label, values: history.map((h) => h.targetAccuracy) },
        { label: 'source (train)', values: history.map((h) => h.sourceAccuracy) },
      ],
      { title: `${source} -> ${target}: ${method}`, subtitle: 'Accuracy', yLabel: 'accuracy' },
    ),
  );
  writeFileAtomic(
    join(out, 'domain.png'),
    plotLines(
      [
        { label: 'domain classifier', values: history.map((h) => h.domainAccuracy) },
        { label: 'chance', values: history.map(() => 0.5) },
      ],
      { title: `${source} -> ${target}: ${method}`, subtitle: 'Domain-classifier accuracy', yLabel: 'accuracy', legend: 'upper' },
    ),
  );
  writeFileAtomic(join(out, 'confusion.png'), plotConfusionMatrix(report.confusion, targetTest.classNames, { title: `Target confusion (${method})` }));
  if (!quiet) console.log(`target accuracy ${last.targetAccuracy.toFixed(4)} (${method}, seed ${seed}); report in ${out}/report.md (${seconds.toFixed(0)} s)`);
}
