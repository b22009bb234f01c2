import { describe, expect, test } from 'vitest';
import { useGpu } from '../util/gpu.js';
import { expectClose, randomData } from '../util/check.js';
import { tensor } from '../../src/tensor/create.js';
import { memory } from '../../src/tensor/memory.js';
import { tidy } from '../../src/tensor/scope.js';
import { backward, sum } from '../../src/ops/index.js';
import { noGrad } from '../../src/autograd/tape.js';
import { Model, Sequential, input } from '../../src/nn/model.js';
import { Add, Dense, Flatten } from '../../src/nn/layers/core.js';
import { ArgumentError, ShapeError } from '../../src/errors.js';

useGpu();

/** x → d1 → (d2a, d2b) → add → head: a residual-shaped graph. */
function residualModel() {
  const x = input([6], 'x');
  const h = new Dense({ units: 4, activation: 'relu', name: 'd1' }).apply(x);
  const a = new Dense({ units: 4, name: 'd2a' }).apply(h);
  const b = new Dense({ units: 4, activation: 'tanh', name: 'd2b' }).apply(h);
  const s = new Add({ name: 'add' }).apply([a, b]);
  const y = new Dense({ units: 3, name: 'head' }).apply(s);
  return new Model({ inputs: x, outputs: y, name: 'res' });
}

describe('functional models', () => {
  test('layers come in Keras order: input first, then by depth', () => {
    const m = residualModel();
    expect(m.layers.map((l) => l.name)).toEqual(['x', 'd1', 'd2a', 'd2b', 'add', 'head']);
    expect(m.getLayer('d2b').className).toBe('Dense');
    expect(() => m.getLayer('d3')).toThrow(ArgumentError);
    expect(() => m.getLayer('d2')).toThrow(/no layer named 'd2' \(similar: d2a, d2b\)/);
    m.dispose();
  });

  test('forward matches the same layers called eagerly, and frees intermediates', async () => {
    const m = residualModel();
    const data = randomData(5 * 6, 3);
    const before = memory();
    // Under noGrad nothing is taped, so only the output survives the forward pass.
    const y = noGrad(() => tidy(() => m.call(tensor(data, [5, 6]))));
    expect(memory().tensors).toBe(before.tensors + 1);
    const eager = tidy(() => {
      const x = tensor(data, [5, 6]);
      const h = m.getLayer('d1').call(x);
      return m.getLayer('head').call(m.getLayer('add').call([m.getLayer('d2a').call(h), m.getLayer('d2b').call(h)]));
    });
    expectClose(await y.data(), await eager.data(), { rtol: 1e-6 });
    y.dispose();
    eager.dispose();
    m.dispose();
  });

  test('summary counts total, trainable and non-trainable parameters', () => {
    const m = residualModel();
    const s = m.summary();
    const total = (6 * 4 + 4) + 2 * (4 * 4 + 4) + (4 * 3 + 3);
    expect(m.countParams()).toBe(total);
    expect(s).toContain('Model: "res"');
    expect(s).toContain('d2a (Dense)');
    expect(s).toContain('(None, 3)');
    expect(s).toContain(`Total params: ${total}`);
    m.getLayer('d1').trainable = false;
    expect(m.summary()).toContain(`Trainable params: ${total - 28}`);
    expect(m.summary()).toContain('Non-trainable params: 28');
    m.dispose();
  });

  test('trainable propagates to sublayers and takes effect at the next step', async () => {
    const m = residualModel();
    const x = tensor(randomData(12, 1), [2, 6]).keep();
    const step = () => tidy(() => backward(sum(m.call(x, { training: true }))));
    m.trainable = false;
    expect(m.layers.every((l) => !l.trainable)).toBe(true);
    expect(m.trainableWeights.length).toBe(0);
    m.getLayer('head').trainable = true;
    step();
    expect(m.getLayer('head').getWeight('kernel').value.grad).not.toBeNull();
    expect(m.getLayer('d1').getWeight('kernel').value.grad).toBeNull();
    expect(m.trainableParameters().map((t) => t.name)).toEqual(['head/kernel', 'head/bias']);
    x.dispose();
    m.dispose();
  });

  test('truncate gives a feature extractor that shares weights', async () => {
    const m = residualModel();
    const f = m.truncate('add');
    expect(f.outputs[0]!.shape).toEqual([4]);
    expect(f.layers.map((l) => l.name)).toEqual(['x', 'd1', 'd2a', 'd2b', 'add']);
    expect(f.getLayer('d1')).toBe(m.getLayer('d1'));
    const out = tidy(() => f.call(tensor(randomData(6, 2), [1, 6])));
    expect(out.shape).toEqual([1, 4]);
    out.dispose();
    m.dispose();
  });

  test('bad inputs name the model and the expected shape', () => {
    const m = residualModel();
    tidy(() => {
      expect(() => m.call(tensor(new Float32Array(10), [2, 5]))).toThrow(/res: input 0 must have shape \[batch, 6\], got \[batch, 5\]/);
    });
    expect(() => new Add().apply([input([3]), input([4])])).toThrow(ShapeError);
    m.dispose();
  });
});

describe('Sequential', () => {
  test('stacks layers from an input shape', async () => {
    const s = new Sequential([new Flatten(), new Dense({ units: 5, activation: 'softmax' })], { inputShape: [2, 3, 1], name: 'seq' });
    expect(s.layers.length).toBe(3);
    const y = tidy(() => s.call(tensor(randomData(12, 4), [2, 2, 3, 1])));
    const d = await y.data();
    expect(d[0]! + d[1]! + d[2]! + d[3]! + d[4]!).toBeCloseTo(1, 5);
    y.dispose();
    s.dispose();
  });
});
