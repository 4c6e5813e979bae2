import { gzipSync, deflateRawSync, deflateSync } from 'node:zlib';
import { DLQ_HEADERS, TOPICS } from '@clustr-pipeline/schema';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startIngest } from './app.js';
import { IngestError } from './errors.js';
import { buildServer } from './server.js';
import { FakePublisher, captureLogs, fixtureText, testConfig } from './testing/helpers.js';

const json = { 'content-type': 'application/json' };

describe('HTTP behaviour (fake publisher)', () => {
  let app: FastifyInstance;
  const publisher = new FakePublisher();
  beforeAll(async () => {
    app = buildServer(testConfig({ BODY_LIMIT_MB: '0.25' }), { publisher });
    await app.ready();
  });
  afterAll(async () => app.close());
  beforeEach(() => {
    publisher.published.length = 0;
    publisher.failWith = undefined;
    publisher.isReady = true;
  });

  const post = (payload: string | Buffer, headers: Record<string, string> = json) =>
    app.inject({ method: 'POST', url: '/webhooks/clustr', headers, payload });

  it('accepts the completed fixture: 200 after publishing opportunities then the job', async () => {
    const response = await post(fixtureText('completed'), { 'content-type': 'application/json; charset=UTF-8' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'accepted', job_id: 'job_abc123', events: 2 });
    expect(response.headers['x-request-id']).toBeTruthy();
    expect(publisher.published[0]!.map((b) => b.topic)).toEqual([TOPICS.opportunities, TOPICS.jobs]);
  });

  it('keeps a valid incoming X-Request-Id', async () => {
    const response = await post(fixtureText('failed'), { ...json, 'x-request-id': 'abc-123' });
    expect(response.headers['x-request-id']).toBe('abc-123');
  });

  it.each([
    ['gzip', gzipSync],
    ['x-gzip', gzipSync],
    ['deflate', deflateSync],
    ['deflate', deflateRawSync],
  ])('accepts Content-Encoding: %s', async (encoding, compress) => {
    const response = await post(compress(Buffer.from(fixtureText('completed'))), { ...json, 'content-encoding': encoding });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ events: 2 });
  });

  it('answers 400 for invalid JSON and for an empty body', async () => {
    for (const payload of ['{"status":', '']) {
      const response = await post(payload);
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ statusCode: 400, code: 'INGEST_ERR_INVALID_JSON', error: 'Bad Request' });
    }
    expect(publisher.published).toEqual([]);
  });

  it('rejects prototype-poisoning keys with 400 and pollutes nothing', async () => {
    const response = await post('{"status":"completed","job_id":"j","__proto__":{"polluted":true}}');
    expect(response.statusCode).toBe(400);
    const response2 = await post('{"status":"completed","job_id":"j","constructor":{"prototype":{"polluted":true}}}');
    expect(response2.statusCode).toBe(400);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('answers 400 for a corrupt gzip body', async () => {
    const response = await post(Buffer.from('not gzip at all'), { ...json, 'content-encoding': 'gzip' });
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('INGEST_ERR_BAD_ENCODING');
  });

  it.each([
    ['text/plain', {}],
    ['application/x-www-form-urlencoded', {}],
    ['application/json; charset=latin1', {}],
    ['application/jsonx', {}],
  ])('answers 415 for Content-Type %s', async (contentType) => {
    const response = await post('{}', { 'content-type': contentType });
    expect(response.statusCode).toBe(415);
    expect(response.json()).toMatchObject({ statusCode: 415, code: 'INGEST_ERR_UNSUPPORTED_MEDIA_TYPE' });
  });

  it('answers 415 without a Content-Type', async () => {
    const response = await app.inject({ method: 'POST', url: '/webhooks/clustr', payload: '{}' });
    expect(response.statusCode).toBe(415);
  });

  it('answers 415 for an unknown Content-Encoding', async () => {
    const response = await post('{}', { ...json, 'content-encoding': 'br' });
    expect(response.statusCode).toBe(415);
    expect(response.json().code).toBe('INGEST_ERR_UNSUPPORTED_ENCODING');
  });

  it('answers 413 over the body limit, compressed or not', async () => {
    const big = Buffer.from(JSON.stringify({ status: 'completed', job_id: 'j', custom: 'x'.repeat(300_000) }));
    const plain = await post(big);
    expect(plain.statusCode).toBe(413);
    expect(plain.json()).toMatchObject({ statusCode: 413, code: 'INGEST_ERR_BODY_TOO_LARGE' });
    // A gzip bomb: tiny on the wire, over the limit once decompressed.
    const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20));
    expect(bomb.length).toBeLessThan(100_000);
    const bombed = await post(bomb, { ...json, 'content-encoding': 'gzip' });
    expect(bombed.statusCode).toBe(413);
    expect(bombed.json().code).toBe('INGEST_ERR_BODY_TOO_LARGE');
    expect(publisher.published).toEqual([]);
  });

  it('answers 422 with the failing paths and dead-letters the raw body', async () => {
    const raw = '{"status":"completed","job_id":"","results":[{"opportunities":[{"prospect":{}}]}]}';
    const response = await post(gzipSync(Buffer.from(raw)), { ...json, 'content-encoding': 'gzip', 'x-request-id': 'req-422' });
    expect(response.statusCode).toBe(422);
    const body = response.json();
    expect(body).toMatchObject({ statusCode: 422, code: 'INGEST_ERR_SCHEMA', error: 'Unprocessable Entity' });
    expect(body.issues.map((i: { path: string }) => i.path).sort()).toEqual(['job_id', 'results[0].opportunities[0].opportunity_id']);
    const [[dlq]] = publisher.published as unknown as [[{ topic: string; messages: Array<{ value: Buffer; headers: Record<string, string> }> }]];
    expect(dlq.topic).toBe(TOPICS.dlq);
    expect(dlq.messages[0]!.value.toString()).toBe(raw);
    expect(dlq.messages[0]!.headers).toMatchObject({ [DLQ_HEADERS.reason]: 'INGEST_ERR_SCHEMA', [DLQ_HEADERS.requestId]: 'req-422', [DLQ_HEADERS.stage]: 'ingest' });
  });

  it('answers 503 (not 422) when the DLQ publish fails', async () => {
    publisher.failWith = new Error('kafka down');
    const response = await post('{"status":"completed"}');
    expect(response.statusCode).toBe(503);
    expect(response.headers['retry-after']).toBe('5');
    expect(response.json().code).toBe('INGEST_ERR_DLQ_UNAVAILABLE');
  });

  it('answers 503 with Retry-After when Kafka fails or times out', async () => {
    publisher.failWith = new IngestError('INGEST_ERR_KAFKA_TIMEOUT');
    const response = await post(fixtureText('completed'));
    expect(response.statusCode).toBe(503);
    expect(response.headers['retry-after']).toBe('5');
    expect(response.json()).toMatchObject({ statusCode: 503, code: 'INGEST_ERR_KAFKA_TIMEOUT', error: 'Service Unavailable' });
  });

  it('serves health, readiness and metrics', async () => {
    expect((await app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(200);
    publisher.isReady = false;
    expect((await app.inject({ url: '/readyz' })).statusCode).toBe(503);
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    await post(fixtureText('completed'));
    const metrics = await app.inject({ url: '/metrics' });
    expect(metrics.headers['content-type']).toMatch(/text\/plain/);
    expect(metrics.body).toMatch(/clustr_ingest_http_requests_total\{method="POST",route="\/webhooks\/clustr",status="200"\} \d+/);
    expect(metrics.body).toContain('clustr_ingest_webhook_size_bytes_bucket');
    expect(metrics.body).toContain('clustr_ingest_dlq_messages_total{reason="INGEST_ERR_SCHEMA"}');
  });

  it('answers 404 with the error body', async () => {
    const response = await app.inject({ url: '/nope' });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toMatchObject({ statusCode: 404, code: 'INGEST_ERR_NOT_FOUND' });
  });
});

