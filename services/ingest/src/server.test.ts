import { connect } from 'node:net';
import { gzipSync, deflateRawSync, deflateSync } from 'node:zlib';
import { DLQ_HEADERS, TOPICS } from '@clustr-pipeline/schema';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startIngest } from './app.js';
import { IngestError } from './errors.js';
import { buildServer } from './server.js';
import { Spool } from './spool.js';
import { FakePublisher, captureLogs, fixtureText, tempDir, testConfig } from './testing/helpers.js';

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

describe('limits, encodings and the spool (fake publisher)', () => {
  const build = async (env: Record<string, string> = {}, publisher = new FakePublisher(), spool?: Spool) => {
    const app = buildServer(testConfig({ BODY_LIMIT_MB: '4', ...env }), { publisher, ...(spool ? { spool } : {}) });
    await app.ready();
    return app;
  };
  const post = (app: FastifyInstance, payload: string | Buffer, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/webhooks/clustr', headers: { ...json, ...headers }, payload });
  const withCustom = (custom: string) => fixtureText('completed').replace(/}\s*$/, `,"custom":${custom}}`);

  it('answers 400 INGEST_ERR_INVALID_UTF8 for invalid UTF-8, accepts a BOM', async () => {
    const publisher = new FakePublisher();
    const app = await build({}, publisher);
    const text = fixtureText('completed');
    const invalid = Buffer.from(text.replace('job_abc123', 'job_\u00ff'), 'latin1');
    const response = await post(app, invalid);
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'INGEST_ERR_INVALID_UTF8' });
    const bom = await post(app, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]));
    expect(bom.statusCode).toBe(200);
    expect(publisher.published).toHaveLength(1);
    await app.close();
  });

  it('answers 422 INGEST_ERR_JSON_TOO_DEEP for 10 000 levels of nesting and dead-letters the body', async () => {
    const publisher = new FakePublisher();
    const app = await build({}, publisher);
    const deep = withCustom(`${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`);
    const response = await post(app, deep, { 'x-request-id': 'deep-1' });
    expect(response.statusCode).toBe(422);
    expect(response.json()).toMatchObject({ code: 'INGEST_ERR_JSON_TOO_DEEP', message: expect.stringContaining('MAX_JSON_DEPTH') });
    const [[dlq]] = publisher.published as unknown as [[{ topic: string; messages: Array<{ value: Buffer; headers: Record<string, string> }> }]];
    expect(dlq.topic).toBe(TOPICS.dlq);
    expect(dlq.messages[0]!.value.toString()).toBe(deep);
    expect(dlq.messages[0]!.headers[DLQ_HEADERS.reason]).toBe('INGEST_ERR_JSON_TOO_DEEP');
    // Too big for one DLQ message: answered, not dead-lettered.
    publisher.published.length = 0;
    const huge = withCustom(`[${'"x",'.repeat(300_000)}${'['.repeat(100)}${']'.repeat(100)}]`);
    const hugeResponse = await post(app, huge);
    expect(hugeResponse.statusCode).toBe(422);
    expect(publisher.published).toEqual([]);
    // Within the limit, nesting is fine.
    expect((await post(app, withCustom(`${'['.repeat(50)}${']'.repeat(50)}`))).statusCode).toBe(200);
    await app.close();
  });

  it('answers 413 INGEST_ERR_TOO_MANY_OPPORTUNITIES past MAX_OPPORTUNITIES, before validating', async () => {
    const publisher = new FakePublisher();
    const app = await build({ MAX_OPPORTUNITIES: '2' }, publisher);
    const opportunities = JSON.stringify([1, 2, 3].map((i) => ({ opportunity_id: `o${i}` })));
    const response = await post(app, JSON.stringify({ job_id: 'j', status: 'completed', results: [{ opportunities: JSON.parse(opportunities) as unknown }] }));
    expect(response.statusCode).toBe(413);
    expect(response.json()).toMatchObject({ code: 'INGEST_ERR_TOO_MANY_OPPORTUNITIES', message: expect.stringContaining('MAX_OPPORTUNITIES') });
    expect(publisher.published).toEqual([]);
    await app.close();
  });

  it('prototype keys anywhere are refused (400); a plain "constructor" key is harmless', async () => {
    const app = await build();
    expect((await post(app, withCustom('{"deep":[{"__proto__":{"polluted":1}}]}'))).statusCode).toBe(400);
    expect((await post(app, withCustom('{"constructor":{"prototype":{"polluted":1}}}'))).statusCode).toBe(400);
    expect((await post(app, withCustom('{"constructor":{"name":"x"},"toString":1,"hasOwnProperty":2}'))).statusCode).toBe(200);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await app.close();
  });

  it('spools (202) when Kafka does not acknowledge, reports the spool in /readyz and /metrics, 503 when full', async () => {
    const publisher = new FakePublisher();
    const one = Buffer.byteLength(fixtureText('completed')) + 400;
    const spool = await Spool.open({ dir: tempDir(), maxBytes: one, logger: pino({ level: 'silent' }) });
    const app = await build({}, publisher, spool);
    publisher.failWith = new IngestError('INGEST_ERR_KAFKA_TIMEOUT');
    const response = await post(app, fixtureText('completed'));
    expect(response.statusCode).toBe(202);
    expect(response.json()).toEqual({ status: 'spooled', job_id: 'job_abc123', events: 2 });
    expect(spool.stats().files).toBe(1);

    const ready = await app.inject({ url: '/readyz' });
    expect(ready.json()).toMatchObject({ spool: { files: 1, bytes: expect.any(Number), oldest_age_seconds: expect.any(Number) } });
    const metrics = (await app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/clustr_ingest_spool_files 1/);
    expect(metrics).toMatch(/clustr_ingest_spool_bytes \d+/);
    expect(metrics).toMatch(/clustr_ingest_spool_oldest_age_seconds [\d.]+/);

    const full = await post(app, fixtureText('failed'));
    expect(full.statusCode).toBe(503);
    expect(full.headers['retry-after']).toBe('5');
    expect(full.json()).toMatchObject({ code: 'INGEST_ERR_SPOOL_FULL' });
    await app.close();
  });

  it('rate limits per IP with 429, Retry-After and a stable code; probes are exempt', async () => {
    const app = await build({ RATE_LIMIT_PER_MINUTE: '3' });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await post(app, fixtureText('completed'))).statusCode);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const limited = await post(app, fixtureText('completed'));
    expect(limited.json()).toMatchObject({ statusCode: 429, code: 'INGEST_ERR_RATE_LIMITED', error: 'Too Many Requests' });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // Another client is not affected.
    expect((await app.inject({ method: 'POST', url: '/webhooks/clustr', headers: json, payload: fixtureText('completed'), remoteAddress: '10.1.2.3' })).statusCode).toBe(200);
    for (let i = 0; i < 10; i++) {
      for (const url of ['/healthz', '/readyz', '/metrics']) expect((await app.inject({ url })).statusCode).toBe(200);
    }
    await app.close();
  });

  it('sheds load with 503 INGEST_ERR_OVERLOADED under pressure; /readyz 503, /healthz 200', async () => {
    const app = await build({ MAX_HEAP_USED_BYTES: '1' });
    await new Promise((r) => setTimeout(r, 1_200)); // under-pressure samples once a second
    const response = await post(app, fixtureText('completed'));
    expect(response.statusCode).toBe(503);
    expect(response.headers['retry-after']).toBe('5');
    expect(response.json()).toMatchObject({ code: 'INGEST_ERR_OVERLOADED' });
    const ready = await app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ pressure: 'overloaded' });
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(200);
    await app.close();
  });
});

