import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ArgumentError } from '../../src/errors.js';
import { classificationReport, confusionMatrix, reportToJson, reportToMarkdown, reportToText } from '../../src/report/metrics.js';

describe('confusionMatrix', () => {
  it('puts true classes on rows and predictions on columns (sklearn docs example)', () => {
    // sklearn.metrics.confusion_matrix([2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2]) from sklearn's docs.
    expect(confusionMatrix([2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2], 3)).toEqual([
      [2, 0, 0],
      [0, 0, 1],
      [1, 0, 2],
    ]);
  });

  it('validates lengths and label range, naming the argument', () => {
    expect(() => confusionMatrix([0, 1], [0], 2)).toThrow(ArgumentError);
    expect(() => confusionMatrix([0, 1], [0], 2)).toThrow(/yTrue and yPred differ in length/);
    expect(() => confusionMatrix([0, 2], [0, 1], 2)).toThrow(/yTrue\[1\]/);
    expect(() => confusionMatrix([0, 1], [0, -1], 2)).toThrow(/yPred\[1\]/);
    expect(() => confusionMatrix([0, 1], [0, 0.5], 2)).toThrow(/yPred\[1\]/);
    expect(() => confusionMatrix([0], [0], 0)).toThrow(/numClasses/);
  });
});

describe('classificationReport', () => {
  // sklearn's documented example: classification_report([0, 1, 2, 2, 2], [0, 0, 2, 2, 1]).
  const yTrue = [0, 1, 2, 2, 2];
  const yPred = [0, 0, 2, 2, 1];
  const names = ['class 0', 'class 1', 'class 2'];

  it('matches hand-computed per-class values and averages', () => {
    const r = classificationReport(yTrue, yPred, names);
    // class 0: tp 1, fp 1, fn 0. class 1: tp 0, fp 1, fn 1. class 2: tp 2, fp 0, fn 1.
    const expected = [
      { precision: 1 / 2, recall: 1, f1: (2 * 1) / (2 + 1 + 0), support: 1 },
      { precision: 0, recall: 0, f1: 0, support: 1 },
      { precision: 1, recall: 2 / 3, f1: (2 * 2) / (4 + 0 + 1), support: 3 },
    ];
    r.perClass.forEach((m, c) => {
      for (const key of ['precision', 'recall', 'f1', 'support'] as const) expect(m[key]).toBeCloseTo(expected[c][key], 12);
    });
    expect(r.accuracy).toBeCloseTo(3 / 5, 12);
    expect(r.macroAvg.precision).toBeCloseTo((0.5 + 0 + 1) / 3, 12);
    expect(r.macroAvg.recall).toBeCloseTo((1 + 0 + 2 / 3) / 3, 12);
    expect(r.macroAvg.f1).toBeCloseTo((2 / 3 + 0 + 0.8) / 3, 12);
    expect(r.weightedAvg.precision).toBeCloseTo((0.5 * 1 + 0 * 1 + 1 * 3) / 5, 12);
    expect(r.weightedAvg.f1).toBeCloseTo(((2 / 3) * 1 + 0 + 0.8 * 3) / 5, 12);
  });

  it('prints the same text table as sklearn', () => {
    const sklearnOutput = [
      '              precision    recall  f1-score   support',
      '',
      '     class 0       0.50      1.00      0.67         1',
      '     class 1       0.00      0.00      0.00         1',
      '     class 2       1.00      0.67      0.80         3',
      '',
      '    accuracy                           0.60         5',
      '   macro avg       0.50      0.56      0.49         5',
      'weighted avg       0.70      0.60      0.61         5',
      '',
    ].join('\n');
    expect(reportToText(classificationReport(yTrue, yPred, names))).toBe(sklearnOutput);
  });

  it('reports 0 for ill-defined ratios (zero_division=0)', () => {
    // Class 1 is never predicted (precision 0/0), class 2 never occurs (recall 0/0, support 0).
    const r = classificationReport([0, 0, 1, 1], [0, 0, 0, 0], ['a', 'b', 'c']);
    expect(r.perClass[1]).toEqual({ precision: 0, recall: 0, f1: 0, support: 2 });
    expect(r.perClass[2]).toEqual({ precision: 0, recall: 0, f1: 0, support: 0 });
    expect(r.perClass[0].precision).toBeCloseTo(0.5, 12);
    // The macro average still counts the empty class.
    expect(r.macroAvg.recall).toBeCloseTo(1 / 3, 12);
  });

  it('formats Markdown and sklearn-shaped JSON', () => {
    const r = classificationReport(yTrue, yPred, names);
    const md = reportToMarkdown(r);
    expect(md).toContain('| class 2 | 1.0000 | 0.6667 | 0.8000 | 3 |');
    expect(md).toContain('| **accuracy** |  |  | 0.6000 | 5 |');
    const json = JSON.parse(reportToJson(r));
    expect(json['class 0']['f1-score']).toBeCloseTo(2 / 3, 12);
    expect(json.accuracy).toBeCloseTo(0.6, 12);
    expect(json['weighted avg'].support).toBe(5);
    expect(json.confusion_matrix).toEqual(r.confusion);
  });

  it('validates classNames', () => {
    expect(() => classificationReport([0], [0], [])).toThrow(/classNames/);
    expect(() => classificationReport([0, 3], [0, 1], ['a', 'b'])).toThrow(/yTrue\[1\]/);
  });

  const labelsArb = fc.integer({ min: 1, max: 6 }).chain((k) =>
    fc.integer({ min: 1, max: 300 }).chain((n) =>
      fc.tuple(fc.constant(k), fc.array(fc.integer({ min: 0, max: k - 1 }), { minLength: n, maxLength: n }), fc.array(fc.integer({ min: 0, max: k - 1 }), { minLength: n, maxLength: n })),
    ),
  );

  it('property: matrix sums to n, weighted recall = accuracy, macro F1 = mean of F1s, per-class values follow the definitions', () => {
    fc.assert(
      fc.property(labelsArb, ([k, yt, yp]) => {
        const names = Array.from({ length: k }, (_, i) => `c${i}`);
        const r = classificationReport(yt, yp, names);
        expect(r.confusion.flat().reduce((a, b) => a + b, 0)).toBe(yt.length);
        expect(r.weightedAvg.recall).toBeCloseTo(r.accuracy, 12);
        expect(r.macroAvg.f1).toBeCloseTo(r.perClass.reduce((s, m) => s + m.f1, 0) / k, 12);
        // Counted straight from the label arrays, independent of the matrix.
        for (let c = 0; c < k; c++) {
          let tp = 0, fp = 0, fn = 0;
          for (let i = 0; i < yt.length; i++) {
            if (yt[i] === c && yp[i] === c) tp++;
            else if (yp[i] === c) fp++;
            else if (yt[i] === c) fn++;
          }
          const p = tp + fp === 0 ? 0 : tp / (tp + fp);
          const rc = tp + fn === 0 ? 0 : tp / (tp + fn);
          const f1 = p + rc === 0 ? 0 : (2 * p * rc) / (p + rc);
          expect(r.perClass[c].precision).toBeCloseTo(p, 12);
          expect(r.perClass[c].recall).toBeCloseTo(rc, 12);
          expect(r.perClass[c].f1).toBeCloseTo(f1, 12);
          expect(r.perClass[c].support).toBe(tp + fn);
        }
      }),
      { numRuns: 25 },
    );
  });
});
