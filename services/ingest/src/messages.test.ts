import { CE_TYPES, DLQ_HEADERS, flattenWebhook, makeWebhook } from '@clustr-pipeline/schema';
import { describe, expect, it } from 'vitest';
import { DLQ_ERROR_MAX_CHARS, countMessages, toDeadLetterBatch, toMessageBatches } from './messages.js';
import { fixture } from './testing/helpers.js';

const settings = { ceSource: 'urn:test', topics: { opportunities: 'opps', jobs: 'jobs' } };
const receivedAt = new Date('2026-01-02T03:04:05.678Z');

describe('toMessageBatches', () => {
  it('puts opportunity events first, keyed by opportunity_id, and the job event last, keyed by job_id', () => {
    const flat = flattenWebhook(fixture('completed'), receivedAt);
    const batches = toMessageBatches(flat, settings);
    expect(batches.map((b) => [b.topic, b.messages.length])).toEqual([
      ['opps', 1],
      ['jobs', 1],
    ]);
    const [opp] = batches[0]!.messages;
    expect(opp!.key).toBe('opp_abc123');
    expect(JSON.parse(String(opp!.value))).toEqual(flat.opportunities[0]);
    expect(opp!.headers).toEqual({
      ce_specversion: '1.0',
      ce_id: flat.opportunities[0]!.event_id,
      ce_type: CE_TYPES.opportunity,
      ce_source: 'urn:test',
      ce_time: '2025-03-15T14:30:00Z',
      ce_subject: 'opp_abc123',
      'content-type': 'application/json',
    });
    const [job] = batches[1]!.messages;
    expect(job!.key).toBe('job_abc123');
    expect(JSON.parse(String(job!.value))).toEqual(flat.job);
    expect(job!.headers).toMatchObject({ ce_id: flat.job.event_id, ce_type: CE_TYPES.job, ce_subject: 'job_abc123', ce_time: '2025-03-15T14:30:00Z' });
  });

  it('uses received_at as ce_time when the webhook has no timestamp', () => {
    const webhook = { ...fixture('failed'), timestamp: null };
    const batches = toMessageBatches(flattenWebhook(webhook, receivedAt), settings);
    expect(batches).toHaveLength(1);
    expect(batches[0]!.topic).toBe('jobs');
    expect(batches[0]!.messages[0]!.headers.ce_time).toBe(receivedAt.toISOString());
  });

  it('yields one message per opportunity plus one, in payload order', () => {
    const batches = toMessageBatches(flattenWebhook(makeWebhook({ opportunities: 123, jobId: 'j' }), receivedAt), settings);
    expect(countMessages(batches)).toBe(124);
    expect(batches[0]!.messages.map((m) => m.key)).toEqual(Array.from({ length: 123 }, (_, i) => `opp_j_${i}`));
  });
});

describe('toDeadLetterBatch', () => {
  it('carries the raw bytes and the DLQ headers, truncating the error', () => {
    const body = Buffer.from('{"status":1}');
    const batch = toDeadLetterBatch(
      { body, reason: 'INGEST_ERR_SCHEMA', error: 'x'.repeat(10_000), receivedAt, requestId: 'req-1', contentType: 'application/json; charset=utf-8' },
      'dlq',
    );
    expect(batch.topic).toBe('dlq');
    const [message] = batch.messages;
    expect(message!.value).toBe(body);
    expect(message!.key).toBe('req-1');
    expect(message!.headers[DLQ_HEADERS.error]!.length).toBe(DLQ_ERROR_MAX_CHARS);
    expect(message!.headers).toMatchObject({
      [DLQ_HEADERS.reason]: 'INGEST_ERR_SCHEMA',
      [DLQ_HEADERS.stage]: 'ingest',
      [DLQ_HEADERS.receivedAt]: receivedAt.toISOString(),
      [DLQ_HEADERS.requestId]: 'req-1',
      [DLQ_HEADERS.contentType]: 'application/json; charset=utf-8',
    });
  });
});
