/**
 * Input validation across the public API and the CLI: one table of bad inputs, one row per mistake a user
 * makes (a mismatched input shape, an unknown layer name, a missing weight, a wrong number of classes, a bad
 * option or CLI argument). Each row names the error class it must raise and the words its message must
 * contain: the argument, layer or weight at fault, the expected value, and the received one. So a message
 * like "invalid argument" fails the test; "dense: units must be a positive integer, got 0" passes.
 *
 * CLI rows run main([...]) in-process and read what it printed to stderr (the error class is then seen only
 * as the exit code 1; an unknown command is 2). main() shuts the GPU runtime down when it returns, so every
 * API row starts with `await init()`, which makes a fresh device when needed, and builds what it uses.
 *
 * Run: npx vitest run test/reliability/input-validation.test.ts
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test, vi } from 'vitest';
import { ArgumentError, GraftError, GraftFormatError, ShapeError } from '../../src/errors.js';
import { init } from '../../src/gpu/runtime.js';
import { tensor } from '../../src/tensor/create.js';
import { tidy } from '../../src/tensor/scope.js';
import { Model, Sequential, input } from '../../src/nn/model.js';
import { Dense } from '../../src/nn/layers/core.js';
import { Conv2D } from '../../src/nn/layers/convolutional.js';
import { BatchNormalization } from '../../src/nn/layers/normalization.js';
import { loadWeights } from '../../src/weights/load.js';
import type { SafetensorsTensor } from '../../src/weights/safetensors.js';
import { Adam, SGD } from '../../src/train/optimizers.js';
import { type BatchSource, fit } from '../../src/train/fit.js';
import { type TransferModelOptions, createTransferModel, fineTune } from '../../src/train/transfer.js';
import { imageDatasetFromDirectory } from '../../src/data/image-dataset.js';
import { main } from '../../src/cli/main.js';

const root = mkdtempSync(join(tmpdir(), 'graft-input-validation-'));
const data = join(root, 'data');
mkdirSync(join(data, 'a'), { recursive: true });
mkdirSync(join(data, 'b'), { recursive: true });
const image = join(root, 'x.png');
writeFileSync(image, 'not really a png; --top is checked first');
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

/** Dense(4 → 6, relu) → Dense(6 → 3, softmax), input [4]. */
function smallModel(): Sequential {
  return new Sequential([new Dense({ units: 6, activation: 'relu', name: 'iv_hidden' }), new Dense({ units: 3, activation: 'softmax', name: 'iv_out' })], { inputShape: [4], name: 'iv' });
}

