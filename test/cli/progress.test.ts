/** The progress bar: redrawn in place on a TTY, plain lines otherwise; rate, ETA and running metrics. */
import { describe, expect, test } from 'vitest';
import { formatDuration, ProgressBar } from '../../src/cli/progress.js';

function stream(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, isTTY, columns: 120, write: (s: string) => writes.push(s) };
}

describe('ProgressBar', () => {
  test('on a TTY: one line redrawn with \\r, a bar, images/s, ETA, then loss and accuracy', async () => {
    const out = stream(true);
    let now = 0;
    const bar = new ProgressBar(out, 'epoch 1/3', { now: () => now });
    const metrics = async () => ({ loss: 0.5, accuracy: 0.75 });
    bar.update({ phase: 'train', epoch: 0, step: 0, examples: 0, total: 100 });
    now = 2000;
    bar.update({ phase: 'train', epoch: 0, step: 1, examples: 20, total: 100, metrics });
    await Promise.resolve();
    await Promise.resolve();
    now = 4000;
    bar.update({ phase: 'train', epoch: 0, step: 2, examples: 40, total: 100, metrics });
    const last = out.writes[out.writes.length - 1]!;
    expect(last.startsWith('\r')).toBe(true);
    expect(last).toContain('epoch 1/3 training [========............] 40/100  10.0 img/s  ETA 0:06');
    expect(last).toContain('loss 0.5000  acc 0.7500');
    bar.log('epoch 1/3: done');
    expect(out.writes.slice(-2)[0]!.endsWith('\n')).toBe(true);
    expect(out.writes[out.writes.length - 1]).toBe('epoch 1/3: done\n');
  });

  test('not a TTY: no carriage returns, a line every plainEvery seconds and one at the end of a phase', () => {
    const out = stream(false);
    let now = 0;
    const bar = new ProgressBar(out, '', { now: () => now, plainEvery: 10 });
    for (let step = 0; step <= 30; step++) {
      now = step * 1000;
      bar.update({ phase: 'cache', epoch: 0, step, examples: step * 10, total: 300 });
    }
    bar.finish();
    expect(out.writes.every((w) => !w.includes('\r') && w.endsWith('\n'))).toBe(true);
    // At 10 s, 20 s and 30 s; the line at 30 s is the phase's last, so finish() does not print it twice.
    expect(out.writes).toHaveLength(3);
    expect(out.writes[2]).toBe('caching features 300/300  10.0 img/s  0:30 total\n');
    // A phase whose last event came between scheduled lines gets its final line from finish().
    now = 40_000;
    bar.update({ phase: 'train', epoch: 0, step: 0, examples: 0, total: 10 });
    now = 45_000;
    bar.update({ phase: 'train', epoch: 0, step: 1, examples: 10, total: 10 });
    bar.finish();
    expect(out.writes).toHaveLength(4);
    expect(out.writes[3]).toBe('training 10/10  2.0 img/s  0:05 total\n');
  });

  test('formatDuration', () => {
    expect(formatDuration(5)).toBe('0:05');
    expect(formatDuration(3725)).toBe('1:02:05');
    expect(formatDuration(NaN)).toBe('--:--');
  });
});
