/** Small weight files built in memory for the weights tests. */

/** An uncompressed tar archive of the given files (ustar headers, names under 100 characters). */
export function tarOf(files: Record<string, Uint8Array | string>): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const [name, content] of Object.entries(files)) {
    const body = typeof content === 'string' ? new TextEncoder().encode(content) : content;
    const header = new Uint8Array(512);
    header.set(new TextEncoder().encode(name), 0);
    header.set(new TextEncoder().encode(body.length.toString(8).padStart(11, '0')), 124);
    header[156] = 0x30; // regular file
    const padded = new Uint8Array(Math.ceil(body.length / 512) * 512);
    padded.set(body);
    blocks.push(header, padded);
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of blocks) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

export function concat(...parts: ArrayBufferView[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), at);
    at += p.byteLength;
  }
  return out;
}

/**
 * A TF.js layers model with three weights in one group of two shards (the int32 weight straddles the cut),
 * and a bool weight in a second group. Returns model.json's object and the shard bytes by file name.
 */
export function tinyTfjsModel() {
  const a = new Float32Array([1, -2, 3.5, 4, 5, 6]); // [2, 3], bytes 0..24
  const b = new Int32Array([7, -8, 9, 2 ** 31 - 1]); // [4], bytes 24..40: crosses the 32-byte shard boundary
  const c = new Float32Array([0.25, 0.5, 0.75, 1, -0]); // [5], bytes 40..60
  const d = new Uint8Array([1, 0, 1]); // bool [3], group 2
  const group1 = concat(a, b, c);
  const shards: Record<string, Uint8Array> = {
    'group1-shard1of2.bin': group1.slice(0, 32),
    'group1-shard2of2.bin': group1.slice(32),
    'group2-shard1of1.bin': d.slice(),
  };
  const modelJson = {
    format: 'layers-model',
    generatedBy: 'keras v2.2.4-tf',
    convertedBy: 'test',
    modelTopology: {
      keras_version: '2.2.4-tf',
      model_config: {
        class_name: 'Model',
        config: {
          name: 'tiny',
          layers: [
            { name: 'input_1', class_name: 'InputLayer', config: { name: 'input_1', batch_input_shape: [null, 2] }, inbound_nodes: [] },
            { name: 'dense', class_name: 'Dense', config: { name: 'dense', units: 3 }, inbound_nodes: [] },
            { name: 'bn', class_name: 'BatchNormalization', config: { name: 'bn', epsilon: 0.001 }, inbound_nodes: [] },
          ],
        },
      },
    },
    weightsManifest: [
      {
        paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'],
        weights: [
          { name: 'dense/kernel', shape: [2, 3], dtype: 'float32' },
          { name: 'steps', shape: [4], dtype: 'int32' },
          { name: 'bn/gamma', shape: [5], dtype: 'float32' },
        ],
      },
      { paths: ['group2-shard1of1.bin'], weights: [{ name: 'mask', shape: [3], dtype: 'bool' }] },
    ],
  };
  return { modelJson, shards, expected: { a, b, c, d } };
}

/** Bottleneck blocks per stage of ResNet50, written out here rather than imported, so the tests stay independent. */
const STAGES: Array<[number, number]> = [
  [2, 3],
  [3, 4],
  [4, 6],
  [5, 3],
];

/** The legacy Keras 2.2.4 ResNet50 weight names, generated from the legacy naming scheme. */
export function legacyResnet50Names(): string[] {
  const names = ['conv1/kernel', 'conv1/bias', 'bn_conv1/gamma', 'bn_conv1/beta', 'bn_conv1/moving_mean', 'bn_conv1/moving_variance'];
  for (const [stage, blocks] of STAGES) {
    for (let i = 0; i < blocks; i++) {
      const letter = 'abcdef'[i]!;
      for (const branch of i === 0 ? ['2a', '2b', '2c', '1'] : ['2a', '2b', '2c']) {
        names.push(`res${stage}${letter}_branch${branch}/kernel`, `res${stage}${letter}_branch${branch}/bias`);
        for (const w of ['gamma', 'beta', 'moving_mean', 'moving_variance']) names.push(`bn${stage}${letter}_branch${branch}/${w}`);
      }
    }
  }
  names.push('fc1000/kernel', 'fc1000/bias');
  return names;
}

/** A topology with ResNet50's strided convolutions: on the first 1×1 (Keras, v1) or on the 3×3 (v1.5). */
export function resnet50Topology(strideOn: '1x1' | '3x3' = '1x1') {
  const layers: Array<Record<string, unknown>> = [
    { name: 'input_1', class_name: 'InputLayer', config: { name: 'input_1', batch_input_shape: [null, 224, 224, 3] } },
    { name: 'conv1', class_name: 'Conv2D', config: { name: 'conv1', strides: [2, 2] } },
    { name: 'bn_conv1', class_name: 'BatchNormalization', config: { name: 'bn_conv1', epsilon: 0.001 } },
  ];
  for (const [stage] of STAGES) {
    const s = stage === 2 ? [1, 1] : [2, 2];
    const conv = (name: string, strides: number[]) => layers.push({ name, class_name: 'Conv2D', config: { name, strides } });
    conv(`res${stage}a_branch2a`, strideOn === '1x1' ? s : [1, 1]);
    conv(`res${stage}a_branch2b`, strideOn === '1x1' ? [1, 1] : s);
    conv(`res${stage}a_branch1`, s);
  }
  layers.push({ name: 'fc1000', class_name: 'Dense', config: { name: 'fc1000', activation: 'softmax' } });
  return { keras_version: '2.2.4-tf', model_config: { class_name: 'Model', config: { name: 'resnet50', layers } } };
}