describe('slow senders over real HTTP', () => {
  it('get 408 INGEST_ERR_REQUEST_TIMEOUT when the body does not arrive within REQUEST_TIMEOUT_MS', async () => {
    const ingest = await startIngest(testConfig({ REQUEST_TIMEOUT_MS: '1000', HEADERS_TIMEOUT_MS: '500' }), { publisher: new FakePublisher() });
    try {
      const { port } = new URL(ingest.url);
      const socket = connect(Number(port), '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      socket.write('POST /webhooks/clustr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"job_id":');
      const started = Date.now();
      await closed;
      const text = Buffer.concat(chunks).toString();
      expect(text).toMatch(/^HTTP\/1\.1 408/);
      expect(text).toContain('"code":"INGEST_ERR_REQUEST_TIMEOUT"');
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      await ingest.close();
    }
  });

  it('?token= never reaches the logs, also on 4xx and 429 answers', async () => {
    const SECRET = 'another-s3cret-7777';
    const { logger, text } = captureLogs('trace');
    const ingest = await startIngest(testConfig({ WEBHOOK_SECRET: SECRET, LOG_LEVEL: 'trace', RATE_LIMIT_PER_MINUTE: '4' }), { logger, publisher: new FakePublisher() });
    const statuses = [];
    try {
      const url = `${ingest.url}/webhooks/clustr?token=${SECRET}`;
      statuses.push((await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' })).status);
      statuses.push((await fetch(url, { method: 'POST', headers: json, body: Buffer.from([0x7b, 0xff, 0x7d]) })).status);
      statuses.push((await fetch(url, { method: 'POST', headers: json, body: '{"status":"completed"}' })).status);
      statuses.push((await fetch(`${url}&x=1`, { method: 'POST', headers: json, body: fixtureText('completed') })).status);
      statuses.push((await fetch(url, { method: 'POST', headers: json, body: fixtureText('completed') })).status);
    } finally {
      await ingest.close();
    }
    expect(statuses).toEqual([415, 400, 422, 200, 429]);
    expect(text()).toContain('token=[Redacted]');
    expect(text()).not.toContain(SECRET);
  });
});
