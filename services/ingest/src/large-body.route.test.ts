import { gzipSync } from 'node:zlib';
import { makeWebhook } from '@clustr-pipeline/schema';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { LargeJsonBody } from './large-body.js';
import { buildServer } from './server.js';
import { FakePublisher, fixtureText, testConfig } from './testing/helpers.js';

/**
 * The large-body path against the usual one: the same requests to a server that takes it for every
 * body (largeBodyBytes 0) and to one that never does (the default 8 MiB threshold is above these
 * bodies) must give the same answers and publish the same messages, byte for byte.
 */

// No load shedding: a slow test machine must not turn an answer into a 503.
const env = { BODY_LIMIT_MB: '16', MAX_OPPORTUNITIES: '5000', MAX_JSON_DEPTH: '12', MAX_EVENT_LOOP_DELAY_MS: '0' };
const json = { 'content-type': 'application/json' };

interface Server {
  app: FastifyInstance;
  publisher: FakePublisher;
}

function server(largeBodyBytes?: number): Server {
  const publisher = new FakePublisher();
  return { app: buildServer(testConfig(env), { publisher, ...(largeBodyBytes === undefined ? {} : { largeBodyBytes }) }), publisher };
}

const usual = server();
const large = server(0);

/** Everything observable about one request: the answer (minus the Date header) and every message published, iterated twice. */
async function outcome({ app, publisher }: Server, payload: string | Buffer, headers: Record<string, string>) {
  publisher.published.length = 0;
  const response = await app.inject({ method: 'POST', url: '/webhooks/clustr', headers: { ...json, 'x-request-id': 'req-1', ...headers }, payload });
  const { date: _date, ...responseHeaders } = response.headers;
  // Buffer values (dead letters) as text: comparing megabytes of Buffers element by element is slow.
  const snapshot = () =>
    publisher.published.map((batches) =>
      batches.map((batch) => ({ topic: batch.topic, messages: [...batch.messages].map((m) => ({ ...m, value: typeof m.value === 'string' ? m.value : `<buffer>${m.value.toString('base64')}` })) })),
    );
  const published = snapshot();
  // The streams are re-iterable (the spool drainer retries): a second pass gives the same messages.
  expect(snapshot()).toEqual(published);
  return { status: response.statusCode, body: response.body, headers: responseHeaders, published };
}

/** Posts to both servers; returns the (identical) outcome and whether the large server kept to the span path. */
async function both(payload: string | Buffer, headers: Record<string, string> = {}) {
  const from = vi.spyOn(LargeJsonBody, 'from');
  const whole = vi.spyOn(LargeJsonBody.prototype, 'parseWhole');
  try {
    const expected = await outcome(usual, payload, headers);
    expect(from).not.toHaveBeenCalled();
    const actual = await outcome(large, payload, headers);
    expect(actual).toEqual(expected);
    const spanPath = from.mock.results.some((r) => r.value instanceof LargeJsonBody) && whole.mock.calls.length === 0;
    return { ...expected, spanPath };
  } finally {
    from.mockRestore();
    whole.mockRestore();
  }
}

const base = JSON.stringify(makeWebhook({ opportunities: 3_000, perClient: 7, engagements: 2, jobId: 'j', custom: { results: [], note: 'a"]}' } }));
/** `base` with its results changed by `change`. */
const withResults = (change: (results: Array<Record<string, unknown>>) => unknown[]) => {
  const webhook = JSON.parse(base) as { results: Array<Record<string, unknown>> };
  return JSON.stringify({ ...webhook, results: change(webhook.results) });
};
/** `base` with one opportunity's id replaced by `replacement` (raw JSON text). */
const withOpportunity = (index: number, replacement: string) => {
  const id = `"opportunity_id":"opp_j_${index}"`;
  expect(base).toContain(id);
  return base.replace(id, replacement);
};

