import { flattenWebhook, makeWebhook, TOPICS } from '@clustr-pipeline/schema';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeMessage, dedupToken, topicRoutes } from './rows.js';

const [oppRoute, jobRoute] = topicRoutes(TOPICS);
const { job, opportunities } = flattenWebhook(makeWebhook({ opportunities: 2 }), new Date('2025-01-01T00:00:00Z'));

describe('decodeMessage', () => {
  it('forwards the original string as the line', () => {
    const raw = JSON.stringify(opportunities[0]);
    expect(decodeMessage(oppRoute!, Buffer.from(raw))).toEqual({ ok: true, eventId: opportunities[0]!.event_id, line: raw });
    expect(decodeMessage(jobRoute!, Buffer.from(JSON.stringify(job)))).toMatchObject({ ok: true, eventId: job.event_id });
  });
  it('rejects non-JSON, wrong schema and empty values with a reason', () => {
    expect(decodeMessage(oppRoute!, Buffer.from('{nope'))).toMatchObject({ ok: false, reason: 'SINK_DLQ_INVALID_JSON' });
    expect(decodeMessage(oppRoute!, Buffer.from([0xff, 0xfe]))).toMatchObject({ ok: false, reason: 'SINK_DLQ_INVALID_JSON' });
    expect(decodeMessage(oppRoute!, Buffer.from(JSON.stringify(job)))).toMatchObject({ ok: false, reason: 'SINK_DLQ_SCHEMA' });
    expect(decodeMessage(oppRoute!, null)).toMatchObject({ ok: false, reason: 'SINK_DLQ_EMPTY_VALUE' });
  });
  it('puts a pretty-printed event on one line', () => {
    const d = decodeMessage(jobRoute!, Buffer.from(JSON.stringify(job, null, 2)));
    expect(d.ok && !d.line.includes('\n') && JSON.parse(d.line)).toEqual(job);
  });
});

describe('dedupToken', () => {
  const rowsArb = fc.uniqueArray(fc.record({ topic: fc.constantFrom('a', 'b'), partition: fc.integer({ min: 0, max: 3 }), offset: fc.integer({ min: 0, max: 1000 }) }), {
    selector: (r) => `${r.topic}:${r.partition}:${r.offset}`,
    minLength: 1,
  });
  it('depends only on the table and the set of positions, not their order', () => {
    fc.assert(
      fc.property(rowsArb, (rows) => {
        const shuffled = [...rows].reverse();
        expect(dedupToken('jobs', rows)).toBe(dedupToken('jobs', shuffled));
        expect(dedupToken('jobs', rows)).not.toBe(dedupToken('opportunity_events', rows));
      }),
    );
  });
  it('changes when a position is added or removed', () => {
    const rows = [0, 1, 2, 4].map((offset) => ({ topic: 'a', partition: 0, offset }));
    const t = dedupToken('jobs', rows);
    expect(dedupToken('jobs', rows.slice(0, 3))).not.toBe(t);
    expect(dedupToken('jobs', [...rows, { topic: 'a', partition: 0, offset: 3 }])).not.toBe(t);
    expect(t).toMatch(/^jobs-[0-9a-f]{40}$/);
  });
});
