/**
 * VGG16 and ResNet50 are built layer for layer as in Keras applications: the same layer names (the weight
 * keys), the same layer order, and the same parameter counts as Keras's own summaries.
 */
import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { randomData } from '../util/check.js';
import { tensor } from '../../src/tensor/create.js';
import { memory } from '../../src/tensor/memory.js';
import { tidy } from '../../src/tensor/scope.js';
import { noGrad } from '../../src/autograd/tape.js';
import { vgg16 } from '../../src/models/vgg16.js';
import { resnet50 } from '../../src/models/resnet50.js';
import { ArgumentError } from '../../src/errors.js';

useGpu();

const trainable = (m: ReturnType<typeof vgg16>) => m.trainableWeights.reduce((n, w) => n + w.value.size, 0);

describe('VGG16', () => {
  test('without the top: 19 layers and 14,714,688 parameters, Keras names', () => {
    const m = vgg16({ includeTop: false, inputShape: [64, 64, 3] });
    expect(m.layers.length).toBe(19);
    expect(m.countParams()).toBe(14_714_688);
    expect(m.layers.map((l) => l.name).slice(0, 5)).toEqual(['input_layer', 'block1_conv1', 'block1_conv2', 'block1_pool', 'block2_conv1']);
    expect(m.weights.map((w) => w.key)).toContain('block5_conv3/kernel');
    expect(m.getLayer('block5_conv3').getWeight('kernel').value.shape).toEqual([3, 3, 512, 512]);
    expect(m.outputs[0]!.shape).toEqual([2, 2, 512]);
    m.dispose();
  });

  test('pooling and input validation', () => {
    const m = vgg16({ includeTop: false, inputShape: [32, 32, 3], pooling: 'avg' });
    expect(m.outputs[0]!.shape).toEqual([512]);
    m.dispose();
    expect(() => vgg16({ includeTop: true, inputShape: [64, 64, 3] })).toThrow(/with includeTop the input must be \[224, 224, 3\]/);
    expect(() => vgg16({ includeTop: false, inputShape: [64, 64, 1] })).toThrow(ArgumentError);
  });
});

describe('ResNet50', () => {
  test('with the top: 177 layers; 25,636,712 parameters of which 53,120 non-trainable (BN moving statistics)', () => {
    const m = resnet50();
    expect(m.layers.length).toBe(177);
    expect(m.countParams()).toBe(25_636_712);
    expect(m.countParams() - trainable(m)).toBe(53_120);
    const names = m.layers.map((l) => l.name);
    expect(names.slice(0, 8)).toEqual(['input_layer', 'conv1_pad', 'conv1_conv', 'conv1_bn', 'conv1_relu', 'pool1_pad', 'pool1_pool', 'conv2_block1_1_conv']);
    // Keras lists a block's main path and its projection interleaved by depth.
    expect(names.slice(7, 18)).toEqual([
      'conv2_block1_1_conv', 'conv2_block1_1_bn', 'conv2_block1_1_relu', 'conv2_block1_2_conv', 'conv2_block1_2_bn',
      'conv2_block1_2_relu', 'conv2_block1_0_conv', 'conv2_block1_3_conv', 'conv2_block1_0_bn', 'conv2_block1_3_bn', 'conv2_block1_add',
    ]);
    expect(names.slice(-4)).toEqual(['conv5_block3_add', 'conv5_block3_out', 'avg_pool', 'predictions']);
    m.dispose();
  });

  test('v1 strides the first 1×1 of a downsampling block, v1.5 the 3×3', () => {
    const v1 = resnet50({ includeTop: false, inputShape: [64, 64, 3] });
    const v15 = resnet50({ includeTop: false, inputShape: [64, 64, 3], variant: 'v1.5' });
    const conv = (m: typeof v1, n: string) => m.getLayer(n) as unknown as { strides: [number, number] };
    expect(conv(v1, 'conv3_block1_1_conv').strides).toEqual([2, 2]);
    expect(conv(v1, 'conv3_block1_2_conv').strides).toEqual([1, 1]);
    expect(conv(v15, 'conv3_block1_1_conv').strides).toEqual([1, 1]);
    expect(conv(v15, 'conv3_block1_2_conv').strides).toEqual([2, 2]);
    expect(v1.outputs[0]!.shape).toEqual([2, 2, 2048]);
    expect(v15.outputs[0]!.shape).toEqual([2, 2, 2048]);
    expect(v1.countParams()).toBe(23_587_712);
    v1.dispose();
    v15.dispose();
  });

  test('runs forward at 64×64 without leaking, in inference mode', async () => {
    const m = resnet50({ includeTop: false, inputShape: [64, 64, 3], pooling: 'avg' });
    const before = memory();
    const y = noGrad(() => tidy(() => m.call(tensor(randomData(2 * 64 * 64 * 3, 1, 0, 255), [2, 64, 64, 3]))));
    expect(y.shape).toEqual([2, 2048]);
    const d = await y.data();
    expect(d.every(Number.isFinite)).toBe(true);
    y.dispose();
    expect(memory().tensors).toBe(before.tensors);
    m.dispose();
  });
});
