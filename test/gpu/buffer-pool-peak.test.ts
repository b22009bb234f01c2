/**
 * The buffer pool's peak counter: the most bytes handed out at once, which `resetPeak` restarts from the
 * bytes in use now. Checked against a plain replay of the same acquire/release sequence (sizes rounded
 * to their size class), on random sequences.
 */
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { useGpu } from '../util/gpu.js';
import { runtime } from '../../src/gpu/runtime.js';
import { BufferPool, sizeClass } from '../../src/gpu/buffer-pool.js';

useGpu();

/** A fresh pool on the shared device, so the tensors of other tests do not move its counters. */
function freshPool(): BufferPool {
  const rt = runtime();
  return new BufferPool(rt.device, rt.gpu.limits.maxBufferSize);
}

describe('BufferPool peak', () => {
  test('a new pool has peak 0; the peak follows acquires, not releases', () => {
    const pool = freshPool();
    try {
      expect(pool.stats().peakBytesInUse).toBe(0);
      const a = pool.acquire(1000, 'a');
      const b = pool.acquire(5000, 'b');
      const both = sizeClass(1000) + sizeClass(5000);
      expect(pool.stats().peakBytesInUse).toBe(both);
      pool.release(b);
      expect(pool.stats().bytesInUse).toBe(sizeClass(1000));
      expect(pool.stats().peakBytesInUse).toBe(both);
      pool.resetPeak();
      expect(pool.stats().peakBytesInUse).toBe(sizeClass(1000));
      const c = pool.acquire(5000, 'c'); // reused from the free list: the peak counts it all the same
      expect(pool.stats().peakBytesInUse).toBe(both);
      pool.release(a);
      pool.release(c);
    } finally {
      pool.destroy();
    }
    expect(pool.stats().peakBytesInUse).toBe(0);
  });

  test('on random acquire/release sequences the peak is the replayed maximum of bytes in use', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant('acquire' as const), bytes: fc.integer({ min: 1, max: 3 << 20 }) }),
            fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
            fc.record({ kind: fc.constant('reset' as const) }),
          ),
          { maxLength: 40 },
        ),
        (ops) => {
          const pool = freshPool();
          const held: GPUBuffer[] = [];
          let inUse = 0;
          let peak = 0;
          try {
            for (const op of ops) {
              if (op.kind === 'acquire') {
                held.push(pool.acquire(op.bytes, 'random'));
                inUse += sizeClass(op.bytes);
                peak = Math.max(peak, inUse);
              } else if (op.kind === 'release') {
                if (held.length === 0) continue;
                const [buf] = held.splice(op.pick % held.length, 1);
                pool.release(buf!);
                inUse -= buf!.size;
              } else {
                pool.resetPeak();
                peak = inUse;
              }
              const s = pool.stats();
              expect(s.bytesInUse).toBe(inUse);
              expect(s.peakBytesInUse).toBe(peak);
              expect(s.peakBytesInUse).toBeLessThanOrEqual(s.bytesAllocated);
            }
          } finally {
            pool.destroy();
          }
        },
      ),
      { numRuns: 15 },
    );
  });
});
