import { describe, expect, test } from 'vitest';
import { GraftFormatError } from '../../src/errors.js';
import { checkResnet50V1Topology, hasLegacyResnet50Names, parseClassLabels, resnet50FromTfjs } from '../../src/weights/resnet50-imagenet.js';
import { legacyResnet50ToKeras, resnet50KerasWeightNames } from '../../src/weights/resnet50-names.js';
import { parseTfjsLayersModel } from '../../src/weights/tfjs-layers.js';
import { legacyResnet50Names, resnet50Topology } from './fixtures.js';

describe('ResNet50 names: legacy Keras 2.2.4 → Keras applications', () => {
  test('the examples of the naming scheme', () => {
    const cases: Array<[string, string]> = [
      ['conv1/kernel', 'conv1_conv/kernel'],
      ['conv1/bias', 'conv1_conv/bias'],
      ['bn_conv1/gamma', 'conv1_bn/gamma'],
      ['res2a_branch2a/kernel', 'conv2_block1_1_conv/kernel'],
      ['bn2a_branch2a/moving_mean', 'conv2_block1_1_bn/moving_mean'],
      ['res2a_branch1/bias', 'conv2_block1_0_conv/bias'],
      ['bn2a_branch1/moving_variance', 'conv2_block1_0_bn/moving_variance'],
      ['res3d_branch2b/kernel', 'conv3_block4_2_conv/kernel'],
      ['bn4f_branch2c/beta', 'conv4_block6_3_bn/beta'],
      ['res5c_branch2c/kernel', 'conv5_block3_3_conv/kernel'],
      ['fc1000/kernel', 'predictions/kernel'],
      ['fc1000/bias', 'predictions/bias'],
    ];
    for (const [legacy, keras] of cases) expect(legacyResnet50ToKeras(legacy)).toBe(keras);
  });

  test('names outside ResNet50 do not map', () => {
    for (const name of [
      'res2d_branch2a/kernel', // stage 2 has 3 blocks
      'res4g_branch2a/kernel', // stage 4 has 6
      'res6a_branch2a/kernel',
      'res3b_branch1/kernel', // only a stage's first block has a projection
      'res2a_branch2d/kernel',
      'bn2a_branch2a/kernel', // a BatchNormalization has no kernel
      'res2a_branch2a/gamma', // a convolution has no gamma
      'fc1000/gamma',
      'conv1',
      'conv1/kernel/extra',
      'dense/kernel',
    ]) {
      expect(legacyResnet50ToKeras(name), name).toBeUndefined();
    }
  });

  test('the 320 legacy names map one-to-one onto the 320 Keras applications names', () => {
    const legacy = legacyResnet50Names();
    expect(legacy.length).toBe(320);
    const mapped = legacy.map((n) => legacyResnet50ToKeras(n));
    expect(mapped.filter((n) => n === undefined)).toEqual([]);
    expect(new Set(mapped).size).toBe(320);
    expect(new Set(mapped)).toEqual(new Set(resnet50KerasWeightNames()));
    expect(resnet50KerasWeightNames().length).toBe(320);
  });
});

describe('ResNet50 from a TF.js model', () => {
  /** A TF.js model with every legacy ResNet50 weight, each of shape [1] holding its index. */
  function tinyResnet(strideOn: '1x1' | '3x3' = '1x1', names = legacyResnet50Names()) {
    const json = {
      format: 'layers-model',
      modelTopology: resnet50Topology(strideOn),
      weightsManifest: [{ paths: ['w.bin'], weights: names.map((name) => ({ name, shape: [1], dtype: 'float32' })) }],
    };
    const data = new Float32Array(names.map((_, i) => i));
    return parseTfjsLayersModel(JSON.stringify(json), () => new Uint8Array(data.buffer), 'r/model.json');
  }

  test('every weight is renamed, keeps its data, and the topology’s facts go into the metadata', () => {
    const model = tinyResnet();
    expect(hasLegacyResnet50Names(model)).toBe(true);
    const { tensors, metadata } = resnet50FromTfjs(model, 'r/model.json');
    expect(tensors.size).toBe(320);
    const legacy = legacyResnet50Names();
    for (const [i, name] of legacy.entries()) expect(tensors.get(legacyResnet50ToKeras(name)!)!.data).toEqual(new Float32Array([i]));
    expect(metadata).toMatchObject({ architecture: 'resnet50-v1', names: 'keras-applications', batchnorm_epsilon: '0.001', input_shape: '[224,224,3]', classifier_activation: 'softmax' });
  });

  test('a ResNet with the stride on the 3×3 (v1.5) is refused, not mislabelled', () => {
    expect(() => resnet50FromTfjs(tinyResnet('3x3'), 'r/model.json')).toThrow(/layer 'res3a_branch2a' has strides \[1,1\], expected \[2,2\] for ResNet50 v1/);
    expect(() => checkResnet50V1Topology([], 'r/model.json')).toThrow(/no model topology/);
  });

  test('missing weights are reported', () => {
    const model = tinyResnet('1x1', legacyResnet50Names().filter((n) => !n.startsWith('bn5c_branch2c/')));
    expect(() => resnet50FromTfjs(model, 'r/model.json')).toThrow(/r\/model\.json: 4 ResNet50 weights are missing, e.g. conv5_block3_3_bn\/gamma/);
  });

  test('class labels: 1000 strings keyed "0".."999", or a list', () => {
    const asObject = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [String(i), `class ${i}`]));
    const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    expect(parseClassLabels(enc(asObject), 'l.json')[309]).toBe('class 309');
    expect(parseClassLabels(enc(Object.values(asObject)), 'l.json')[999]).toBe('class 999');
    expect(() => parseClassLabels(enc({ ...asObject, 5: 5 }), 'l.json')).toThrow(/l\.json: expected 1000 class names .* class 5 is not a string/);
    expect(() => parseClassLabels(enc(['a']), 'l.json')).toThrow(GraftFormatError);
  });
});
