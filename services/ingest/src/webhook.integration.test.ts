import { gzipSync } from 'node:zlib';
import { startTestKafka, type TestKafka } from '@clustr-pipeline/devkit';
import { CE_TYPES, DLQ_HEADERS, makeWebhook, TOPICS, type JobEvent, type OpportunityEvent } from '@clustr-pipeline/schema';
import { completedSampleEvent } from '@clustr-pipeline/schema/testing';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIngest, type RunningIngest } from './app.js';
import { fixtureText, testConfig, waitFor } from './testing/helpers.js';

/**
 * The ingest against a real Kafka-protocol broker (`startTestKafka`: external → container → the
 * librdkafka mock), over real HTTP, reading the topics back with a kafkajs consumer.
 */

const SECRET = 'integration-secret';

interface Received {
  topic: string;
  key: string;
  value: Buffer;
  headers: Record<string, string>;
}

describe('POST /webhooks/clustr → Kafka', () => {
  let kafka: TestKafka;
  let ingest: RunningIngest;
  let consumer: Consumer;
  const received: Received[] = [];
  const on = (topic: string, key?: string) => received.filter((m) => m.topic === topic && (key === undefined || m.key === key));

  beforeAll(async () => {
    // ≥12 partitions for opportunities: the mock keeps at most ~5 MB per partition.
    kafka = await startTestKafka({ [TOPICS.opportunities]: 12, [TOPICS.jobs]: 3, [TOPICS.dlq]: 3 });
    ingest = await startIngest(
      testConfig({ KAFKA_BROKERS: kafka.brokers.join(','), WEBHOOK_SECRET: SECRET, BODY_LIMIT_MB: '40', KAFKA_ACK_TIMEOUT_MS: '20000' }),
    );
    consumer = new Kafka({ clientId: 'ingest-it', brokers: kafka.brokers, logLevel: logLevel.NOTHING }).consumer({ groupId: `ingest-it-${Date.now()}`, maxWaitTimeInMs: 200 });
    await consumer.connect();
    await consumer.subscribe({ topics: [TOPICS.opportunities, TOPICS.jobs, TOPICS.dlq], fromBeginning: true });
    await consumer.run({
      partitionsConsumedConcurrently: 4,
      eachMessage: async ({ topic, message }) => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = String(value);
        received.push({ topic, key: String(message.key), value: message.value ?? Buffer.alloc(0), headers });
      },
    });
    await waitFor(async () => (await fetch(`${ingest.url}/readyz`)).status === 200, 30_000, '/readyz 200');
  });

  afterAll(async () => {
    await consumer?.disconnect();
    await ingest?.close();
    await kafka?.stop();
  });

  const post = (body: string | Buffer, headers: Record<string, string> = {}) =>
    fetch(`${ingest.url}/webhooks/clustr`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${SECRET}`, ...headers },
      body,
    });

  it('the completed fixture → one OpportunityEvent with the sample values, then one JobEvent', async () => {
    const response = await post(fixtureText('completed'));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'accepted', job_id: 'job_abc123', events: 2 });

    const [opp] = await waitFor(() => on(TOPICS.opportunities, 'opp_abc123').length >= 1 && on(TOPICS.opportunities, 'opp_abc123'));
    const job = await waitFor(() => on(TOPICS.jobs, 'job_abc123').find((m) => (JSON.parse(String(m.value)) as JobEvent).status === 'completed'));
    expect(on(TOPICS.opportunities, 'opp_abc123')).toHaveLength(1);

    const event = JSON.parse(String(opp!.value)) as OpportunityEvent;
    expect(event).toEqual(completedSampleEvent(event.received_at));
    expect(opp!.headers).toEqual({
      ce_specversion: '1.0',
      ce_id: event.event_id,
      ce_type: CE_TYPES.opportunity,
      ce_source: 'urn:clustr-pipeline:ingest',
      ce_time: '2025-03-15T14:30:00Z',
      ce_subject: 'opp_abc123',
      'content-type': 'application/json',
    });

    const jobEvent = JSON.parse(String(job.value)) as JobEvent;
    expect(jobEvent).toMatchObject({
      job_id: 'job_abc123',
      status: 'completed',
      total_processed: 2,
      total_opportunities: 15,
      processing_time_seconds: 45.2,
      result_count: 1,
      opportunity_count: 1,
      error_code: null,
    });
    expect(job.headers).toMatchObject({ ce_type: CE_TYPES.job, ce_subject: 'job_abc123', ce_id: jobEvent.event_id });
  });

  it('the failed fixture → one JobEvent with the error fields and no opportunity events', async () => {
    const before = on(TOPICS.opportunities).length;
    const response = await post(fixtureText('failed'));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'accepted', job_id: 'job_abc123', events: 1 });
    const job = await waitFor(() => on(TOPICS.jobs, 'job_abc123').find((m) => (JSON.parse(String(m.value)) as JobEvent).status === 'failed'));
    expect(JSON.parse(String(job.value))).toMatchObject({
      status: 'failed',
      opportunity_count: 0,
      result_count: 0,
      error_code: 'PROCESSING_ERROR',
      error_message: 'Failed to process contacts',
      error_details: 'Additional error context',
    });
    expect(on(TOPICS.opportunities).length).toBe(before);
  });

  it('a schema-breaking body → 422 with the paths, and the raw body on the DLQ', async () => {
    const raw = '{"status":"completed","job_id":"job_bad","results":[{"opportunities":[{"opportunity_id":42}]}]}';
    const response = await post(raw, { 'x-request-id': 'it-422' });
    expect(response.status).toBe(422);
    const body = (await response.json()) as { code: string; issues: Array<{ path: string; message: string }> };
    expect(body.code).toBe('INGEST_ERR_SCHEMA');
    expect(body.issues.map((i) => i.path)).toEqual(['results[0].opportunities[0].opportunity_id']);
    const [dead] = await waitFor(() => on(TOPICS.dlq, 'it-422').length > 0 && on(TOPICS.dlq, 'it-422'));
    expect(dead!.value.toString('utf8')).toBe(raw);
    expect(dead!.headers).toMatchObject({
      [DLQ_HEADERS.reason]: 'INGEST_ERR_SCHEMA',
      [DLQ_HEADERS.stage]: 'ingest',
      [DLQ_HEADERS.requestId]: 'it-422',
      [DLQ_HEADERS.contentType]: 'application/json',
    });
    expect(JSON.parse(dead!.headers[DLQ_HEADERS.error]!)).toEqual([expect.objectContaining({ path: 'results[0].opportunities[0].opportunity_id' })]);
    expect(Date.parse(dead!.headers[DLQ_HEADERS.receivedAt]!)).not.toBeNaN();
    expect(on(TOPICS.jobs, 'job_bad')).toHaveLength(0);
  });

  it('a bad secret → 401 and nothing published', async () => {
    const response = await post(JSON.stringify(makeWebhook({ opportunities: 2, jobId: 'job_unauth' })), { authorization: 'Bearer wrong' });
    expect(response.status).toBe(401);
    expect((await response.json()) as object).toMatchObject({ code: 'INGEST_ERR_UNAUTHORIZED' });
  });

  it('a gzip body is accepted', async () => {
    const body = gzipSync(JSON.stringify(makeWebhook({ opportunities: 3, jobId: 'job_gzip' })));
    const response = await post(body, { 'content-encoding': 'gzip' });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'accepted', job_id: 'job_gzip', events: 4 });
    await waitFor(() => on(TOPICS.jobs, 'job_gzip').length === 1);
  });

  it('a wrong content type → 415', async () => {
    const response = await post('{}', { 'content-type': 'text/plain' });
    expect(response.status).toBe(415);
    expect((await response.json()) as object).toMatchObject({ statusCode: 415, code: 'INGEST_ERR_UNSUPPORTED_MEDIA_TYPE' });
  });

  it('a body over BODY_LIMIT_MB → 413', async () => {
    const response = await post(JSON.stringify({ status: 'completed', job_id: 'job_big', custom: 'x'.repeat(41 * 1024 * 1024) }));
    expect(response.status).toBe(413);
    expect((await response.json()) as object).toMatchObject({ code: 'INGEST_ERR_BODY_TOO_LARGE' });
  });

  it('a 20,000-opportunity webhook → 200 with 20,001 events, all 20,000 on the topic', async () => {
    const jobId = 'job_20k';
    const body = JSON.stringify(makeWebhook({ opportunities: 20_000, jobId }));
    const started = Date.now();
    const response = await post(body);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'accepted', job_id: jobId, events: 20_001 });
    const prefix = `opp_${jobId}_`;
    const count = () => received.filter((m) => m.topic === TOPICS.opportunities && m.key.startsWith(prefix)).length;
    await waitFor(() => count() >= 20_000, 45_000, '20,000 opportunity messages');
    const keys = new Set(received.filter((m) => m.topic === TOPICS.opportunities && m.key.startsWith(prefix)).map((m) => m.key));
    expect(keys.size).toBe(20_000);
    await waitFor(() => on(TOPICS.jobs, jobId).length === 1);
    const metrics = await (await fetch(`${ingest.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`clustr_ingest_events_published_total\\{topic="${TOPICS.opportunities.replace(/\./g, '\\.')}"\\} (\\d+)`));
    console.info(`20k webhook: ${body.length} bytes, accepted and consumed in ${Date.now() - started} ms`);
  });
});
