/**
 * The distinct convolutions of VGG16 and ResNet50 (Keras applications architectures) at a given input
 * size, each with how many times the network runs it. Used by bench/conv.ts.
 */
import type { ConvActivation, ConvPadding } from '../../src/ops/conv.js';

export const MODELS = ['vgg16', 'resnet50'] as const;
export type ModelName = (typeof MODELS)[number];

export interface Layer {
  model: ModelName;
  /** e.g. "3×3/2 128→128 @56". */
  label: string;
  /** Keras layer names with this shape. */
  names: string[];
  count: number;
  /** Input height and width (square inputs). */
  H: number;
  W: number;
  C: number;
  F: number;
  K: number;
  stride: number;
  padding: ConvPadding;
  activation: ConvActivation;
}

type Spec = Omit<Layer, 'label' | 'names' | 'count' | 'W' | 'model'> & { name: string };

function collect(model: ModelName, specs: Spec[]): Layer[] {
  const byKey = new Map<string, Layer>();
  for (const s of specs) {
    const key = JSON.stringify([s.H, s.C, s.F, s.K, s.stride, s.padding, s.activation]);
    const known = byKey.get(key);
    if (known) {
      known.count++;
      known.names.push(s.name);
      continue;
    }
    const pad = typeof s.padding === 'string' ? (s.padding === 'same' ? ' same' : '') : ` pad ${s.padding[0][0]}`;
    const label = `${s.K}×${s.K}${s.stride > 1 ? `/${s.stride}` : ''}${pad} ${s.C}→${s.F} @${s.H}`;
    byKey.set(key, { model, label, names: [s.name], count: 1, H: s.H, W: s.H, C: s.C, F: s.F, K: s.K, stride: s.stride, padding: s.padding, activation: s.activation });
  }
  return [...byKey.values()];
}

/** VGG16: 5 blocks of 3×3 'same' convolutions with relu, 2-2-3-3-3 of them, max-pooled by 2 between blocks. */
export function vgg16Layers(size: number): Layer[] {
  const blocks: Array<[number, number]> = [[64, 2], [128, 2], [256, 3], [512, 3], [512, 3]];
  const specs: Spec[] = [];
  let c = 3;
  let s = size;
  blocks.forEach(([f, n], b) => {
    for (let i = 0; i < n; i++) {
      specs.push({ name: `block${b + 1}_conv${i + 1}`, H: s, C: c, F: f, K: 3, stride: 1, padding: 'same', activation: 'relu' });
      c = f;
    }
    s = Math.floor(s / 2);
  });
  return collect('vgg16', specs);
}

/**
 * ResNet50 v1 as keras.applications builds it: ZeroPadding2D(3) + 7×7/2 conv, ZeroPadding2D(1) + 3×3/2
 * max-pool, then stages conv2..conv5 of 3, 4, 6, 3 bottleneck blocks with widths 64, 128, 256, 512
 * (outputs 4× that). Block 1 of each stage has a 1×1 projection shortcut; in stages 3–5 it and the
 * block's first 1×1 have stride 2. Convs have bias and no activation (batch norm follows).
 */
export function resnet50Layers(size: number): Layer[] {
  const specs: Spec[] = [];
  const conv = (name: string, H: number, C: number, F: number, K: number, stride: number, padding: ConvPadding) =>
    specs.push({ name, H, C, F, K, stride, padding, activation: 'none' });
  conv('conv1_conv', size, 3, 64, 7, 2, [[3, 3], [3, 3]]);
  const stem = Math.floor((size + 6 - 7) / 2) + 1;
  let s = Math.floor((stem + 2 - 3) / 2) + 1;
  let c = 64;
  const stages: Array<[number, number, number]> = [[64, 3, 1], [128, 4, 2], [256, 6, 2], [512, 3, 2]];
  stages.forEach(([f, blocks, stageStride], i) => {
    for (let b = 1; b <= blocks; b++) {
      const name = `conv${i + 2}_block${b}`;
      const stride = b === 1 ? stageStride : 1;
      const out = Math.floor((s - 1) / stride) + 1;
      if (b === 1) conv(`${name}_0_conv`, s, c, 4 * f, 1, stride, 'valid');
      conv(`${name}_1_conv`, s, c, f, 1, stride, 'valid');
      conv(`${name}_2_conv`, out, f, f, 3, 1, 'same');
      conv(`${name}_3_conv`, out, f, 4 * f, 1, 1, 'valid');
      c = 4 * f;
      s = out;
    }
  });
  return collect('resnet50', specs);
}

export function modelLayers(model: ModelName, size: number): Layer[] {
  return model === 'vgg16' ? vgg16Layers(size) : resnet50Layers(size);
}
