/**
 * Progress for long steps (caching features, training, validation): a step counter, images per second, the
 * ETA, and the running loss and accuracy while training.
 *
 * On a terminal it is one line redrawn in place ("\r", at most 10 times a second) with a bar; when stdout is
 * not a TTY (a log file, CI) it degrades to plain lines, one every `plainEvery` seconds and one at the end of
 * each phase, so logs stay readable. Loss and accuracy cost a small GPU readback, so they are refreshed at
 * most once a second (`ProgressEvent.metrics`).
 */
import type { ProgressEvent } from '../train/fit.js';

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Seconds between plain lines when not on a TTY. Default 10. */
  plainEvery?: number;
  /** Clock in ms (tests pass a fake). */
  now?: () => number;
}

const PHASE_LABEL: Record<ProgressEvent['phase'], string> = { cache: 'caching features', train: 'training', validate: 'validating' };

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const two = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
}

export class ProgressBar {
  private readonly tty: boolean;
  private readonly plainEvery: number;
  private readonly now: () => number;
  private key = '';
  private started = 0;
  private lastDraw = 0;
  private lastMetricsAt = -Infinity;
  private metricsText = '';
  private lastLine = '';
  private lastWritten = '';
  private open = false;

  constructor(
    private readonly stream: ProgressStream,
    /** Shown before the phase, e.g. "epoch 3/10". */
    private prefix = '',
    options: ProgressOptions = {},
  ) {
    this.tty = stream.isTTY === true;
    this.plainEvery = options.plainEvery ?? 10;
    this.now = options.now ?? (() => performance.now());
  }

  setPrefix(prefix: string): void {
    this.prefix = prefix;
  }

  update(e: ProgressEvent): void {
    const key = `${e.phase}:${e.epoch}`;
    const t = this.now();
    if (key !== this.key) {
      this.finish();
      this.key = key;
      this.started = t;
      this.lastDraw = t;
      this.metricsText = '';
      this.lastMetricsAt = -Infinity;
    }
    if (e.metrics && t - this.lastMetricsAt >= 1000) {
      this.lastMetricsAt = t;
      e.metrics().then(
        (m) => (this.metricsText = `  loss ${m.loss.toFixed(4)}  acc ${m.accuracy.toFixed(4)}`),
        () => undefined,
      );
    }
    const complete = e.total !== undefined && e.examples >= e.total;
    this.lastLine = this.line(e, t);
    this.open = true;
    if (this.tty) {
      if (t - this.lastDraw >= 100 || complete || e.step <= 1) {
        this.lastDraw = t;
        const width = Math.max(40, (this.stream.columns ?? 100) - 1);
        this.stream.write(`\r${this.lastLine.slice(0, width).padEnd(width)}`);
      }
    } else if (t - this.lastDraw >= this.plainEvery * 1000) {
      this.lastDraw = t;
      this.lastWritten = this.lastLine;
      this.stream.write(`${this.lastLine}\n`);
    }
  }

  /** Ends the current phase's line (a TTY line is kept; plain output gets its final line). */
  finish(): void {
    if (!this.open) return;
    this.open = false;
    const width = Math.max(40, (this.stream.columns ?? 100) - 1);
    if (this.tty) this.stream.write(`\r${this.lastLine.slice(0, width).padEnd(width)}\n`);
    else if (this.lastLine !== this.lastWritten) this.stream.write(`${this.lastLine}\n`); // not twice in a log
  }

  /** Prints a line of its own (an epoch summary), after ending the current phase's line. */
  log(text: string): void {
    this.finish();
    this.stream.write(`${text}\n`);
  }

  private line(e: ProgressEvent, t: number): string {
    const elapsed = (t - this.started) / 1000;
    const rate = elapsed > 0 ? e.examples / elapsed : 0;
    const parts = [this.prefix, PHASE_LABEL[e.phase]].filter(Boolean).join(' ');
    let counter: string;
    if (e.total !== undefined && e.total > 0) {
      const frac = Math.min(1, e.examples / e.total);
      const bar = this.tty ? ` [${'='.repeat(Math.round(frac * 20)).padEnd(20, '.')}]` : '';
      const eta = rate > 0 ? (e.total - e.examples) / rate : NaN;
      counter = `${bar} ${e.examples}/${e.total}  ${rate.toFixed(1)} img/s  ${e.examples >= e.total ? `${formatDuration(elapsed)} total` : `ETA ${formatDuration(eta)}`}`;
    } else {
      counter = ` ${e.examples} images (step ${e.step})  ${rate.toFixed(1)} img/s  ${formatDuration(elapsed)}`;
    }
    return `${parts}${counter}${e.phase === 'train' ? this.metricsText : ''}`;
  }
}
