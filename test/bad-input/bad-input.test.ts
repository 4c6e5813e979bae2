import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DLQ_HEADERS, TOPICS, opportunityEventSchema } from '@clustr-pipeline/schema';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestPipeline } from '../harness/pipeline.js';
import {
  MAX_OPPORTUNITIES,
  bombs,
  clickhouseCases,
  jobIdFor,
  loneSurrogateWebhook,
  requestIdFor,
  validWebhook,
  webhookCases,
  type CaseContext,
  type WebhookCase,
} from './cases.js';
import { rawSend, rssBytes, send, sleep, type HttpResult } from './helpers.js';

/**
 * Hostile and broken requests against the running pipeline (ingest, sink and Kafka as separate
 * processes), table-driven from cases.ts. After every group: both processes alive and within
 * memory bounds, nothing invalid on the opportunity topic, every 422 on the DLQ with its raw body.
 */

const SECRET = `bi-secret-${randomBytes(18).toString('hex')}`;
const INGEST_RSS_LIMIT = 1024 ** 3;
const SINK_RSS_LIMIT = 2 * 1024 ** 3;
/** 503s the ingest documents (and that a test may legitimately meet): load shedding. */
const RETRY_CODES = new Set(['INGEST_ERR_OVERLOADED']);

interface DlqMessage {
  value: Buffer;
  headers: Record<string, string>;
}

