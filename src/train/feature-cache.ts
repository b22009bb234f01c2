/**
 * Feature caching: train a head on a frozen base without running the base every epoch.
 *
 * In transfer learning almost all of the compute is in the frozen base (ResNet50: 4 GFLOP per 224² image),
 * and a frozen base computes the same features for the same image every epoch. So compute them once, keep
 * them in host memory, and train the head on them: an epoch then costs only the head. Where the cached part
 * ends is `Model.constantFrontier()`: the tensors that the first trainable (or training-dependent) layer
 * calls read. With the whole base frozen that is the pooled output of the base (pooling has no weights, so
 * it is part of the frozen computation); with the last block of a ResNet unfrozen for fine-tuning, it is
 * that block's input, so fine-tuning runs only the block and the head.
 *
 * Augmentation. A random flip or zoom changes the image, so one cached pass would freeze one draw of the
 * augmentation for the whole run. `views: V` caches V passes over the data, each with the augmentation of
 * its own epoch (pass v is the source's epoch v), and epoch e trains on view e mod V, reshuffled. V = 1 is
 * exact when the source does not augment; with augmentation, a few views keep most of its benefit.
 *
 * Memory: V × examples × the frontier's size, in f32 (`bytes`). A frozen ResNet50 caches its 2,048 pooled
 * features (8 KiB) per image and view; cut before its last block (fine-tuning 10 layers) at 224², the block's
 * 7·7·2048 input (392 KiB).
 */
import { ArgumentError } from '../errors.js';
import { noGrad } from '../autograd/tape.js';
import { tensor } from '../tensor/create.js';
import { tidy } from '../tensor/scope.js';
import { permutation } from '../ops/index.js';
import { GraftFormatError } from '../errors.js';
import type { SymbolicTensor } from '../nn/layer.js';
import type { SafetensorsFile, SafetensorsTensor } from '../weights/safetensors.js';
import type { Model } from '../nn/model.js';
import { type Batch, type BatchSource, concatArrays } from './batches.js';

export interface FeatureCacheOptions {
  /** Passes over the source to cache (each with its epoch's augmentation). Default 1. */
  views?: number;
  /** Reshuffle the cached examples every epoch. Default true. */
  shuffle?: boolean;
  /** Seed of the reshuffle. Default 0. */
  seed?: number;
  /**
   * The tensors to cache: by default the model's constant frontier as it is now. Give an earlier cut to reuse
   * one cache across phases, e.g. the frontier fine-tuning will have (transfer.ts `fineTuneFrontier`), so
   * head training and fine-tuning both train on it; every tensor must be constant (computed by frozen layers).
   */
  at?: SymbolicTensor[];
  /** Called before and after each batch of the caching passes (step = batches done). */
  onBatch?: (info: { view: number; step: number; examples: number; total?: number }) => void;
}

/** One cached pass: per frontier tensor, the values of every example, plus the labels. */
interface View {
  features: Float32Array[];
  y: Int32Array | Float32Array;
  count: number;
}

export class FeatureCache implements BatchSource {
  /** Examples per view. */
  readonly size: number;

  private constructor(
    readonly frontier: SymbolicTensor[],
    private readonly views: View[],
    readonly batchSize: number,
    private readonly shuffle: boolean,
    private readonly seed: number,
  ) {
    this.size = views[0]!.count;
  }

  /** Runs the model's constant part over `source` (`views` passes) and keeps the frontier's values. */
  static async build(model: Model, source: BatchSource, options: FeatureCacheOptions = {}): Promise<FeatureCache> {
    const { views = 1, shuffle = true, seed = 0, onBatch } = options;
    if (!Number.isInteger(views) || views < 1) throw new ArgumentError(`FeatureCache: views must be a positive integer, got ${views}.`);
    const frontier = options.at ?? model.constantFrontier();
    checkConstant(model, frontier);
    if (frontier.length === 0) throw new ArgumentError(`FeatureCache: nothing in ${model.name} trains (no trainable weight and no training-mode layer), so there is no head to train on cached features.`);
    const reader = frontier.find((t) => model.inputs.includes(t));
    if (reader) {
      throw new ArgumentError(`FeatureCache: nothing is frozen before the trainable layers of ${model.name} (the model input '${reader.layer.name}' feeds a trainable layer), so caching would save nothing; freeze a base or turn caching off.`);
    }
    const input = model.inputs[0]!;
    const cached: View[] = [];
    let batchSize = 0;
    for (let v = 0; v < views; v++) {
      const chunks: Float32Array[][] = frontier.map(() => []);
      const labels: Array<Int32Array | Float32Array> = [];
      let count = 0;
      let step = 0;
      onBatch?.({ view: v, step, examples: 0, ...(source.size === undefined ? {} : { total: source.size }) });
      for await (const b of source.batches(v)) {
        const values = noGrad(() => tidy(() => model.execute(new Map([[input, tensor(b.x, [b.count, ...input.shape])]]), frontier, { training: true })));
        for (let i = 0; i < values.length; i++) {
          chunks[i]!.push(await values[i]!.floats());
          values[i]!.dispose();
        }
        labels.push(b.y);
        count += b.count;
        batchSize = Math.max(batchSize, b.count);
        onBatch?.({ view: v, step: ++step, examples: count, ...(source.size === undefined ? {} : { total: source.size }) });
      }
      if (count === 0) throw new ArgumentError('FeatureCache: the source yielded no examples.');
      if (v > 0 && count !== cached[0]!.count) throw new ArgumentError(`FeatureCache: pass ${v} of the source had ${count} examples, pass 0 had ${cached[0]!.count}.`);
      cached.push({ features: chunks.map((c) => concatArrays(c)), y: concatArrays(labels), count });
    }
    return new FeatureCache(frontier, cached, batchSize, shuffle, seed);
  }

