import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { GraftFormatError } from '../../src/errors.js';
import { readTfjsLayersModelFile } from '../../src/weights/files.js';
import { batchNormEpsilon, parseTfjsLayersModel, shardPathIn } from '../../src/weights/tfjs-layers.js';
import { tinyTfjsModel } from './fixtures.js';

type ModelJson = ReturnType<typeof tinyTfjsModel>['modelJson'];

function parse(modelJson: unknown, shards: Record<string, Uint8Array>) {
  return parseTfjsLayersModel(JSON.stringify(modelJson), (p) => shards[p], 'tiny/model.json');
}

/** A deep copy of the tiny model's JSON, changed by `edit`. */
function edited(edit: (m: ModelJson) => void): ModelJson {
  const m = structuredClone(tinyTfjsModel().modelJson);
  edit(m);
  return m;
}

describe('TF.js layers model', () => {
  test('weights are sliced in manifest order across the shards of each group', () => {
    const { modelJson, shards, expected } = tinyTfjsModel();
    const model = parse(modelJson, shards);
    expect(model.weights.map((w) => [w.name, w.dtype, w.shape])).toEqual([
      ['dense/kernel', 'float32', [2, 3]],
      ['steps', 'int32', [4]],
      ['bn/gamma', 'float32', [5]],
      ['mask', 'bool', [3]],
    ]);
    expect(model.weights[0]!.data).toEqual(expected.a);
    expect(model.weights[1]!.data).toEqual(expected.b);
    expect(model.weights[2]!.data).toEqual(expected.c);
    expect(Object.is(model.weights[2]!.data[4], -0)).toBe(true);
    expect(model.weights[3]!.data).toEqual(expected.d);
    expect(model.generatedBy).toBe('keras v2.2.4-tf');
  });

  test('the topology’s layers come back with their class, name and config', () => {
    const { modelJson, shards } = tinyTfjsModel();
    const { layers } = parse(modelJson, shards);
    expect(layers.map((l) => [l.className, l.name])).toEqual([
      ['InputLayer', 'input_1'],
      ['Dense', 'dense'],
      ['BatchNormalization', 'bn'],
    ]);
    expect(layers[1]!.config.units).toBe(3);
    expect(batchNormEpsilon(layers, 'x')).toBe(0.001);
    // The TF.js-saved wrapping ({class_name, config: {layers}}) and a weights-only manifest are read too.
    const tfjsSaved = edited((m) => {
      (m as { modelTopology: unknown }).modelTopology = m.modelTopology.model_config;
    });
    expect(parse(tfjsSaved, shards).layers.length).toBe(3);
    const weightsOnly = edited((m) => {
      delete (m as { modelTopology?: unknown }).modelTopology;
    });
    expect(parse(weightsOnly, shards).layers).toEqual([]);
  });

  test('BatchNormalization layers with different epsilons are an error', () => {
    const layers = [
      { className: 'BatchNormalization', name: 'a', config: { epsilon: 0.001 } },
      { className: 'BatchNormalization', name: 'b', config: { epsilon: 1e-5 } },
    ];
    expect(() => batchNormEpsilon(layers, 'm.json')).toThrow(/m\.json: the BatchNormalization layers' epsilons must be one positive number, got \[0.001,0.00001\]/);
    expect(batchNormEpsilon([], 'm.json')).toBeUndefined();
  });

  test('a missing shard is named', () => {
    const { modelJson, shards } = tinyTfjsModel();
    const { ['group1-shard2of2.bin']: _, ...rest } = shards;
    expect(() => parse(modelJson, rest)).toThrow(GraftFormatError);
    expect(() => parse(modelJson, rest)).toThrow(/tiny\/model\.json: weight shard 'group1-shard2of2\.bin' \(weightsManifest group 1\) is missing/);
  });

  test('shards that do not hold exactly the listed weights are an error giving expected and actual sizes', () => {
    const { modelJson, shards } = tinyTfjsModel();
    const short = { ...shards, 'group1-shard2of2.bin': shards['group1-shard2of2.bin']!.subarray(1) };
    expect(() => parse(modelJson, short)).toThrow(/its 3 weights need 60 bytes but the shards hold 59 \(expected 60, actual 59\)/);
    const long = { ...shards, 'group2-shard1of1.bin': new Uint8Array(4) };
    expect(() => parse(modelJson, long)).toThrow(/weightsManifest group 2 \(group2-shard1of1\.bin\): its 1 weights need 3 bytes but the shards hold 4/);
  });

  test('unknown dtypes, quantization and other malformed manifests are refused by name', () => {
    const { shards } = tinyTfjsModel();
    const cases: Array<[(m: ModelJson) => void, RegExp]> = [
      [(m) => void ((m.weightsManifest[0]!.weights[1] as { dtype: string }).dtype = 'float64'), /weight 'steps': unknown dtype "float64" \(supported: float32, int32, bool\)/],
      [(m) => void Object.assign(m.weightsManifest[0]!.weights[0]!, { quantization: { dtype: 'uint8', scale: 0.1, min: 0 } }), /weight 'dense\/kernel' is quantized .* not supported/],
      [(m) => void (m.weightsManifest[0]!.weights[2]!.shape = [-5]), /weight 'bn\/gamma': shape must be a list of non-negative integers/],
      [(m) => void (m.weightsManifest[0]!.weights[2]!.name = 'dense/kernel'), /weight 'dense\/kernel' is listed twice/],
      [(m) => void (m.weightsManifest[0]!.paths[0] = '../../etc/passwd'), /shard path '..\/..\/etc\/passwd' must be a relative path inside the model's folder/],
      [(m) => void (m.weightsManifest[0]!.paths[0] = 'https://example.org/x.bin'), /must be a relative path/],
      [(m) => void (m.format = 'graph-model'), /format "graph-model" is not supported; Graft reads TF.js layers models/],
      [(m) => void ((m as { weightsManifest: unknown }).weightsManifest = { paths: [] }), /weightsManifest is missing or not a list/],
      [(m) => void ((m.modelTopology.model_config.config as { layers: unknown }).layers = [{ class_name: 'Dense' }]), /modelTopology layer 0 must be \{class_name, config\}/],
    ];
    for (const [edit, message] of cases) {
      expect(() => parse(edited(edit), shards)).toThrow(GraftFormatError);
      expect(() => parse(edited(edit), shards)).toThrow(message);
    }
    expect(() => parseTfjsLayersModel('{"weightsManifest": [', () => undefined, 'm.json')).toThrow(/m\.json: not valid JSON/);
  });

  test('shard paths are resolved against model.json’s folder in an archive', () => {
    expect(shardPathIn('package/ResNet50', 'group1-shard1of25.bin')).toBe('package/ResNet50/group1-shard1of25.bin');
    expect(shardPathIn('package/m', './sub//w.bin')).toBe('package/m/sub/w.bin');
    expect(shardPathIn('', 'w.bin')).toBe('w.bin');
  });

  describe('from a folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'graft-tfjs-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    test('model.json with its shards beside it; a missing shard names its file', () => {
      const { modelJson, shards, expected } = tinyTfjsModel();
      writeFileSync(join(dir, 'model.json'), JSON.stringify(modelJson));
      for (const [name, bytes] of Object.entries(shards)) writeFileSync(join(dir, name), bytes);
      const model = readTfjsLayersModelFile(join(dir, 'model.json'));
      expect(model.weights[1]!.data).toEqual(expected.b);
      rmSync(join(dir, 'group2-shard1of1.bin'));
      expect(() => readTfjsLayersModelFile(join(dir, 'model.json'))).toThrow(/model\.json: weight shard 'group2-shard1of1\.bin' \(weightsManifest group 2\) is missing/);
      expect(() => readTfjsLayersModelFile(join(dir, 'nothing.json'))).toThrow(/model\.json not found: .*nothing\.json/);
    });
  });
});
