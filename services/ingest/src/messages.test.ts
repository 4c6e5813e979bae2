import { CE_TYPES, DLQ_HEADERS, flattenWebhook, makeWebhook, type ClustrWebhook } from '@clustr-pipeline/schema';
import { describe, expect, it } from 'vitest';
import { DLQ_ERROR_MAX_CHARS, countMessages, lazyWebhookMessageStreams, toDeadLetterBatch, toMessageBatches, webhookMessageStreams, type OpportunityList } from './messages.js';
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

describe('webhookMessageStreams', () => {
  const materialise = (batches: Array<{ topic: string; messages: Iterable<unknown> }>) => batches.map((b) => ({ topic: b.topic, messages: [...b.messages] }));

  const cases: Array<[string, ClustrWebhook]> = [
    ['completed fixture', fixture('completed')],
    ['failed fixture', fixture('failed')],
    ['failed without timestamp', { ...fixture('failed'), timestamp: null }],
    ['generated, several clients', makeWebhook({ opportunities: 1_037, jobId: 'j', perClient: 97, engagements: 2, custom: { a: [1, 'ü'], b: null } })],
    [
      'odd shapes',
      {
        status: 'partial',
        job_id: 'j-odd',
        summary: { total_processed: 3 },
        error: { code: 'E', details: { nested: [1, 2, { x: 'y' }] } },
        results: [
          { client: null, opportunities: null },
          { opportunities: [] },
          { client: { name: 'C', extra: 1 }, opportunities: [{ opportunity_id: 'o1' }, { opportunity_id: 'o2', prospect: null, engagement: { history: null } }] },
          {},
          { client: { first_name: '名' }, opportunities: [{ opportunity_id: 'o3', relationship: { shared_experience: { is_current: false } } }] },
        ],
      },
    ],
    ['no results', { status: 'completed', job_id: 'j-none', results: null }],
  ];

  it.each(cases)('yields exactly the messages of toMessageBatches(flattenWebhook(…)): %s', (_name, webhook) => {
    const expected = toMessageBatches(flattenWebhook(webhook, receivedAt), settings);
    for (const slice of [1, 3, 256]) {
      const streams = webhookMessageStreams(webhook, receivedAt, settings, slice);
      expect(materialise(streams.batches)).toEqual(expected);
      expect(streams.events).toBe(countMessages(expected));
      expect(streams.job).toEqual(flattenWebhook(webhook, receivedAt).job);
      // Byte for byte (toEqual would not notice a different key order in the values).
      const values = streams.batches.flatMap((b) => [...b.messages].map((m) => [m.key, m.value, JSON.stringify(m.headers)]));
      expect(values).toEqual(expected.flatMap((b) => b.messages.map((m) => [m.key, m.value, JSON.stringify(m.headers)])));
    }
  });

  it('is re-iterable (the spool drainer retries a publish)', () => {
    const { batches } = webhookMessageStreams(makeWebhook({ opportunities: 25, jobId: 'j' }), receivedAt, settings, 4);
    expect([...batches[0]!.messages]).toEqual([...batches[0]!.messages]);
    expect([...batches[0]!.messages]).toHaveLength(25);
  });

  it('takes opportunities produced on demand (lazyWebhookMessageStreams), slice by slice, with the same messages', () => {
    const webhook = makeWebhook({ opportunities: 53, jobId: 'j', perClient: 20, engagements: 1 });
    const expected = materialise(webhookMessageStreams(webhook, receivedAt, settings).batches);
    const slices: Array<[number, number]> = [];
    const lists: OpportunityList[] = webhook.results!.map((result) => ({
      length: result.opportunities!.length,
      slice: (start: number, end: number) => {
        slices.push([start, end]);
        return structuredClone(result.opportunities!.slice(start, end));
      },
    }));
    // The envelope's own opportunities are ignored.
    const envelope = { ...webhook, results: webhook.results!.map((result) => ({ ...result, opportunities: [] })) };
    const streams = lazyWebhookMessageStreams({ webhook: envelope, opportunities: (i) => lists[i]! }, receivedAt, settings, 8);
    expect(slices).toEqual([]);
    expect(streams.events).toBe(54);
    expect(materialise(streams.batches)).toEqual(expected);
    expect(materialise(streams.batches)).toEqual(expected);
    expect(slices.slice(0, 4)).toEqual([
      [0, 8],
      [8, 16],
      [16, 24],
      [0, 8],
    ]);
  });
});