describe('bad input', () => {
  let pipeline: TestPipeline;
  let consumer: Consumer;
  let ctx: CaseContext;
  let chUrl = '';
  const tokens = new Set<string>([SECRET]);
  /** job_id → opportunity event_ids seen on the topic. */
  const opportunities = new Map<string, Set<string>>();
  /** Problems found on the opportunity topic (invalid events, unexpected job ids). */
  const topicProblems: string[] = [];
  const dlq = new Map<string, DlqMessage[]>();
  const sinkDeadLetters: DlqMessage[] = [];
  /** job_id → opportunities expected in Kafka and ClickHouse (accepted cases and canaries). */
  const acceptedJobs = new Map<string, number>();
  /** Job ids a case could legitimately have published (accepted cases only). */
  const done: WebhookCase[] = [];
  const fiveHundreds: string[] = [];
  const rssLog: string[] = [];

  beforeAll(async () => {
    // Bombs take a few seconds to compress: build them while the pipeline starts.
    const bombsReady = bombs();
    pipeline = await TestPipeline.start({
      partitions: { opportunities: 12, dlq: 6 },
      ingestEnv: {
        WEBHOOK_SECRET: SECRET,
        BODY_LIMIT_MB: '8',
        REQUEST_TIMEOUT_MS: '3000',
        HEADERS_TIMEOUT_MS: '2000',
        RATE_LIMIT_PER_MINUTE: '0',
        MAX_OPPORTUNITIES: String(MAX_OPPORTUNITIES),
        MAX_JSON_DEPTH: '64',
        LOG_LEVEL: 'debug',
      },
      sinkEnv: { LOG_LEVEL: 'debug' },
    });
    ctx = { secret: SECRET, url: pipeline.ingestUrl };
    // The harness keeps the embedded interface's port private; it is the one its client() uses.
    chUrl = `http://127.0.0.1:${(pipeline as unknown as { clickhouseHttpPort: number }).clickhouseHttpPort}`;

    const kafka = new Kafka({ clientId: 'bad-input-observer', brokers: pipeline.kafka.brokers, logLevel: logLevel.NOTHING });
    consumer = kafka.consumer({ groupId: `bad-input-${process.pid}-${Date.now()}`, maxBytesPerPartition: 16 * 1024 * 1024, maxBytes: 64 * 1024 * 1024, sessionTimeout: 10_000 });
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    await consumer.connect();
    await consumer.subscribe({ topics: [TOPICS.opportunities, TOPICS.dlq], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ topic, message }) => {
        const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(Array.isArray(v) ? v[0] : (v ?? ''))]));
        const value = message.value ?? Buffer.alloc(0);
        if (topic === TOPICS.dlq) {
          const entry = { value, headers };
          if (headers[DLQ_HEADERS.stage] !== 'ingest') sinkDeadLetters.push(entry);
          const key = message.key?.toString() ?? '';
          dlq.set(key, [...(dlq.get(key) ?? []), entry]);
          return;
        }
        let event: unknown;
        try {
          event = JSON.parse(value.toString('utf8'));
        } catch {
          topicProblems.push(`not JSON: ${value.subarray(0, 200).toString()}`);
          return;
        }
        const parsed = opportunityEventSchema.safeParse(event);
        if (!parsed.success) {
          topicProblems.push(`invalid OpportunityEvent: ${JSON.stringify(parsed.error.issues).slice(0, 300)}`);
          return;
        }
        const { job_id, event_id } = parsed.data;
        if (!opportunities.has(job_id)) opportunities.set(job_id, new Set());
        opportunities.get(job_id)!.add(event_id);
      },
    });
    await Promise.race([joined, sleep(60_000)]);
    await bombsReady;
  });

  afterAll(async () => {
    await consumer?.disconnect().catch(() => undefined);
    await pipeline?.stop();
  });

  const defaultHeaders = (c: { id: string }): Record<string, string> => ({
    'content-type': 'application/json',
    authorization: `Bearer ${SECRET}`,
    'x-request-id': requestIdFor(c.id),
  });

  /** Sends, retrying while the ingest sheds load (a documented 503 with Retry-After). */
  async function sendWebhook(c: WebhookCase): Promise<HttpResult> {
    const spec = await c.request!(ctx);
    const headers = defaultHeaders(c);
    for (const [name, value] of Object.entries(spec.headers ?? {})) {
      if (value === null) delete headers[name];
      else headers[name] = value;
    }
    for (const token of c.tokens?.(ctx) ?? []) tokens.add(token);
    for (let attempt = 0; ; attempt++) {
      const res = await send(pipeline.ingestUrl, { method: spec.method, path: spec.path ?? '/webhooks/clustr', headers, body: spec.body, chunked: spec.chunked });
      const code = errorCode(res);
      if (res.status === 503 && code && RETRY_CODES.has(code) && attempt < 10) {
        await sleep(2_000);
        continue;
      }
      return res;
    }
  }

  async function runCase(c: WebhookCase): Promise<void> {
    // Every case must find both processes up: a crash is reported against the case that caused it.
    expect(pipeline.ingest.running, 'ingest alive before the case').toBe(true);
    if (c.raw) {
      const res = await rawSend(pipeline.ingestUrl, c.raw, { authorization: `Bearer ${SECRET}`, 'x-request-id': requestIdFor(c.id) });
      expect(res.status, `${c.id}: status (after ${res.elapsedMs} ms)`).toBe(c.status);
      expect(res.closed, `${c.id}: the server closes the connection`).toBe(true);
      // REQUEST_TIMEOUT_MS is 3 s: the answer must not take much longer (Node checks every ~1 s).
      expect(res.elapsedMs).toBeLessThan(10_000);
      done.push(c);
      return;
    }
    const res = await sendWebhook(c);
    if (res.status >= 500) fiveHundreds.push(`${c.id}: ${res.status} ${res.body.slice(0, 200)}`);
    expect(res.status, `${c.id} (${c.title}): ${res.body.slice(0, 300)}`).toBe(c.status);
    if (c.code) expect(errorCode(res), c.id).toBe(c.code);
    if (res.status !== 200) {
      const body = JSON.parse(res.body) as Record<string, unknown>;
      expect(body).toMatchObject({ statusCode: c.status, code: expect.stringMatching(/^INGEST_ERR_/), error: expect.any(String), message: expect.any(String) });
      if (res.status === 401) expect(res.headers['www-authenticate']).toBe('Bearer');
    }
    if (c.outcome === 'accepted') {
      const body = JSON.parse(res.body) as { status: string; job_id: string; events: number };
      expect(body.status).toBe('accepted');
      expect(body.job_id).toBe(jobIdFor(c.id));
      acceptedJobs.set(body.job_id, body.events - 1);
    }
    done.push(c);
  }

  /** The health checks run after every group. */
  async function checkGroup(group: string): Promise<void> {
    // A canary: the ingest still behaves after the group (also after prototype-pollution attempts).
    const canary = validWebhook(`canary-${group}`, 3);
    const res = await send(pipeline.ingestUrl, {
      path: '/webhooks/clustr',
      headers: { ...defaultHeaders({ id: `canary-${group}` }) },
      body: Buffer.from(JSON.stringify(canary)),
    });
    expect(res.status, `canary after ${group}: ${res.body}`).toBe(200);
    expect(JSON.parse(res.body)).toStrictEqual({ status: 'accepted', job_id: canary.job_id, events: 4 });
    acceptedJobs.set(canary.job_id as string, 3);

    expect(pipeline.ingest.running, `ingest alive after ${group}:\n${pipeline.ingest.tail()}`).toBe(true);
    expect(pipeline.sink.running, `sink alive after ${group}:\n${pipeline.sink.tail()}`).toBe(true);
    expect((await fetch(`${pipeline.ingestUrl}/healthz`)).status).toBe(200);
    const ingestRss = rssBytes(pipeline.ingest.pid);
    const sinkRss = rssBytes(pipeline.sink.pid);
    rssLog.push(`${group}: ingest ${mib(ingestRss)} MiB, sink ${mib(sinkRss)} MiB`);
    expect(ingestRss, 'ingest VmRSS').toBeDefined();
    expect(ingestRss!, `ingest VmRSS after ${group}`).toBeLessThan(INGEST_RSS_LIMIT);
    expect(sinkRss!, `sink VmRSS after ${group}`).toBeLessThan(SINK_RSS_LIMIT);

    // Wait until every accepted job's opportunities and every dead letter of this group arrived.
    const groupCases = done.filter((c) => c.group === group);
    const pending = () => [
      ...[...acceptedJobs].filter(([job, n]) => (opportunities.get(job)?.size ?? 0) < n).map(([job]) => `opportunities of ${job}`),
      ...groupCases.filter((c) => c.outcome === 'dlq' && !dlq.has(requestIdFor(c.id))).map((c) => `dead letter of ${c.id}`),
    ];
    const deadline = Date.now() + 30_000;
    while (pending().length > 0 && Date.now() < deadline) await sleep(250);
    await sleep(500); // late extras (a second dead letter, a stray event) would show up by now
    expect(pending(), 'still missing from Kafka').toEqual([]);
    expect(topicProblems, 'opportunity topic').toEqual([]);
    expect([...opportunities.keys()].filter((job) => !acceptedJobs.has(job)), 'opportunities of jobs that were never accepted').toEqual([]);
    for (const [job, n] of acceptedJobs) expect(opportunities.get(job)?.size ?? 0, `opportunities of ${job}`).toBe(n);

    const ctxBodies = { ...ctx };
    for (const c of groupCases) {
      const letters = dlq.get(requestIdFor(c.id)) ?? [];
      if (c.outcome !== 'dlq') {
        expect(letters.length, `${c.id} must not be dead-lettered`).toBe(0);
        continue;
      }
      expect(letters.length, `${c.id}: exactly one dead letter`).toBe(1);
      const [letter] = letters;
      expect(letter!.headers[DLQ_HEADERS.reason], c.id).toBe(c.code);
      expect(letter!.headers[DLQ_HEADERS.stage], c.id).toBe('ingest');
      expect(letter!.headers[DLQ_HEADERS.requestId], c.id).toBe(requestIdFor(c.id));
      const expected = c.dlqBody ? c.dlqBody(ctxBodies) : (await c.request!(ctxBodies)).body!;
      expect(letter!.value.equals(expected), `${c.id}: the DLQ holds the raw body (${letter!.value.length} vs ${expected.length} bytes)`).toBe(true);
    }
    expect(sinkDeadLetters.map((l) => l.headers), 'the sink dead-lettered nothing').toEqual([]);
    expect(fiveHundreds, 'no undocumented 5xx').toEqual([]);
  }

  const groups = [...new Set(webhookCases.map((c) => c.group))];
  for (const group of groups) {
    describe(`group: ${group}`, () => {
      for (const c of webhookCases.filter((x) => x.group === group)) {
        it(`${c.id}: ${c.title} → ${c.status} ${c.code ?? ''} (${c.outcome})`, async (t) => {
          if (c.onlyWithMockKafka && pipeline.kafka.mode !== 'mock') t.skip();
          await runCase(c);
        }, 60_000);
      }
      it(`after ${group}: processes alive, memory bounded, topics clean, 422s dead-lettered`, () => checkGroup(group), 90_000);
    });
  }

  describe('embedded ClickHouse HTTP interface stays read-only', () => {
    const outDir = mkdtempSync(join(tmpdir(), 'bad-input-ch-'));
    const outfile = join(outDir, 'pwned.csv');
    let before: { events: number; jobs: number } | undefined;
    afterAll(() => rmSync(outDir, { recursive: true, force: true }));

    const embedded = () => pipeline.clickhouse.mode === 'embedded';

    it('everything accepted so far is in ClickHouse', async () => {
      const expectedEvents = [...acceptedJobs.values()].reduce((a, b) => a + b, 0);
      const got = await pipeline.waitForCount('opportunity_events', expectedEvents, 60_000, "startsWith(job_id, 'bi_')");
      if (got !== expectedEvents) {
        const rows = await pipeline.query<{ job_id: string; n: string }>(`SELECT job_id, count() AS n FROM ${pipeline.database}.opportunity_events GROUP BY job_id`);
        const inDb = new Map(rows.map((r) => [r.job_id, Number(r.n)]));
        const diff = [...new Set([...inDb.keys(), ...acceptedJobs.keys()])].filter((j) => inDb.get(j) !== acceptedJobs.get(j)).map((j) => `${j}: db ${inDb.get(j)} expected ${acceptedJobs.get(j)}`);
        expect(diff, 'per-job rows in ClickHouse').toEqual([]);
      }
      expect(await pipeline.waitForCount('opportunity_events', expectedEvents, 60_000, "startsWith(job_id, 'bi_')")).toBe(expectedEvents);
      expect(await pipeline.waitForCount('jobs', acceptedJobs.size, 30_000, "startsWith(job_id, 'bi_')")).toBe(acceptedJobs.size);
      before = { events: await pipeline.count('opportunity_events'), jobs: await pipeline.count('jobs') };
    }, 120_000);

    for (const c of clickhouseCases) {
      it(`${c.id}: ${c.title} → ${c.expect}`, async (t) => {
        if (!embedded()) t.skip();
        const sql = c.sql({ database: pipeline.database, outfile, ingestUrl: pipeline.ingestUrl });
        const params = new URLSearchParams(c.params ?? {});
        if (c.viaGet) params.set('query', sql);
        const res = await fetch(`${chUrl}/?${params}`, c.viaGet ? {} : { method: 'POST', body: sql });
        const body = await res.text();
        if (res.status >= 500) fiveHundreds.push(`${c.id}: ${res.status} ${body.slice(0, 200)}`);
        if (c.expect === 'ok-empty') {
          expect(res.status, body).toBe(200);
          expect(body.trim()).toBe('');
        } else {
          expect(res.status, `${c.id} must be refused: ${body}`).toBeGreaterThanOrEqual(400);
          expect(res.status, `${c.id}: refused as a client error, not a server error: ${body}`).toBeLessThan(500);
          expect(body).toMatch(/^Code: \d+\. DB::Exception: /);
        }
      });
    }

    it('afterwards: the tables exist, counts are unchanged, no file was written, the sink still writes', async (t) => {
      if (!embedded()) t.skip();
      const tables = (await pipeline.query<{ name: string }>(`SHOW TABLES FROM ${pipeline.database}`)).map((r) => r.name);
      expect(tables).toEqual(expect.arrayContaining(['jobs', 'opportunity_events', 'opportunities', 'engagements']));
      expect(tables).not.toContain('bi_pwned');
      expect(tables).not.toContain('jobs_old');
      const databases = (await pipeline.query<{ name: string }>('SHOW DATABASES')).map((r) => r.name);
      expect(databases).not.toContain('bi_pwned');
      expect({ events: await pipeline.count('opportunity_events'), jobs: await pipeline.count('jobs') }).toEqual(before);
      expect(existsSync(outfile), 'INTO OUTFILE / file() wrote nothing').toBe(false);
      expect(pipeline.sink.running).toBe(true);
      // Still writable by the sink itself.
      const canary = validWebhook('canary-clickhouse', 3);
      const res = await send(pipeline.ingestUrl, { path: '/webhooks/clustr', headers: defaultHeaders({ id: 'canary-clickhouse' }), body: Buffer.from(JSON.stringify(canary)) });
      expect(res.status).toBe(200);
      expect(await pipeline.waitForCount('opportunity_events', 3, 30_000, 'job_id = {j:String}', { j: canary.job_id })).toBe(3);
      expect(fiveHundreds, 'no 5xx').toEqual([]);
    }, 60_000);
  });

  it('no secret or token value appears in any log line of either process', () => {
    const lines = [...pipeline.ingest.logs, ...pipeline.sink.logs];
    expect(lines.length).toBeGreaterThan(50);
    const leaks = lines.filter((line) => [...tokens].some((token) => line.includes(token) || line.includes(encodeURIComponent(token))));
    expect(leaks.map((l) => l.slice(0, 300))).toEqual([]);
    // And no internal error was logged (500 = a bug).
    expect(pipeline.ingest.logs.filter((l) => l.includes('INGEST_ERR_INTERNAL'))).toEqual([]);
    console.info(`bad-input: ${webhookCases.length} webhook cases, ${clickhouseCases.length} ClickHouse cases; VmRSS per group:\n  ${rssLog.join('\n  ')}`);
  });

  // An escaped lone surrogate ("\ud800") is valid JSON: acked 200, and every row lands (ClickHouse
  // keeps the escape as its literal text instead of refusing the row).
  it('stores a webhook whose strings carry escaped lone surrogates', async () => {
    const res = await send(pipeline.ingestUrl, { path: '/webhooks/clustr', headers: defaultHeaders({ id: 'lone-surrogate' }), body: loneSurrogateWebhook() });
    expect(res.status, res.body).toBe(200);
    const job = jobIdFor('lone-surrogate');
    expect(await pipeline.waitForCount('opportunity_events', 2, 20_000, 'job_id = {j:String}', { j: job })).toBe(2);
    const rows = await pipeline.query<{ t: string | null }>(
      `SELECT prospect_job_title AS t FROM ${pipeline.database}.opportunity_events WHERE job_id = {j:String} AND prospect_job_title LIKE '%ud800%'`,
      { j: job },
    );
    expect(rows).toEqual([{ t: '\\ud800' }]);
    expect(sinkDeadLetters.filter((l) => l.value.toString().includes(job)), 'sink dead letters').toEqual([]);
  }, 60_000);
});

function errorCode(res: HttpResult): string | undefined {
  try {
    return (JSON.parse(res.body) as { code?: string }).code;
  } catch {
    return undefined;
  }
}

const mib = (bytes: number | undefined) => (bytes === undefined ? '?' : (bytes / 1024 / 1024).toFixed(0));
