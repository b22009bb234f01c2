/**
 * torchvision's ResNet50 (`torchvision.models.resnet50().state_dict()`, saved as safetensors) to the Keras names
 * and layouts of Graft's `resnet50({variant: 'v1.5'})`. Pure: tensors in, tensors and metadata out (convert.ts
 * reads and writes the files). PyTorch pickles are never read; save the state dict with safetensors first.
 *
 * Names (L = 1..4 is torchvision's layer, B = 0.. its block; Keras counts stages from 2 and blocks from 1):
 *
 *   torchvision                        Keras (Graft)
 *   conv1.weight                       conv1_conv/kernel   (+ conv1_conv/bias, zeros: see below)
 *   bn1.{weight,bias,running_mean,running_var}
 *                                      conv1_bn/{gamma,beta,moving_mean,moving_variance}
 *   layerL.B.convK.weight              conv{L+1}_block{B+1}_{K}_conv/kernel        K = 1, 2, 3
 *   layerL.B.bnK.*                     conv{L+1}_block{B+1}_{K}_bn/*
 *   layerL.0.downsample.0.weight       conv{L+1}_block1_0_conv/kernel             the projection shortcut
 *   layerL.0.downsample.1.*            conv{L+1}_block1_0_bn/*
 *   fc.{weight,bias}                   predictions/{kernel,bias}
 *   *.num_batches_tracked              dropped (a training counter; inference does not use it)
 *
 * Layouts: a convolution weight is [out, in, kh, kw] (OIHW) in PyTorch and [kh, kw, in, out] (HWIO) in Keras;
 * both frameworks compute a cross-correlation, so the kernel is only transposed, never flipped. The classifier
 * weight is [classes, 2048] in PyTorch (y = W·x + b) and [2048, classes] in Keras (y = x·K + b).
 *
 * Zero biases: torchvision's convolutions have no bias (each is followed by a BatchNorm, whose beta makes a bias
 * redundant), but Keras' ResNet50, whose layers Graft builds, gives every Conv2D one. A zero bias added before a
 * BatchNorm changes nothing (exactly: x + 0 = x), so the converter writes `<conv>/bias` as zeros of [out] and the
 * file loads into the same model, with the same loader, as Keras-converted weights do.
 *
 * The metadata says what a model needs besides the numbers (see loadPretrained): architecture 'resnet50-v1.5'
 * (torchvision's ResNet50 strides the 3×3 convolution of a downsampling block, with padding 1), BatchNorm epsilon
 * 1e-05 (torch.nn.BatchNorm2d's default), preprocessing 'torch' (RGB scaled to 0..1, minus mean, over std).
 * torchvision's state dict carries no class names, so no labels are recorded.
 *
 * Strict: a state dict with a missing tensor, an unexpected one, a wrong shape or a non-float dtype is refused
 * with one GraftFormatError that names every problem.
 */
import { GraftFormatError } from '../errors.js';
import type { ConvertedWeights } from './resnet50-imagenet.js';
import type { SafetensorsTensor } from './safetensors.js';

/** Recorded in the output; bumped when this conversion changes. */
export const TORCHVISION_RESNET50_CONVERTER_VERSION = '1';

/** torchvision's ImageNet normalisation for preprocessing 'torch' (RGB, after scaling to 0..1). */
export const TORCH_MEAN_RGB = [0.485, 0.456, 0.406] as const;
export const TORCH_STD_RGB = [0.229, 0.224, 0.225] as const;

/** Bottleneck blocks and width (channels of the 1×1 and 3×3 convolutions) of torchvision's layer1..layer4. */
const LAYERS: ReadonlyArray<{ blocks: number; width: number }> = [
  { blocks: 3, width: 64 },
  { blocks: 4, width: 128 },
  { blocks: 6, width: 256 },
  { blocks: 3, width: 512 },
];
const FEATURES = 2048;

/** BatchNorm tensors: torchvision's suffix → Keras' weight name. */
const BN_NAMES: ReadonlyArray<[string, string]> = [
  ['weight', 'gamma'],
  ['bias', 'beta'],
  ['running_mean', 'moving_mean'],
  ['running_var', 'moving_variance'],
];

/** One layer with weights: its torchvision prefix, its Keras name, and for a convolution its OIHW shape. */
type LayerPair = { torch: string; keras: string } & ({ kind: 'conv'; oihw: [number, number, number, number] } | { kind: 'bn'; channels: number });