/** A tiny convolutional base ([8, 8, 3] → [4, 4, 4]) for createTransferModel and fineTune. */
function smallBase(): Model {
  const x = input([8, 8, 3], 'iv_image');
  const c1 = new Conv2D({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'iv_conv1' }).apply(x);
  const c2 = new Conv2D({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', name: 'iv_conv2' }).apply(c1);
  return new Model({ inputs: x, outputs: c2, name: 'iv_base' });
}

function transferOptions(patch: Partial<TransferModelOptions>): TransferModelOptions {
  return { base: smallBase(), numClasses: 3, head: [5], dropout: 0.2, inputShape: [8, 8, 3], ...patch };
}

/** Every weight of smallModel as a safetensors tensor, then changed by `edit`. */
function weightsOf(model: Sequential, edit: (m: Map<string, SafetensorsTensor>) => void): Map<string, SafetensorsTensor> {
  const m = new Map<string, SafetensorsTensor>();
  for (const w of model.weights) m.set(w.key, { dtype: 'F32', shape: [...w.value.shape], data: new Float32Array(w.value.shape.reduce((a, b) => a * b, 1)) });
  edit(m);
  return m;
}

/** One batch per epoch, as given. */
function oneBatch(x: Float32Array, y: Int32Array, count: number): BatchSource {
  return {
    async *batches() {
      yield { x, y, count };
    },
  };
}

async function fitOnce(source: BatchSource): Promise<unknown> {
  const model = smallModel();
  return fit(model, source, { optimizer: new Adam(model.trainableParameters(), { lr: 1e-3 }), loss: 'sparseCategoricalCrossentropy', epochs: 1 });
}

interface ApiRow {
  what: string;
  run: () => unknown;
  error: new (...args: never[]) => GraftError;
  /** The argument, layer or weight named. */
  names: string;
  expected: string;
  received: string;
}

const API: ApiRow[] = [
  // Models and layers
  { what: 'Model.call with a wrong input shape', run: () => tidy(() => smallModel().call(tensor(new Float32Array(10), [2, 5]))), error: ArgumentError, names: 'iv: input 0', expected: '[batch, 4]', received: '[batch, 5]' },
  { what: 'model.getLayer of an unknown name', run: () => smallModel().getLayer('nope'), error: ArgumentError, names: "'nope'", expected: 'iv_hidden, iv_out', received: "no layer named 'nope'" },
  { what: 'Dense called on the wrong number of features', run: () => { const d = new Dense({ units: 2, name: 'iv_d' }); tidy(() => d.call(tensor(new Float32Array(8), [2, 4]))); return tidy(() => d.call(tensor(new Float32Array(10), [2, 5]))); }, error: ShapeError, names: 'iv_d', expected: 'expected 4 input features', received: 'got 5' },
  { what: 'Dense with units 0', run: () => new Dense({ units: 0, name: 'iv_d0' }), error: ArgumentError, names: 'iv_d0: units', expected: 'positive integer', received: 'got 0' },
  { what: 'Dense with an unknown activation', run: () => new Dense({ units: 2, activation: 'swishy' as 'relu', name: 'iv_da' }), error: ArgumentError, names: 'iv_da', expected: 'known: ', received: "'swishy'" },
  { what: 'Conv2D with filters 2.5', run: () => new Conv2D({ filters: 2.5, kernelSize: 3, name: 'iv_c0' }), error: ArgumentError, names: 'iv_c0: filters', expected: 'positive integer', received: 'got 2.5' },
  { what: 'Conv2D with kernelSize 0', run: () => new Conv2D({ filters: 2, kernelSize: 0, name: 'iv_c1' }), error: ArgumentError, names: 'iv_c1: kernelSize', expected: 'positive integer or a pair', received: 'got 0' },
  { what: 'Conv2D with strides of one number in a list', run: () => new Conv2D({ filters: 2, kernelSize: 3, strides: [2] as unknown as [number, number], name: 'iv_c2' }), error: ArgumentError, names: 'iv_c2: strides', expected: 'pair [height, width]', received: 'got [2]' },
  { what: "Conv2D with padding 'full'", run: () => new Conv2D({ filters: 2, kernelSize: 3, padding: 'full' as 'same', name: 'iv_c3' }), error: ArgumentError, names: 'iv_c3: padding', expected: "'valid', 'same'", received: 'got "full"' },
  { what: 'BatchNormalization with epsilon 0', run: () => new BatchNormalization({ epsilon: 0, name: 'iv_bn0' }), error: ArgumentError, names: 'iv_bn0: epsilon', expected: 'finite number > 0', received: 'got 0' },
  { what: 'BatchNormalization with momentum 2', run: () => new BatchNormalization({ momentum: 2, name: 'iv_bn1' }), error: ArgumentError, names: 'iv_bn1: momentum', expected: 'in [0, 1]', received: 'got 2' },
  // Weights
  { what: 'loadWeights with a missing weight', run: () => { const m = smallModel(); return loadWeights(m, weightsOf(m, (w) => w.delete('iv_out/bias')), 'w.safetensors'); }, error: GraftFormatError, names: 'w.safetensors', expected: 'missing from the file (1)', received: 'iv_out/bias' },
  { what: 'loadWeights with a weight of the wrong shape', run: () => { const m = smallModel(); return loadWeights(m, weightsOf(m, (w) => w.set('iv_out/kernel', { dtype: 'F32', shape: [3, 6], data: new Float32Array(18) })), 'w.safetensors'); }, error: GraftFormatError, names: 'iv_out/kernel', expected: '[6, 3] in the model', received: '[3, 6] in the file' },
  { what: 'loadWeights with an integer weight', run: () => { const m = smallModel(); return loadWeights(m, weightsOf(m, (w) => w.set('iv_out/bias', { dtype: 'I32', shape: [3], data: new Int32Array(3) })), 'w.safetensors'); }, error: GraftFormatError, names: 'iv_out/bias', expected: 'expected F32, F16 or BF16', received: 'dtype I32' },
  // Training
  { what: 'fit with a label ≥ the number of classes', run: () => fitOnce(oneBatch(new Float32Array(8), new Int32Array([1, 3]), 2)), error: ArgumentError, names: 'label 3', expected: 'outside [0, 3)', received: 'label 3 (example 1' },
  { what: 'fit with a batch of the wrong size', run: () => fitOnce(oneBatch(new Float32Array(7), new Int32Array([0, 1]), 2)), error: ShapeError, names: 'batch x', expected: 'expected count × [4] = 8', received: 'has 7 values' },
  { what: 'fit with an unknown loss', run: () => { const m = smallModel(); return fit(m, oneBatch(new Float32Array(8), new Int32Array(2), 2), { optimizer: new Adam(m.trainableParameters(), { lr: 1e-3 }), loss: 'hinge' as 'sparseCategoricalCrossentropy', epochs: 1 }); }, error: ArgumentError, names: 'fit', expected: 'known: ', received: "'hinge'" },
  { what: 'fit with epochs -1', run: () => { const m = smallModel(); return fit(m, oneBatch(new Float32Array(8), new Int32Array(2), 2), { optimizer: new Adam(m.trainableParameters(), { lr: 1e-3 }), loss: 'sparseCategoricalCrossentropy', epochs: -1 }); }, error: ArgumentError, names: 'fit: epochs', expected: 'non-negative integer', received: 'got -1' },
  { what: 'Adam with lr -1', run: () => new Adam(smallModel().trainableParameters(), { lr: -1 }), error: ArgumentError, names: 'Adam: lr', expected: 'finite number > 0', received: 'got -1' },
  { what: 'SGD with lr NaN', run: () => new SGD(smallModel().trainableParameters(), { lr: NaN }), error: ArgumentError, names: 'SGD: lr', expected: 'finite number > 0', received: 'got NaN' },
  { what: 'createTransferModel with numClasses 1', run: () => createTransferModel(transferOptions({ numClasses: 1 })), error: ArgumentError, names: 'createTransferModel: numClasses', expected: 'integer ≥ 2', received: 'got 1' },
  { what: 'createTransferModel with a head width 0', run: () => createTransferModel(transferOptions({ head: [8, 0] })), error: ArgumentError, names: 'createTransferModel: head', expected: 'positive layer widths', received: 'got [8,0]' },
  { what: 'createTransferModel with dropout 1', run: () => createTransferModel(transferOptions({ dropout: 1 })), error: ArgumentError, names: 'createTransferModel: dropout', expected: 'in [0, 1)', received: 'got 1' },
  { what: "createTransferModel with base 'vgg19'", run: () => createTransferModel(transferOptions({ base: 'vgg19' as 'vgg16' })), error: ArgumentError, names: 'createTransferModel: base', expected: "'vgg16', 'resnet50' or a Model", received: 'got "vgg19"' },
  { what: 'fineTune with unfreezeLast past the base', run: () => fineTune(createTransferModel(transferOptions({})), { unfreezeLast: 99 }), error: ArgumentError, names: 'fineTune: unfreezeLast', expected: 'in [1, 2]', received: 'got 99' },
  { what: 'fineTune with learningRate 0', run: () => fineTune(createTransferModel(transferOptions({})), { unfreezeLast: 1, learningRate: 0 }), error: ArgumentError, names: 'fineTune: learningRate', expected: 'finite number > 0', received: 'got 0' },
  { what: "fineTune with optimizer 'rmsprop'", run: () => fineTune(createTransferModel(transferOptions({})), { unfreezeLast: 1, optimizer: 'rmsprop' as 'sgd' }), error: ArgumentError, names: 'fineTune: optimizer', expected: "'adam' or 'sgd'", received: 'got "rmsprop"' },
  // Data
  { what: 'imageDatasetFromDirectory with batchSize 0', run: () => imageDatasetFromDirectory(data, { batchSize: 0 }), error: ArgumentError, names: 'batchSize', expected: 'positive integer', received: 'got 0' },
  { what: 'imageDatasetFromDirectory with imageSize [0, 32]', run: () => imageDatasetFromDirectory(data, { imageSize: [0, 32] }), error: ArgumentError, names: 'imageSize', expected: '[height, width] of positive integers', received: 'got [0, 32]' },
  { what: 'imageDatasetFromDirectory with validationSplit 1.5', run: () => imageDatasetFromDirectory(data, { validationSplit: 1.5, subset: 'training', seed: 1 }), error: ArgumentError, names: 'validationSplit', expected: 'in (0, 1)', received: 'got 1.5' },
  { what: "imageDatasetFromDirectory with labelMode 'onehot'", run: () => imageDatasetFromDirectory(data, { labelMode: 'onehot' as 'int' }), error: ArgumentError, names: 'labelMode', expected: "'int', 'categorical' or 'binary'", received: "got 'onehot'" },
  { what: "imageDatasetFromDirectory with labelMode 'binary' and 3 classes", run: async () => { mkdirSync(join(data, 'c'), { recursive: true }); try { return await imageDatasetFromDirectory(data, { labelMode: 'binary' }); } finally { rmSync(join(data, 'c'), { recursive: true }); } }, error: ArgumentError, names: "labelMode 'binary'", expected: 'exactly 2 classes', received: 'found 3 (a, b, c)' },
];

/** Runs `run` and returns what it threw, synchronously or by rejecting. */
async function thrownBy(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('public API: bad inputs are refused with the name, the expected and the received value', () => {
  test.each(API.map((r) => [r.what, r] as const))('%s', async (_what, row) => {
    await init();
    const e = await thrownBy(row.run);
    expect(e, 'no error was thrown').toBeInstanceOf(row.error);
    const message = (e as Error).message;
    expect(message, 'names the argument, layer or weight').toContain(row.names);
    expect(message, 'says what was expected').toContain(row.expected);
    expect(message, 'says what was received').toContain(row.received);
  });
});

interface CliRow {
  what: string;
  argv: string[];
  code: number;
  names: string;
  expected: string;
  received: string;
}

const TRAIN = ['train', '--data', data, '--out', join(root, 'never-written'), '--weights', 'none'];
const CLI: CliRow[] = [
  { what: 'graft train --epochs -1', argv: [...TRAIN, '--epochs', '-1'], code: 1, names: '--epochs', expected: 'integer ≥ 0', received: 'got -1' },
  { what: 'graft train --image-size 8', argv: [...TRAIN, '--image-size', '8'], code: 1, names: '--image-size', expected: 'integer ≥ 32', received: 'got 8' },
  { what: "graft train --head 'a'", argv: [...TRAIN, '--head', 'a'], code: 1, names: '--head', expected: 'comma-separated positive widths', received: "got 'a'" },
  { what: 'graft train --validation-split 2', argv: [...TRAIN, '--validation-split', '2'], code: 1, names: '--validation-split', expected: 'in (0, 1)', received: 'got 2' },
  { what: 'graft train --batch-size 2.5', argv: [...TRAIN, '--batch-size', '2.5'], code: 1, names: '--batch-size', expected: 'integer ≥ 1', received: 'got 2.5' },
  { what: 'graft train --lr abc', argv: [...TRAIN, '--lr', 'abc'], code: 1, names: '--lr', expected: 'expects a number', received: "got 'abc'" },
  { what: 'graft train --lr 0', argv: [...TRAIN, '--lr', '0'], code: 1, names: '--lr', expected: 'number > 0', received: 'got 0' },
  { what: 'graft train with an unknown option', argv: [...TRAIN, '--epoch', '3'], code: 1, names: 'unknown option --epoch', expected: '--epochs', received: '--epoch ' },
  { what: 'graft train --data of a missing folder', argv: ['train', '--data', join(root, 'nowhere'), '--out', join(root, 'never')], code: 1, names: '--data', expected: 'no such folder', received: join(root, 'nowhere') },
  { what: 'graft evaluate without --model', argv: ['evaluate'], code: 1, names: '--model', expected: 'RUN_FOLDER is required', received: 'graft evaluate' },
  { what: 'graft predict --top 0', argv: ['predict', image, '--top', '0'], code: 1, names: '--top', expected: 'positive integer', received: 'got 0' },
  { what: 'graft with an unknown command', argv: ['trian'], code: 2, names: "unknown command 'trian'", expected: 'train', received: 'trian' },
];

describe('CLI: bad arguments exit non-zero with the name, the expected and the received value', () => {
  test.each(CLI.map((r) => [r.what, r] as const))('%s', async (_what, row) => {
    const errors: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void errors.push(a.map(String).join(' ')));
    vi.spyOn(console, 'log').mockImplementation(() => {});
    const code = await main(row.argv);
    vi.restoreAllMocks();
    const message = errors.join('\n');
    expect(code, message).toBe(row.code);
    expect(message, 'names the argument').toContain(row.names);
    expect(message, 'says what was expected').toContain(row.expected);
    expect(message, 'says what was received').toContain(row.received);
  });
});