  /** Throws unless every cached tensor is still computed by frozen layers of `model` (see Model.constantTensors). */
  checkUsableWith(model: Model): void {
    checkConstant(model, this.frontier);
  }

  /**
   * The cache as safetensors tensors (`view<v>/<frontier index>`, `view<v>/labels`) and metadata naming the
   * frontier (layer name and call index), so that a later run can load it instead of recomputing it
   * (`graft train --feature-cache DIR`). Write it with writeSafetensorsFile.
   */
  toSafetensors(): { tensors: Map<string, SafetensorsTensor>; metadata: Record<string, string> } {
    const tensors = new Map<string, SafetensorsTensor>();
    this.views.forEach((v, vi) => {
      v.features.forEach((f, i) => tensors.set(`view${vi}/${i}`, { dtype: 'F32', shape: [v.count, ...this.frontier[i]!.shape], data: f }));
      tensors.set(`view${vi}/labels`, v.y instanceof Int32Array ? { dtype: 'I32', shape: [v.y.length], data: v.y } : { dtype: 'F32', shape: [v.y.length], data: v.y });
    });
    const frontier = this.frontier.map((t) => ({ layer: t.layer.name, node: t.nodeIndex, shape: t.shape }));
    return { tensors, metadata: { format: 'graft-feature-cache', frontier: JSON.stringify(frontier), views: String(this.views.length), batch_size: String(this.batchSize) } };
  }

  /** A cache saved by `toSafetensors`, for `model` (its frontier tensors are looked up by layer name). */
  static fromSafetensors(model: Model, file: SafetensorsFile, source: string, options: { shuffle?: boolean; seed?: number; batchSize?: number } = {}): FeatureCache {
    const bad = (why: string) => new GraftFormatError(`${source}: not a usable feature cache: ${why}.`);
    if (file.metadata.format !== 'graft-feature-cache') throw bad(`metadata format is '${file.metadata.format ?? ''}'`);
    let spec: Array<{ layer: string; node: number; shape: number[] }>;
    try {
      spec = JSON.parse(file.metadata.frontier ?? '');
    } catch {
      throw bad('its frontier metadata is not JSON');
    }
    const frontier = spec.map(({ layer, node, shape }) => {
      const t = model.layers.find((l) => l.name === layer)?.nodes[node]?.output;
      if (!t) throw bad(`${model.name} has no call ${node} of a layer '${layer}'`);
      if (t.shape.join() !== shape.join()) throw bad(`${layer} outputs [${t.shape.join(', ')}] here, [${shape.join(', ')}] in the cache`);
      return t;
    });
    const viewCount = Number(file.metadata.views);
    const views: View[] = [];
    for (let v = 0; v < viewCount; v++) {
      const y = file.tensors.get(`view${v}/labels`);
      if (!y || (y.dtype !== 'I32' && y.dtype !== 'F32')) throw bad(`view ${v} has no labels`);
      const features = frontier.map((t, i) => {
        const f = file.tensors.get(`view${v}/${i}`);
        if (!f || f.dtype !== 'F32' || f.shape.slice(1).join() !== t.shape.join()) throw bad(`view ${v} lacks features for ${t.layer.name} of shape [N, ${t.shape.join(', ')}]`);
        return f.data as Float32Array;
      });
      const count = features[0]!.length / frontier[0]!.shape.reduce((a, b) => a * b, 1);
      views.push({ features, y: y.data as Int32Array | Float32Array, count });
    }
    if (views.length === 0) throw bad('it holds no views');
    checkConstant(model, frontier);
    return new FeatureCache(frontier, views, options.batchSize ?? Number(file.metadata.batch_size), options.shuffle ?? true, options.seed ?? 0);
  }

  /** Host memory held by the cache. */
  get bytes(): number {
    return this.views.reduce((n, v) => n + v.features.reduce((m, f) => m + f.byteLength, 0) + v.y.byteLength, 0);
  }

  get viewCount(): number {
    return this.views.length;
  }

  async *batches(epoch: number): AsyncGenerator<Batch> {
    const view = this.views[epoch % this.views.length]!;
    const n = view.count;
    const order = this.shuffle ? permutation(n, (this.seed * 100_003 + epoch) >>> 0) : null;
    const perExample = view.features.map((f) => f.length / n);
    const width = view.y.length / n;
    for (let start = 0; start < n; start += this.batchSize) {
      const count = Math.min(this.batchSize, n - start);
      const features = view.features.map((f, i) => new Float32Array(count * perExample[i]!));
      const y = view.y instanceof Int32Array ? new Int32Array(count * width) : new Float32Array(count * width);
      for (let j = 0; j < count; j++) {
        const k = order ? order[start + j]! : start + j;
        view.features.forEach((f, i) => features[i]!.set(f.subarray(k * perExample[i]!, (k + 1) * perExample[i]!), j * perExample[i]!));
        y.set(view.y.subarray(k * width, (k + 1) * width), j * width);
      }
      yield { x: new Float32Array(0), features: new Map(this.frontier.map((t, i) => [t, features[i]!])), y, count };
    }
  }
}

function checkConstant(model: Model, at: SymbolicTensor[]): void {
  const constant = model.constantTensors();
  const bad = at.filter((t) => !constant.has(t));
  if (bad.length) {
    throw new ArgumentError(`FeatureCache: ${bad.map((t) => t.layer.name).join(', ')} ${bad.length === 1 ? 'is' : 'are'} not computed by frozen layers of ${model.name} alone (a layer before ${bad.length === 1 ? 'it' : 'them'} trains or behaves differently in training), so cached values would be stale.`);
  }
}