/** Every convolution and BatchNorm of torchvision's ResNet50 in network order (the classifier is separate). */
export function torchvisionResnet50Layers(): LayerPair[] {
  const pairs: LayerPair[] = [];
  const convBn = (torchConv: string, torchBn: string, keras: string, oihw: [number, number, number, number]) => {
    pairs.push({ torch: torchConv, keras: `${keras}_conv`, kind: 'conv', oihw });
    pairs.push({ torch: torchBn, keras: `${keras}_bn`, kind: 'bn', channels: oihw[0] });
  };
  convBn('conv1', 'bn1', 'conv1', [64, 3, 7, 7]);
  let channels = 64;
  LAYERS.forEach(({ blocks, width }, l) => {
    for (let b = 0; b < blocks; b++) {
      const torch = `layer${l + 1}.${b}`;
      const keras = `conv${l + 2}_block${b + 1}`;
      if (b === 0) convBn(`${torch}.downsample.0`, `${torch}.downsample.1`, `${keras}_0`, [4 * width, channels, 1, 1]);
      convBn(`${torch}.conv1`, `${torch}.bn1`, `${keras}_1`, [width, channels, 1, 1]);
      convBn(`${torch}.conv2`, `${torch}.bn2`, `${keras}_2`, [width, width, 3, 3]);
      convBn(`${torch}.conv3`, `${torch}.bn3`, `${keras}_3`, [4 * width, width, 1, 1]);
      channels = 4 * width;
    }
  });
  return pairs;
}

/**
 * True when the names look like a torchvision ResNet state dict (a stem `conv1`/`bn1` and a `layer1`), which is
 * then converted strictly: a near miss (a ResNet18, a stray tensor) is reported, not passed through unconverted.
 */
export function looksLikeTorchvisionResnet(names: Iterable<string>): boolean {
  let conv1 = false;
  let bn1 = false;
  let layer1 = false;
  for (const n of names) {
    if (n === 'conv1.weight') conv1 = true;
    else if (n === 'bn1.weight') bn1 = true;
    else if (n.startsWith('layer1.')) layer1 = true;
  }
  return conv1 && bn1 && layer1;
}

type FloatTensor = Extract<SafetensorsTensor, { dtype: 'F32' | 'F16' | 'BF16' }>;

function isFloat(t: SafetensorsTensor): t is FloatTensor {
  return t.dtype === 'F32' || t.dtype === 'F16' || t.dtype === 'BF16';
}

/** A new tensor of the same dtype as `t` with `shape`, element `to[k]` taken from `t.data[from(k)]`. */
function permuted(t: FloatTensor, shape: number[], source: (k: number) => number): FloatTensor {
  const n = t.data.length;
  if (t.dtype === 'F32') {
    const data = new Float32Array(n);
    for (let k = 0; k < n; k++) data[k] = t.data[source(k)]!;
    return { dtype: 'F32', shape, data };
  }
  const bits = new Uint16Array(n);
  for (let k = 0; k < n; k++) bits[k] = t.data[source(k)]!;
  return { dtype: t.dtype, shape, data: bits };
}

/** [O, I, H, W] → [H, W, I, O]. */
export function oihwToHwio(t: FloatTensor): FloatTensor {
  const [o, i, h, w] = t.shape as [number, number, number, number];
  // Destination index k = ((kh·W + kw)·I + ci)·O + co; source ((co·I + ci)·H + kh)·W + kw.
  return permuted(t, [h, w, i, o], (k) => {
    const co = k % o;
    const ci = Math.floor(k / o) % i;
    const kw = Math.floor(k / (o * i)) % w;
    const kh = Math.floor(k / (o * i * w));
    return ((co * i + ci) * h + kh) * w + kw;
  });
}

/** [rows, cols] → [cols, rows]. */
export function transpose2d(t: FloatTensor): FloatTensor {
  const [rows, cols] = t.shape as [number, number];
  return permuted(t, [cols, rows], (k) => (k % rows) * cols + Math.floor(k / rows));
}

