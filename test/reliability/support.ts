import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { startFaultProxy, type FaultProxy, type MockKafka } from '@clustr-pipeline/devkit';
import { TOPICS, flattenWebhook, makeWebhook, type ClustrWebhook } from '@clustr-pipeline/schema';
import { startDevClickHouseServer, type DevClickHouseServer } from '@clustr-pipeline/sink';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { TestPipeline, type PipelineOptions } from '../harness/pipeline.js';

// Fault injection needs the librdkafka mock broker, and the sink must reach ClickHouse through our
// fault proxy: pin the harness's choices whatever the environment (a Docker engine, KAFKA_BROKERS…).
process.env.TEST_KAFKA = 'mock';
process.env.TEST_CLICKHOUSE = 'embedded';

/** `RELIABILITY_LONG=1`: more webhooks, longer outages. */
export const LONG = process.env.RELIABILITY_LONG === '1' || process.env.RELIABILITY_LONG === 'true';
export const pick = <T>(short: T, long: T): T => (LONG ? long : short);

export const SINK_GROUP = 'clustr-clickhouse-sink';
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface SentWebhook {
  jobId: string;
  opportunities: number;
  /** Engagements over all its opportunities. */
  engagements: number;
  /** HTTP status of every attempt, in order. */
  statuses: number[];
}

export interface VerifyResult {
  lost: number;
  duplicated: number;
  /** Human-readable problems (empty when lost = duplicated = 0 and offsets check out). */
  problems: string[];
}

/**
 * The pipeline under fault injection: mock Kafka, ingest and sink processes (test/harness), and
 * the sink talking to a dev ClickHouse server (chDB, its own process) through a fault proxy.
 * Assertions read ClickHouse directly, never through the proxy.
 */
export class ReliabilityPipeline {
  private readonly clients: ClickHouseClient[] = [];
  private adminClient: Admin | undefined;

  private constructor(
    readonly pipeline: TestPipeline,
    readonly clickhouse: DevClickHouseServer,
    readonly proxy: FaultProxy,
    private readonly dir: string,
  ) {}

