/**
 * The report of a training or evaluation run, written into its run folder:
 *
 *   report.json            accuracy, loss, the classification report (sklearn's shape), the confusion matrix,
 *                          the history, the timings and the command that made it
 *   report.md              the same for people: a summary table, the classification report, the matrix
 *   history.png            accuracy and loss per epoch, train vs validation (when there is a history)
 *   confusion-matrix.png   the confusion matrix
 *
 * Every file is written atomically (temp file, then rename), so a run folder never holds half a report.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../weights/files.js';
import type { History, Predictions } from '../train/fit.js';
import { argmaxRows } from '../train/batches.js';
import { classificationReport, reportToJson, reportToMarkdown } from './metrics.js';
import { plotConfusionMatrix, plotTrainingHistory } from './plots.js';

export interface RunReportInput {
  title: string;
  classNames: string[];
  /** Predictions on the evaluation data (validation or test), with the true labels. */
  predictions: Predictions;
  /** Mean cross-entropy on the evaluation data. */
  loss: number;
  /** What the evaluation data was, e.g. "validation: ../data/val (153 images)". */
  evaluatedOn: string;
  history?: History;
  /** Epoch at which fine-tuning began, marked in the Markdown. */
  fineTuneFrom?: number;
  command: string;
  /** Named durations in seconds, e.g. { caching: 81.2, head: 12.3 }. */
  timings?: Record<string, number>;
  /** Extra key facts shown in the summary (base, image size, …). */
  facts?: Record<string, string | number>;
}

export interface RunReportFiles {
  /** The accuracy the report states. */
  accuracy: number;
  json: string;
  markdown: string;
  history: string | null;
  confusion: string;
}

const text = (s: string) => new TextEncoder().encode(s);

export function writeRunReport(dir: string, r: RunReportInput): RunReportFiles {
  const predicted = argmaxRows(r.predictions.probabilities, r.predictions.classes);
  const report = classificationReport(r.predictions.labels, predicted, r.classNames);
  const files: RunReportFiles = {
    accuracy: report.accuracy,
    json: join(dir, 'report.json'),
    markdown: join(dir, 'report.md'),
    history: r.history && r.history.loss.length > 0 ? join(dir, 'history.png') : null,
    confusion: join(dir, 'confusion-matrix.png'),
  };
  const json = {
    title: r.title,
    command: r.command,
    evaluatedOn: r.evaluatedOn,
    accuracy: report.accuracy,
    loss: r.loss,
    examples: r.predictions.count,
    classNames: r.classNames,
    classificationReport: JSON.parse(reportToJson(report)) as unknown,
    confusionMatrix: report.confusion,
    history: r.history ?? null,
    fineTuneFrom: r.fineTuneFrom ?? null,
    timings: r.timings ?? {},
    facts: r.facts ?? {},
  };
  writeFileAtomic(files.json, text(JSON.stringify(json, null, 2) + '\n'));
  writeFileAtomic(files.markdown, text(markdown(r, report.accuracy, reportToMarkdown(report), report.confusion, files)));
  if (files.history) {
    const marker = r.fineTuneFrom !== undefined ? { at: r.fineTuneFrom - 1, label: 'start fine-tuning' } : undefined;
    writeFileAtomic(files.history, plotTrainingHistory(r.history!, { title: r.title, ...(marker ? { marker } : {}) }));
  }
  writeFileAtomic(files.confusion, plotConfusionMatrix(report.confusion, r.classNames, { title: 'Confusion matrix' }));
  return files;
}

function markdown(r: RunReportInput, accuracy: number, table: string, confusion: number[][], files: RunReportFiles): string {
  const lines = [`# ${r.title}`, '', `Command: \`${r.command}\``, '', '| | |', '|---|---|'];
  lines.push(`| evaluated on | ${r.evaluatedOn} |`, `| accuracy | ${accuracy.toFixed(4)} |`, `| loss | ${r.loss.toFixed(4)} |`);
  for (const [k, v] of Object.entries(r.facts ?? {})) lines.push(`| ${k} | ${v} |`);
  for (const [k, v] of Object.entries(r.timings ?? {})) lines.push(`| time: ${k} | ${v.toFixed(1)} s |`);
  lines.push('', '## Classification report', '', table, '## Confusion matrix', '', 'Rows: true class; columns: predicted class.', '');
  lines.push(`| | ${r.classNames.join(' | ')} |`, `|---|${r.classNames.map(() => '---:').join('|')}|`);
  confusion.forEach((row, i) => lines.push(`| **${r.classNames[i]}** | ${row.join(' | ')} |`));
  lines.push('', '![confusion matrix](confusion-matrix.png)', '');
  const h = r.history;
  if (h && h.loss.length > 0) {
    lines.push('## History', '');
    if (r.fineTuneFrom !== undefined) lines.push(`Fine-tuning began at epoch ${r.fineTuneFrom}.`, '');
    const hasVal = h.val_loss.length === h.loss.length;
    lines.push(`| epoch | loss | accuracy |${hasVal ? ' val_loss | val_accuracy |' : ''}`, `|---:|---:|---:|${hasVal ? '---:|---:|' : ''}`);
    h.epoch.forEach((e, i) => {
      const val = hasVal ? ` ${h.val_loss[i]!.toFixed(4)} | ${h.val_accuracy[i]!.toFixed(4)} |` : '';
      lines.push(`| ${e}${r.fineTuneFrom !== undefined && e >= r.fineTuneFrom ? ' (ft)' : ''} | ${h.loss[i]!.toFixed(4)} | ${h.accuracy[i]!.toFixed(4)} |${val}`);
    });
    lines.push('', `![training history](${files.history ? 'history.png' : ''})`, '');
  }
  return lines.join('\n');
}
