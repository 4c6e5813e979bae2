import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OffsetTracker, committableOffset } from './offsets.js';

/** Increasing offsets with holes (compaction, transaction markers). */
const offsetsArb = fc.uniqueArray(fc.integer({ min: 0, max: 500 }), { minLength: 1, maxLength: 60 }).map((a) => a.sort((x, y) => x - y));

describe('committableOffset', () => {
  it('is the offset after the longest fully-done prefix', () => {
    expect(committableOffset([3, 4, 7, 9], new Set([3, 4, 9]))).toBe(5);
    expect(committableOffset([3, 4, 7], new Set([4]))).toBeNull();
    expect(committableOffset([3, 4, 7], new Set([3, 4, 7]))).toBe(8);
  });
});

describe('OffsetTracker (properties)', () => {
  it('never commits past an offset that is not done, and reaches the end once all are done', () => {
    fc.assert(
      fc.property(offsetsArb, fc.infiniteStream(fc.nat()), (received, picks) => {
        const t = new OffsetTracker();
        for (const o of received) expect(t.receive('t', 0, o)).toBe(true);
        const remaining = [...received];
        const done = new Set<number>();
        let lastCommitted = -1;
        const it = picks[Symbol.iterator]();
        while (remaining.length > 0) {
          const o = remaining.splice(it.next().value % remaining.length, 1)[0]!;
          done.add(o);
          t.markDone('t', 0, o);
          const c = t.committable();
          const expected = committableOffset(received, done);
          if (expected === null || expected <= lastCommitted) expect(c).toEqual([]);
          else {
            expect(c).toEqual([{ topic: 't', partition: 0, offset: expected }]);
            // Every received offset below the committed one is done.
            for (const r of received) if (r < expected) expect(done.has(r)).toBe(true);
            t.markCommitted(c);
            lastCommitted = expected;
          }
        }
        expect(lastCommitted).toBe(received[received.length - 1]! + 1);
        expect(t.outstanding()).toBe(0);
      }),
    );
  });

  it('is monotonic and ignores redeliveries and unknown offsets', () => {
    fc.assert(
      fc.property(offsetsArb, fc.array(fc.integer({ min: 0, max: 600 })), (received, noise) => {
        const t = new OffsetTracker();
        for (const o of received) t.receive('t', 1, o);
        for (const o of received) expect(t.receive('t', 1, o)).toBe(false);
        for (const o of noise) if (!received.includes(o)) t.markDone('t', 1, o);
        expect(t.committable()).toEqual([]);
        let prev = -1;
        for (const o of received) {
          t.markDone('t', 1, o);
          const [c] = t.committable();
          expect(c!.offset).toBeGreaterThan(prev);
          prev = c!.offset;
          t.markCommitted([c!]);
        }
      }),
    );
  });

  it('keeps partitions independent and forgets revoked ones', () => {
    const t = new OffsetTracker();
    t.receive('a', 0, 0);
    t.receive('a', 1, 10);
    t.markDone('a', 1, 10);
    expect(t.committable()).toEqual([{ topic: 'a', partition: 1, offset: 11 }]);
    expect(t.committable((_, p) => p === 0)).toEqual([]);
    t.forget('a', 0);
    t.markDone('a', 0, 0);
    expect(t.committable().map((c) => c.partition)).toEqual([1]);
    expect(t.seen('a', 1, 5)).toBe(true);
    expect(() => t.receive('a', 1, -1)).toThrow(RangeError);
  });
});