describe('logs over real HTTP', () => {
  it('never contain the secret nor any presented token', async () => {
    const SECRET = 'sup3r-s3cret-value-4242';
    const WRONG = 'wr0ng-t0ken-presented-9191';
    const { logger, text } = captureLogs('trace');
    const publisher = new FakePublisher();
    const ingest = await startIngest(testConfig({ WEBHOOK_SECRET: SECRET, LOG_LEVEL: 'trace' }), { logger, publisher });
    try {
      const body = fixtureText('completed');
      const url = `${ingest.url}/webhooks/clustr`;
      const statuses = [];
      for (const token of [SECRET, WRONG]) {
        statuses.push((await fetch(url, { method: 'POST', headers: { ...json, authorization: `Bearer ${token}` }, body })).status);
        statuses.push((await fetch(url, { method: 'POST', headers: { ...json, 'x-webhook-token': token }, body })).status);
        statuses.push((await fetch(`${url}?token=${token}`, { method: 'POST', headers: json, body })).status);
        statuses.push((await fetch(`${url}?a=1&token=${token}`, { method: 'POST', headers: json, body: '{bad' })).status);
        statuses.push((await fetch(`${ingest.url}/nope?token=${token}`)).status);
      }
      expect(statuses).toEqual([200, 200, 200, 400, 404, 401, 401, 401, 401, 404]);
    } finally {
      await ingest.close();
    }
    const logs = text();
    expect(logs).toContain('"url":"/webhooks/clustr?token=[Redacted]"');
    expect(logs).toContain('webhook accepted');
    expect(logs).not.toContain(SECRET);
    expect(logs).not.toContain(WRONG);
    expect(publisher.closed).toBe(true);
  });

  it('close() drains a request in flight, then closes the publisher, without waiting for keep-alive', async () => {
    const publisher = new FakePublisher();
    publisher.delayMs = 800;
    const ingest = await startIngest(testConfig(), { publisher });
    // A first request leaves an idle keep-alive connection in the client's pool.
    expect((await fetch(`${ingest.url}/healthz`)).status).toBe(200);
    const inFlight = fetch(`${ingest.url}/webhooks/clustr`, { method: 'POST', headers: json, body: fixtureText('completed') });
    await new Promise((r) => setTimeout(r, 200)); // the request is now waiting for the "ack"
    expect(publisher.published).toHaveLength(0);
    const started = Date.now();
    const closed = ingest.close();
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(response.headers.get('connection')).toBe('close');
    await closed;
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(publisher.published).toHaveLength(1);
    expect(publisher.closed).toBe(true);
    await expect(fetch(`${ingest.url}/healthz`)).rejects.toThrow();
  });

  it('warns loudly at start-up when WEBHOOK_SECRET is unset', async () => {
    const { logger, text } = captureLogs('info');
    const ingest = await startIngest(testConfig({ LOG_LEVEL: 'info' }), { logger, publisher: new FakePublisher() });
    await ingest.close();
    expect(text()).toMatch(/"level":40.*WEBHOOK_SECRET is not set/);
  });
});
