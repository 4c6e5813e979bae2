import { readdirSync } from 'node:fs';
import { startMockKafka, type MockKafka } from '@clustr-pipeline/devkit';
import { TOPICS } from '@clustr-pipeline/schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIngest, type RunningIngest } from './app.js';
import { closedPort, fixtureText, testConfig, waitFor } from './testing/helpers.js';

/**
 * Kafka failures as the sender sees them. Fault injection needs the librdkafka mock broker, so
 * this suite always uses it (whatever TEST_KAFKA / KAFKA_BROKERS say); the unreachable-broker case
 * needs no broker at all.
 */

const post = (url: string, body: string) =>
  fetch(`${url}/webhooks/clustr`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

describe('Kafka unreachable at start-up, spool disabled', () => {
  let ingest: RunningIngest;
  beforeAll(async () => {
    const port = await closedPort();
    ingest = await startIngest(testConfig({ KAFKA_BROKERS: `127.0.0.1:${port}`, KAFKA_ACK_TIMEOUT_MS: '1000', INGEST_SPOOL_ENABLED: 'false' }));
  });
  afterAll(async () => ingest?.close());

  it('starts anyway: /healthz 200, /readyz 503', async () => {
    expect((await fetch(`${ingest.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${ingest.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not_ready' });
  });

  it('answers webhooks 503 with Retry-After, and invalid ones 503 too (the DLQ is unreachable)', async () => {
    const response = await post(ingest.url, fixtureText('completed'));
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('5');
    expect(await response.json()).toMatchObject({ statusCode: 503, code: 'INGEST_ERR_KAFKA_UNAVAILABLE' });

    const invalid = await post(ingest.url, '{"status":"completed"}');
    expect(invalid.status).toBe(503);
    expect(await invalid.json()).toMatchObject({ code: 'INGEST_ERR_DLQ_UNAVAILABLE' });
  });

  it('closes promptly although the producer never connected', async () => {
    const started = Date.now();
    await ingest.close();
    expect(Date.now() - started).toBeLessThan(8_000);
  });
});

describe('Kafka unreachable at start-up, spool enabled', () => {
  let ingest: RunningIngest;
  beforeAll(async () => {
    const port = await closedPort();
    ingest = await startIngest(testConfig({ KAFKA_BROKERS: `127.0.0.1:${port}`, KAFKA_ACK_TIMEOUT_MS: '1000' }));
  });
  afterAll(async () => ingest?.close());

  it('starts, answers valid webhooks 202 from the spool at once, invalid ones 503 (the DLQ is unreachable)', async () => {
    const ready = await fetch(`${ingest.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not_ready', kafka: 'disconnected', spool: { files: 0 } });
    const started = Date.now();
    const response = await post(ingest.url, fixtureText('completed'));
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ status: 'spooled', job_id: 'job_abc123', events: 2 });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(readdirSync(ingest.spool!.dir).filter((f) => f.endsWith('.webhook'))).toHaveLength(1);
    const invalid = await post(ingest.url, '{"status":"completed"}');
    expect(invalid.status).toBe(503);
    expect(await invalid.json()).toMatchObject({ code: 'INGEST_ERR_DLQ_UNAVAILABLE' });
  });
});

describe('Kafka going down after start-up, spool disabled', () => {
  let mock: MockKafka;
  let ingest: RunningIngest;
  beforeAll(async () => {
    mock = await startMockKafka({ topics: { [TOPICS.opportunities]: 3, [TOPICS.jobs]: 1, [TOPICS.dlq]: 1 } });
    ingest = await startIngest(testConfig({ KAFKA_BROKERS: mock.brokers.join(','), KAFKA_ACK_TIMEOUT_MS: '2000', INGEST_SPOOL_ENABLED: 'false' }));
    await waitFor(async () => (await fetch(`${ingest.url}/readyz`)).status === 200, 30_000, '/readyz 200');
  });
  afterAll(async () => {
    await ingest?.close();
    await mock?.stop();
  });

  it('answers 503 with Retry-After within the ack timeout, and 200 again once Kafka is back', async () => {
    expect((await post(ingest.url, fixtureText('completed'))).status).toBe(200);

    await mock.setBrokerDown(1);
    const started = Date.now();
    const response = await post(ingest.url, fixtureText('completed'));
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('5');
    expect((await response.json()) as { code: string }).toMatchObject({ code: expect.stringMatching(/^INGEST_ERR_KAFKA_(TIMEOUT|UNAVAILABLE)$/) });
    expect(Date.now() - started).toBeLessThan(2_000 + 1_500);

    await mock.setBrokerUp(1);
    await waitFor(async () => (await post(ingest.url, fixtureText('completed'))).status === 200, 30_000, 'a 200 after recovery');
  });
});
