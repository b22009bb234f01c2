import { describe, expect, test } from 'vitest';
import { heldOutDomain, sampleDomain } from '../../src/data/domain-spec.js';
import { ArgumentError } from '../../src/errors.js';

/** 50 one-pixel "images" whose value is their index, so a subset tells which images it holds. */
const set = { images: Float32Array.from({ length: 50 }, (_, i) => i), labels: Int32Array.from({ length: 50 }, (_, i) => i % 10), count: 50, imageShape: [1, 1, 1] as [number, number, number], classNames: ['a'] };

describe('sampleDomain and heldOutDomain', () => {
  test('the held-out images are disjoint from the sample, distinct, and keep their labels', () => {
    for (const seed of [1, 2, 7]) {
      const sample = sampleDomain(set, 20, seed);
      const held = heldOutDomain(set, 20, 25, seed);
      expect(held.count).toBe(25);
      const inSample = new Set(sample.images);
      const heldIds = Array.from(held.images);
      expect(heldIds.filter((v) => inSample.has(v))).toEqual([]);
      expect(new Set(heldIds).size).toBe(25);
      heldIds.forEach((v, i) => expect(held.labels[i]).toBe(v % 10));
      // Another seed draws another split.
      expect(Array.from(heldOutDomain(set, 20, 25, seed + 100).images)).not.toEqual(heldIds);
    }
  });

  test('asking for more than the sample leaves is refused, naming the counts', () => {
    expect(() => heldOutDomain(set, 40, 11, 1)).toThrow(ArgumentError);
    expect(() => heldOutDomain(set, 40, 11, 1)).toThrow(/50 images; 40 sampled leave 10, fewer than the 11/);
    expect(() => heldOutDomain(set, 40, 0, 1)).toThrow(/count must be a positive integer/);
    expect(() => heldOutDomain(set, 40, 11, 1, 'graft adapt --validation')).toThrow(/^graft adapt --validation: the set has 50 images/);
    expect(heldOutDomain(set, 40, 10, 1).count).toBe(10);
  });
});