  static async start(options: PipelineOptions = {}): Promise<ReliabilityPipeline> {
    const dir = mkdtempSync(join(tmpdir(), 'clustr-reliability-'));
    const clickhouse = await startDevClickHouseServer({ path: join(dir, 'clickhouse'), startTimeoutMs: 120_000 });
    const proxy = await startFaultProxy({ target: clickhouse.url });
    try {
      const pipeline = await TestPipeline.start({
        ...options,
        // The mock keeps ~5 MB per partition: spread the long mode's volume wider.
        partitions: { opportunities: pick(24, 96), jobs: 6, dlq: 3, ...options.partitions },
        ingestEnv: { KAFKA_ACK_TIMEOUT_MS: '2000', LOG_LEVEL: 'warn', ...options.ingestEnv },
        sinkEnv: {
          CLICKHOUSE_URL: proxy.url,
          CLICKHOUSE_REQUEST_TIMEOUT_MS: '20000',
          SINK_RETRY_INITIAL_MS: '200',
          SINK_RETRY_MAX_MS: '2000',
          LOG_LEVEL: 'warn',
          ...options.sinkEnv,
        },
      });
      return new ReliabilityPipeline(pipeline, clickhouse, proxy, dir);
    } catch (err) {
      await proxy.close();
      await clickhouse.stop();
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  get mock(): MockKafka {
    const mock = this.pipeline.kafka.mock;
    if (!mock) throw new Error('fault injection needs the mock Kafka broker');
    return mock;
  }

  get database(): string {
    return this.pipeline.database;
  }

  /** A ClickHouse client straight to the server (not through the proxy). */
  client(): ClickHouseClient {
    if (this.clients.length === 0) this.clients.push(createClient({ url: this.clickhouse.url, request_timeout: 60_000 }));
    return this.clients[0]!;
  }

  async query<T>(sql: string, params: Record<string, unknown> = {}): Promise<T[]> {
    return (await this.client().query({ query: sql, query_params: params, format: 'JSONEachRow' })).json<T>();
  }

  async admin(): Promise<Admin> {
    if (!this.adminClient) {
      const kafka = new Kafka({ clientId: 'reliability-check', brokers: this.pipeline.kafka.brokers, logLevel: logLevel.NOTHING, retry: { retries: 3 } });
      this.adminClient = kafka.admin();
      await this.adminClient.connect();
    }
    return this.adminClient;
  }

  /** Committed offset of the sink's group and end offset, per `topic:partition` (a missing commit = 0). */
  async offsets(): Promise<{ committed: Map<string, number>; end: Map<string, number> }> {
    const admin = await this.admin();
    const committed = new Map<string, number>();
    const end = new Map<string, number>();
    const topics = [TOPICS.opportunities, TOPICS.jobs];
    for (const t of await admin.fetchOffsets({ groupId: SINK_GROUP, topics })) {
      for (const p of t.partitions) committed.set(`${t.topic}:${p.partition}`, Math.max(0, Number(p.offset)));
    }
    for (const topic of topics) {
      for (const p of await admin.fetchTopicOffsets(topic)) end.set(`${topic}:${p.partition}`, Number(p.high));
    }
    return { committed, end };
  }

  /** Sum of committed offsets (a cheap fingerprint of the group's progress). */
  static total(offsets: Map<string, number>): number {
    let sum = 0;
    for (const v of offsets.values()) sum += v;
    return sum;
  }

  /** Waits until the sink's committed offsets equal the end offsets of both topics; returns the lagging partitions. */
  async waitForCommitted(timeoutMs: number): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    let lagging: string[] = ['(never read)'];
    while (Date.now() < deadline) {
      try {
        const { committed, end } = await this.offsets();
        lagging = [...end].filter(([key, high]) => (committed.get(key) ?? 0) !== high).map(([key, high]) => `${key} committed=${committed.get(key) ?? 0} end=${high}`);
        if (lagging.length === 0) return [];
      } catch (err) {
        lagging = [`offsets unreadable: ${(err as Error).message}`];
      }
      await sleep(500);
    }
    return lagging;
  }

  /** Rows per job in the deduplicated tables: count() and uniqExact(event_id). */
  async perJob(jobIds: string[]): Promise<Map<string, { events: number; eventIds: number; engagements: number; opportunities: number; jobs: number; jobIds: number }>> {
    const db = this.database;
    const rows = await this.query<{ job_id: string; t: string; n: string; u: string }>(
      `SELECT job_id, 'events' AS t, count() AS n, uniqExact(event_id) AS u FROM ${db}.opportunity_events WHERE job_id IN {j:Array(String)} GROUP BY job_id
       UNION ALL SELECT job_id, 'engagements', count(), uniqExact(event_id, date, link) FROM ${db}.engagements WHERE job_id IN {j:Array(String)} GROUP BY job_id
       UNION ALL SELECT job_id, 'opportunities', count(), uniqExact(opportunity_id) FROM ${db}.opportunities WHERE job_id IN {j:Array(String)} GROUP BY job_id
       UNION ALL SELECT job_id, 'jobs', count(), uniqExact(event_id) FROM ${db}.jobs WHERE job_id IN {j:Array(String)} GROUP BY job_id`,
      { j: jobIds },
    );
    const out = new Map(jobIds.map((j) => [j, { events: 0, eventIds: 0, engagements: 0, opportunities: 0, jobs: 0, jobIds: 0 }]));
    for (const r of rows) {
      const entry = out.get(r.job_id)!;
      const n = Number(r.n);
      const u = Number(r.u);
      if (r.t === 'events') Object.assign(entry, { events: n, eventIds: u });
      else if (r.t === 'engagements') entry.engagements = n;
      else if (r.t === 'opportunities') entry.opportunities = n;
      else Object.assign(entry, { jobs: n, jobIds: u });
    }
    return out;
  }

  /** Polls until every accepted webhook's events are stored (or the timeout passes). */
  async waitForStored(sent: SentWebhook[], timeoutMs: number): Promise<void> {
    const accepted = sent.filter(isAccepted);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      try {
        const got = await this.perJob(accepted.map((s) => s.jobId));
        if (accepted.every((s) => got.get(s.jobId)!.eventIds >= s.opportunities && got.get(s.jobId)!.jobIds >= 1)) return;
      } catch {
        // the server may be busy
      }
      await sleep(500);
    }
  }

