/**
 * Classification metrics with exactly scikit-learn's definitions.
 *
 * The confusion matrix C has one row per TRUE class and one column per PREDICTED class (as
 * sklearn.metrics.confusion_matrix): C[t][p] counts the samples of class t that were predicted as p.
 * From it, for class k:
 *
 *   tp = C[k][k]            fp = (column k sum) - tp            fn = (row k sum) - tp
 *   precision = tp / (tp + fp)     recall = tp / (tp + fn)     f1 = 2 tp / (2 tp + fp + fn)
 *   support   = tp + fn  (the number of true samples of class k)
 *
 * zero_division = 0: a ratio whose denominator is 0 is reported as 0, as sklearn does with
 * `zero_division=0` (sklearn's default "warn" also returns 0, after a warning). So a class that was never
 * predicted has precision 0, a class with no true samples has recall 0, and a class with neither has F1 0.
 * The F1 form 2tp / (2tp + fp + fn) equals the harmonic mean 2PR / (P + R) whenever the latter is defined.
 *
 *   accuracy     = (sum of the diagonal) / n
 *   macro avg    = unweighted mean over ALL classes in classNames (classes with support 0 included)
 *   weighted avg = mean weighted by support (its recall therefore equals accuracy)
 */

import { ArgumentError } from '../errors.js';

export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface ClassificationReport {
  classNames: string[];
  /** One entry per class, in the order of classNames. */
  perClass: ClassMetrics[];
  accuracy: number;
  macroAvg: ClassMetrics;
  weightedAvg: ClassMetrics;
  /** Rows = true class, columns = predicted class. */
  confusion: number[][];
}

type Labels = ArrayLike<number>;

function checkLabels(fn: string, yTrue: Labels, yPred: Labels, numClasses: number): void {
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new ArgumentError(`${fn}: numClasses must be a positive integer, received ${numClasses}`);
  }
  if (yTrue.length !== yPred.length) {
    throw new ArgumentError(`${fn}: yTrue and yPred differ in length: yTrue has ${yTrue.length}, yPred has ${yPred.length}`);
  }
  for (const [name, labels] of [['yTrue', yTrue], ['yPred', yPred]] as const) {
    for (let i = 0; i < labels.length; i++) {
      const label = labels[i];
      if (!Number.isInteger(label) || label < 0 || label >= numClasses) {
        throw new ArgumentError(`${fn}: ${name}[${i}] must be an integer in [0, ${numClasses - 1}], received ${label}`);
      }
    }
  }
}

/** Counts C[true][predicted]; sklearn.metrics.confusion_matrix with labels = 0..numClasses-1. */
export function confusionMatrix(yTrue: Labels, yPred: Labels, numClasses: number): number[][] {
  checkLabels('confusionMatrix', yTrue, yPred, numClasses);
  const matrix = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < yTrue.length; i++) matrix[yTrue[i]][yPred[i]] += 1;
  return matrix;
}

const ratio = (num: number, den: number): number => (den === 0 ? 0 : num / den);