function zeros(dtype: FloatTensor['dtype'], n: number): FloatTensor {
  return dtype === 'F32' ? { dtype, shape: [n], data: new Float32Array(n) } : { dtype, shape: [n], data: new Uint16Array(n) };
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
const showShape = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * The Keras-named tensors and metadata of a torchvision ResNet50 state dict. `source` names the file in errors.
 * Dtypes are kept (F32, F16 or BF16 each); the classifier may have any number of classes.
 */
export function resnet50FromTorchvision(stateDict: ReadonlyMap<string, SafetensorsTensor>, source: string): ConvertedWeights {
  const problems: string[] = [];
  const used = new Set<string>();
  const tensors = new Map<string, SafetensorsTensor>();

  /** The tensor `name` if it is present, a float, and of `shape`; otherwise records why not. */
  const take = (name: string, shape: readonly number[]): FloatTensor | undefined => {
    const t = stateDict.get(name);
    if (!t) {
      problems.push(`missing: ${name} ${showShape(shape)}`);
      return undefined;
    }
    used.add(name);
    if (!sameShape(t.shape, shape)) {
      problems.push(`${name}: shape ${showShape(t.shape)}, expected ${showShape(shape)}`);
      return undefined;
    }
    if (!isFloat(t)) {
      problems.push(`${name}: dtype ${t.dtype}, expected F32, F16 or BF16`);
      return undefined;
    }
    return t;
  };

  const bnLayers = new Set<string>();
  for (const layer of torchvisionResnet50Layers()) {
    if (layer.kind === 'conv') {
      const w = take(`${layer.torch}.weight`, layer.oihw);
      if (w) {
        tensors.set(`${layer.keras}/kernel`, oihwToHwio(w));
        tensors.set(`${layer.keras}/bias`, zeros(w.dtype, layer.oihw[0]));
      }
    } else {
      bnLayers.add(layer.torch);
      for (const [torchName, kerasName] of BN_NAMES) {
        const t = take(`${layer.torch}.${torchName}`, [layer.channels]);
        if (t) tensors.set(`${layer.keras}/${kerasName}`, t);
      }
    }
  }

  // The classifier: any number of classes, read from fc.weight (a fine-tuned model may have fewer than 1000).
  const fcShape = stateDict.get('fc.weight')?.shape;
  const classes = fcShape?.length === 2 && fcShape[0]! >= 1 && fcShape[1] === FEATURES ? fcShape[0]! : 1000;
  const fcWeight = take('fc.weight', [classes, FEATURES]);
  const fcBias = take('fc.bias', [classes]);
  if (fcWeight) tensors.set('predictions/kernel', transpose2d(fcWeight));
  if (fcBias) tensors.set('predictions/bias', fcBias);

  for (const name of stateDict.keys()) {
    if (used.has(name)) continue;
    const counter = name.endsWith('.num_batches_tracked') && bnLayers.has(name.slice(0, -'.num_batches_tracked'.length));
    if (!counter) problems.push(`unexpected: ${name} ${showShape(stateDict.get(name)!.shape)}`);
  }
  if (problems.length > 0) {
    const basicBlocks = !stateDict.has('layer1.0.conv3.weight') && stateDict.has('layer1.0.conv2.weight');
    const hint = basicBlocks ? ' (it has no layer1.0.conv3: a ResNet18 or ResNet34, whose basic blocks Graft does not build)' : '';
    throw new GraftFormatError(`${source}: not a torchvision ResNet50 state dict${hint}; ${problems.length} problems:\n  - ${problems.join('\n  - ')}`);
  }

  const metadata: Record<string, string> = {
    architecture: 'resnet50-v1.5',
    architecture_note: "torchvision ResNet50: in stages 3-5 the stride-2 is on the first block's 3x3 convolution (padding 1) and its projection",
    names: 'keras-applications',
    layout: 'conv kernels [kh, kw, in, out]; dense kernel [in, out]; activations NHWC',
    conv_bias_note: 'torchvision convolutions have no bias; the conv biases here are zeros (each conv feeds a BatchNorm, so they change nothing)',
    batchnorm_epsilon: '1e-05',
    preprocessing: 'torch',
    preprocessing_note: 'RGB scaled to 0..1, then (x - mean_rgb) / std_rgb per channel',
    mean_rgb: JSON.stringify(TORCH_MEAN_RGB),
    std_rgb: JSON.stringify(TORCH_STD_RGB),
    input_shape: '[224,224,3]',
    num_classes: String(classes),
    source_format: 'torchvision ResNet50 state_dict (safetensors)',
    converter_version: TORCHVISION_RESNET50_CONVERTER_VERSION,
  };
  return { tensors, metadata };
}