  /**
   * The scenario's verdict: every opportunity of every accepted webhook is stored exactly once in
   * opportunity_events, engagements and opportunities, its job once in jobs; the sink's committed
   * offsets equal the topics' end offsets (every message of the topics came from an accepted
   * webhook of this suite, and each one was verified stored above).
   */
  async verify(sent: SentWebhook[], timeoutMs = pick(90_000, 300_000)): Promise<VerifyResult> {
    await this.waitForStored(sent, timeoutMs);
    const lagging = await this.waitForCommitted(timeoutMs / 2);
    // Let stragglers (a duplicate re-delivered after a crash) land before counting duplicates.
    await sleep(1_500);
    const accepted = sent.filter(isAccepted);
    const got = await this.perJob(accepted.map((s) => s.jobId));
    const problems: string[] = [];
    let lost = 0;
    let duplicated = 0;
    for (const s of accepted) {
      const g = got.get(s.jobId)!;
      const expectedEngagements = s.engagements;
      const missing = s.opportunities - g.eventIds + Math.max(0, 1 - g.jobIds);
      const extra = g.events - g.eventIds + Math.max(0, g.jobs - g.jobIds) + Math.max(0, g.jobIds - 1) +
        Math.max(0, g.engagements - expectedEngagements) + Math.max(0, g.opportunities - s.opportunities);
      if (missing > 0 || g.engagements < expectedEngagements || g.opportunities < s.opportunities) {
        lost += Math.max(missing, expectedEngagements - g.engagements, s.opportunities - g.opportunities, 0);
        problems.push(`${s.jobId}: missing (events ${g.eventIds}/${s.opportunities}, engagements ${g.engagements}/${expectedEngagements}, opportunities ${g.opportunities}/${s.opportunities}, jobs ${g.jobIds}/1)`);
      }
      if (extra > 0) {
        duplicated += extra;
        problems.push(`${s.jobId}: duplicated (events count ${g.events} uniq ${g.eventIds}, engagements ${g.engagements}, opportunities ${g.opportunities}, jobs ${g.jobs})`);
      }
    }
    for (const l of lagging) problems.push(`offsets not committed up to the end: ${l}`);
    return { lost, duplicated, problems };
  }

  async stop(): Promise<void> {
    await this.adminClient?.disconnect().catch(() => undefined);
    await Promise.all(this.clients.splice(0).map((c) => c.close()));
    await this.pipeline.stop();
    await this.proxy.close();
    await this.clickhouse.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Logs of both services, for a failure message. */
  logs(lines = 30): string {
    return `--- ingest ---\n${this.pipeline.ingest.tail(lines)}\n--- sink ---\n${this.pipeline.sink.tail(lines)}`;
  }
}

export const isAccepted = (s: SentWebhook): boolean => s.statuses.some((code) => code === 200 || code === 202);

let serial = 0;
/** A generated webhook with a unique job id (`job_rel_<scenario>_<n>`). */
export function webhook(scenario: string, opportunities: number, engagements = 1): ClustrWebhook {
  return makeWebhook({ opportunities, engagements, jobId: `job_rel_${scenario}_${process.pid}_${serial++}` });
}

/**
 * Sends webhooks like a sender would: `concurrency` at a time, `gapMs` between starts. A webhook
 * the ingest does not accept (not 200/202) is retried after 1 s, up to `retries` times; every
 * status is recorded. A request that fails at the socket counts as status 0.
 */
export async function send(
  target: ReliabilityPipeline,
  webhooks: ClustrWebhook[],
  options: { concurrency?: number; gapMs?: number; retries?: number; onSent?: (index: number, status: number) => void | Promise<void> } = {},
): Promise<SentWebhook[]> {
  const { concurrency = 2, gapMs = 0, retries = 5 } = options;
  const results: SentWebhook[] = webhooks.map((w) => {
    const events = flattenWebhook(w, new Date()).opportunities;
    return { jobId: w.job_id, opportunities: events.length, engagements: events.reduce((n, e) => n + e.engagement_history.length, 0), statuses: [] };
  });
  let next = 0;
  const worker = async () => {
    while (next < webhooks.length) {
      const index = next++;
      for (let attempt = 0; attempt <= retries; attempt++) {
        let status = 0;
        try {
          const response = await target.pipeline.post(webhooks[index]);
          status = response.status;
          await response.arrayBuffer();
        } catch {
          status = 0;
        }
        results[index]!.statuses.push(status);
        await options.onSent?.(index, status);
        if (status === 200 || status === 202) break;
        await sleep(1_000);
      }
      if (gapMs > 0) await sleep(gapMs);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return results;
}

export interface Summary {
  scenario: string;
  sent: SentWebhook[];
  faults: number;
  result: VerifyResult;
  extra?: Record<string, string | number>;
}

/** Prints `scenario=<name> webhooks=N opportunities=N faults=N lost=N duplicated=N [...]`. */
export function summarise({ scenario, sent, faults, result, extra = {} }: Summary): string {
  const accepted = sent.filter(isAccepted);
  const statuses = new Map<number, number>();
  for (const s of sent) for (const code of s.statuses) statuses.set(code, (statuses.get(code) ?? 0) + 1);
  const fields: Record<string, string | number> = {
    scenario,
    webhooks: accepted.length,
    opportunities: accepted.reduce((n, s) => n + s.opportunities, 0),
    faults,
    lost: result.lost,
    duplicated: result.duplicated,
    ...extra,
    statuses: [...statuses].sort(([a], [b]) => a - b).map(([code, n]) => `${code}x${n}`).join(','),
  };
  const line = Object.entries(fields).map(([k, v]) => `${k}=${v}`).join(' ');
  console.log(line);
  return line;
}