/** Per-class precision, recall, F1 and support, plus accuracy and the macro and weighted averages. */
export function classificationReport(yTrue: Labels, yPred: Labels, classNames: string[]): ClassificationReport {
  if (!Array.isArray(classNames) || classNames.length === 0) {
    throw new ArgumentError('classificationReport: classNames must be a non-empty array of strings');
  }
  checkLabels('classificationReport', yTrue, yPred, classNames.length);
  const k = classNames.length;
  const confusion = confusionMatrix(yTrue, yPred, k);
  const perClass: ClassMetrics[] = [];
  for (let c = 0; c < k; c++) {
    const tp = confusion[c][c];
    let rowSum = 0;
    let colSum = 0;
    for (let j = 0; j < k; j++) {
      rowSum += confusion[c][j];
      colSum += confusion[j][c];
    }
    const fp = colSum - tp;
    const fn = rowSum - tp;
    perClass.push({ precision: ratio(tp, tp + fp), recall: ratio(tp, tp + fn), f1: ratio(2 * tp, 2 * tp + fp + fn), support: rowSum });
  }
  const n = yTrue.length;
  let correct = 0;
  for (let c = 0; c < k; c++) correct += confusion[c][c];
  const average = (weight: (m: ClassMetrics) => number): ClassMetrics => {
    let total = 0;
    const sum = { precision: 0, recall: 0, f1: 0 };
    for (const m of perClass) {
      const w = weight(m);
      total += w;
      sum.precision += w * m.precision;
      sum.recall += w * m.recall;
      sum.f1 += w * m.f1;
    }
    return { precision: ratio(sum.precision, total), recall: ratio(sum.recall, total), f1: ratio(sum.f1, total), support: n };
  };
  return {
    classNames: [...classNames],
    perClass,
    accuracy: ratio(correct, n),
    macroAvg: average(() => 1),
    weightedAvg: average((m) => m.support),
    confusion,
  };
}

/** sklearn's classification_report text table (digits after the point, default 2). */
export function reportToText(report: ClassificationReport, digits = 2): string {
  const width = Math.max('weighted avg'.length, ...report.classNames.map((s) => s.length));
  const col = (s: string) => s.padStart(9);
  const num = (x: number) => col(x.toFixed(digits));
  const row = (name: string, m: ClassMetrics) =>
    `${name.padStart(width)}  ${num(m.precision)} ${num(m.recall)} ${num(m.f1)} ${col(String(m.support))}\n`;
  let out = `${''.padStart(width)}  ${['precision', 'recall', 'f1-score', 'support'].map(col).join(' ')}\n\n`;
  report.classNames.forEach((name, c) => (out += row(name, report.perClass[c])));
  out += '\n';
  const n = report.macroAvg.support;
  out += `${'accuracy'.padStart(width)}  ${col('')} ${col('')} ${num(report.accuracy)} ${col(String(n))}\n`;
  out += row('macro avg', report.macroAvg);
  out += row('weighted avg', report.weightedAvg);
  return out;
}

/** A GitHub-flavoured Markdown table with the same rows as the text table. */
export function reportToMarkdown(report: ClassificationReport, digits = 4): string {
  const escape = (s: string) => s.replace(/\|/g, '\\|');
  const f = (x: number) => x.toFixed(digits);
  const lines = ['| class | precision | recall | f1-score | support |', '|---|---:|---:|---:|---:|'];
  report.classNames.forEach((name, c) => {
    const m = report.perClass[c];
    lines.push(`| ${escape(name)} | ${f(m.precision)} | ${f(m.recall)} | ${f(m.f1)} | ${m.support} |`);
  });
  lines.push(`| **accuracy** |  |  | ${f(report.accuracy)} | ${report.macroAvg.support} |`);
  for (const [name, m] of [['macro avg', report.macroAvg], ['weighted avg', report.weightedAvg]] as const) {
    lines.push(`| **${name}** | ${f(m.precision)} | ${f(m.recall)} | ${f(m.f1)} | ${m.support} |`);
  }
  return lines.join('\n') + '\n';
}

/**
 * JSON in the shape of sklearn's classification_report(output_dict=True): one key per class name plus
 * "accuracy", "macro avg" and "weighted avg", with "f1-score" spelled as sklearn spells it; the
 * confusion matrix is added under "confusion_matrix".
 */
export function reportToJson(report: ClassificationReport): string {
  const entry = (m: ClassMetrics) => ({ precision: m.precision, recall: m.recall, 'f1-score': m.f1, support: m.support });
  const dict: Record<string, unknown> = {};
  report.classNames.forEach((name, c) => (dict[name] = entry(report.perClass[c])));
  dict['accuracy'] = report.accuracy;
  dict['macro avg'] = entry(report.macroAvg);
  dict['weighted avg'] = entry(report.weightedAvg);
  dict['confusion_matrix'] = report.confusion;
  return JSON.stringify(dict, null, 2);
}