describe('the large-body path', () => {
  beforeAll(async () => {
    await Promise.all([usual.app.ready(), large.app.ready()]);
  });
  afterAll(async () => {
    await Promise.all([usual.app.close(), large.app.close()]);
  });
  beforeEach(() => {
    // Same receipt time for both servers: received_at is in every event and DLQ header.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-01-02T03:04:05.678Z'));
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('publishes exactly the messages of the usual path', async () => {
    const result = await both(base);
    expect(result.spanPath).toBe(true);
    expect(result.status).toBe(200);
    expect(JSON.parse(result.body)).toEqual({ status: 'accepted', job_id: 'j', events: 3_001 });
    const [batches] = result.published;
    expect(batches!.map((b) => [b.topic, b.messages.length])).toEqual([
      [expect.any(String), 3_000],
      [expect.any(String), 1],
    ]);
  });

  it.each([
    ['pretty-printed', () => JSON.stringify(JSON.parse(base), null, 2), {}],
    ['with a BOM', () => `\ufeff${base}`, {}],
    ['gzip-compressed', () => gzipSync(base), { 'content-encoding': 'gzip' }],
    ['with an escaped key', () => base.replace('"opportunities"', '"opportunit\\u0069es"'), {}],
    ['with null, empty and absent opportunities', () => withResults((results) => [{ ...results[0], opportunities: null }, { client: results[1]!.client }, { ...results[2], opportunities: [] }, ...results.slice(3)]), {}],
    ['the completed fixture', () => fixtureText('completed'), {}],
    ['the full-history fixture', () => fixtureText('completed-full-history'), {}],
  ])('takes the span path for a valid body %s, with the same messages', async (_name, payload, headers: Record<string, string>) => {
    const result = await both(payload(), headers);
    expect(result.status).toBe(200);
    expect(result.spanPath).toBe(true);
  });

  it.each([
    ['schema-invalid opportunity', () => withOpportunity(2_500, '"opportunity_id":42'), 422],
    ['schema-invalid envelope', () => base.replace('"job_id":"j"', '"job_id":5'), 422],
    ['schema-invalid client and opportunity', () => withOpportunity(2_999, '"opportunity_id":""').replace('"client":{', '"client":{"name":1,'), 422],
    ['opportunity that is not an object', () => base.replace('"opportunities":[', '"opportunities":[1,'), 422],
    ['invalid JSON in an opportunity', () => withOpportunity(1_234, '"opportunity_id":"x",'), 400],
    ['invalid JSON in the envelope', () => base.replace('"status":"completed"', '"status":completed'), 400],
    ['invalid UTF-8 in an opportunity', () => Buffer.concat([Buffer.from(withOpportunity(17, '"opportunity_id":"\u0000X"').split('\u0000X')[0]!), Buffer.from([0xc3, 0x28]), Buffer.from(withOpportunity(17, '"opportunity_id":"\u0000X"').split('\u0000X')[1]!)]), 400],
    ['a __proto__ key in an opportunity', () => withOpportunity(99, '"opportunity_id":"x","__proto__":{"polluted":true}'), 400],
    ['a constructor.prototype key in an opportunity', () => withOpportunity(99, '"opportunity_id":"x","constructor":{"prototype":{"polluted":true}}'), 400],
    ['too many opportunities', () => JSON.stringify(makeWebhook({ opportunities: 5_001, jobId: 'j' })), 413],
    ['too many opportunities and invalid JSON', () => JSON.stringify(makeWebhook({ opportunities: 5_001, jobId: 'j' })).replace('"opportunity_id":"opp_j_5000"', '"opportunity_id":'), 400],
    ['nesting too deep in an opportunity', () => withOpportunity(7, `"opportunity_id":"x","deep":${'['.repeat(10)}${']'.repeat(10)}`), 422],
    ['nesting too deep and invalid JSON', () => withOpportunity(7, `"opportunity_id":"x","deep":${'['.repeat(10)}${']'.repeat(9)}`), 400],
    ['a small body nesting too deep (dead-lettered)', () => `{"status":"completed","job_id":"j","results":[{"opportunities":[{"opportunity_id":"x","deep":${'['.repeat(10)}${']'.repeat(10)}}]}]}`, 422],
    ['a small schema-invalid body (dead-lettered)', () => '{"status":"completed","job_id":"j","results":[{"opportunities":[{"opportunity_id":42}]}]}', 422],
    ['an empty body', () => '', 400],
    ['a top-level array', () => `[${base}]`, 422],
  ])('answers a body with %s exactly like the usual path', async (_name, payload, status) => {
    const result = await both(payload());
    expect(result.status).toBe(status);
  });

  it('answers a duplicate opportunities key like the usual path (the last one wins)', async () => {
    const result = await both(base.replace('"opportunities":[', '"opportunities":[{"opportunity_id":"dropped"}],"opportunities":['));
    expect(result.status).toBe(200);
    expect(result.spanPath).toBe(false);
    expect(JSON.parse(result.body)).toMatchObject({ events: 3_001 });
  });

  it('dead-letters a schema-invalid body with the same DLQ message', async () => {
    const result = await both('{"status":"completed","job_id":"j","results":[{"opportunities":[{"opportunity_id":"ok"},{"opportunity_id":7}]}]}');
    expect(result.status).toBe(422);
    expect(result.published).toHaveLength(1);
    expect(result.published[0]![0]!.messages[0]!.key).toBe('req-1');
  });
});
