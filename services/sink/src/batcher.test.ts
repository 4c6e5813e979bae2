import { describe, expect, it } from 'vitest';
import { Batcher, offsetRuns, type BufferedRow } from './batcher.js';

const row = (offset: number, partition = 0, topic = 't'): BufferedRow => ({ topic, partition, offset, eventId: `e${offset}`, line: `{"o":${offset}}` });

describe('Batcher', () => {
  it('is due on size or on the age of its oldest row, whichever comes first', () => {
    const b = new Batcher('jobs', { maxRows: 3, flushMs: 100 });
    expect(b.due(0)).toBeNull();
    b.add(row(0), 1_000);
    b.add(row(1), 1_050);
    expect(b.due(1_099)).toBeNull();
    expect(b.msUntilDue(1_040)).toBe(60);
    expect(b.due(1_100)).toBe('time');
    b.add(row(2), 1_060);
    expect(b.due(1_061)).toBe('size');
    expect(b.full).toBe(true);
  });

  it('drains at most maxRows oldest-first and restarts the clock for the rest', () => {
    const b = new Batcher('jobs', { maxRows: 2, flushMs: 100 });
    for (let i = 0; i < 5; i++) b.add(row(i), 0);
    expect(b.drain(50)!.rows.map((r) => r.offset)).toEqual([0, 1]);
    expect(b.due(149)).toBe('size');
    expect(b.drain(50)!.rows.map((r) => r.offset)).toEqual([2, 3]);
    expect(b.due(149)).toBeNull();
    expect(b.due(150)).toBe('time');
    expect(b.drain(150)!.table).toBe('jobs');
    expect(b.drain(150)).toBeNull();
  });

  it('drops the rows of a revoked partition', () => {
    const b = new Batcher('jobs', { maxRows: 10, flushMs: 100 });
    b.add(row(0, 0), 0);
    b.add(row(0, 1), 0);
    expect(b.dropPartition('t', 0)).toBe(1);
    expect(b.drain(0)!.rows).toEqual([row(0, 1)]);
  });
});

describe('offsetRuns', () => {
  it('groups rows into contiguous runs per topic-partition', () => {
    expect(offsetRuns([row(5), row(3), row(4), row(9), row(1, 2), row(0, 2, 'a')])).toEqual([
      { topic: 'a', partition: 2, first: 0, last: 0 },
      { topic: 't', partition: 0, first: 3, last: 5 },
      { topic: 't', partition: 0, first: 9, last: 9 },
      { topic: 't', partition: 2, first: 1, last: 1 },
    ]);
  });
});
