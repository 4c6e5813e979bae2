import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { startTestKafka, type TestKafka } from '@clustr-pipeline/devkit';
import { TOPICS } from '@clustr-pipeline/schema';
import { startTestClickHouse, type TestClickHouse } from './clickhouse.js';
import { freePort } from './ports.js';
import { ServiceProcess } from './service.js';

export interface PipelineOptions {
  /** Partitions per topic (the mock keeps ~5 MB per partition: size for the volume a test sends). */
  partitions?: Partial<Record<keyof typeof TOPICS, number>>;
  ingestEnv?: Record<string, string>;
  sinkEnv?: Record<string, string>;
}

/** The whole pipeline as separate processes: Kafka, ingest, sink (+ ClickHouse), on free ports. */
export class TestPipeline {
  ingest!: ServiceProcess;
  sink!: ServiceProcess;
  ingestUrl = '';
  metricsUrl = '';
  /** ClickHouse database the sink writes (unique per pipeline when sharing a server). */
  database = 'clustr';
  private clickhouseHttpPort = 0;
  private dataDir = '';
  private ingestPort = 0;

  private constructor(
    readonly kafka: TestKafka,
    readonly clickhouse: TestClickHouse,
    private readonly options: PipelineOptions,
  ) {}

  static async start(options: PipelineOptions = {}): Promise<TestPipeline> {
    const p = options.partitions ?? {};
    const kafka = await startTestKafka({
      [TOPICS.opportunities]: p.opportunities ?? 12,
      [TOPICS.jobs]: p.jobs ?? 3,
      [TOPICS.dlq]: p.dlq ?? 3,
    });
    const clickhouseHttpPort = await freePort();
    const clickhouse = await startTestClickHouse(clickhouseHttpPort);
    const pipeline = new TestPipeline(kafka, clickhouse, options);
    pipeline.clickhouseHttpPort = clickhouseHttpPort;
    pipeline.dataDir = mkdtempSync(join(tmpdir(), 'clustr-e2e-'));
    if (clickhouse.mode !== 'embedded') pipeline.database = `clustr_e2e_${process.pid}_${Date.now()}`;
    pipeline.ingestPort = await freePort();
    pipeline.ingestUrl = `http://127.0.0.1:${pipeline.ingestPort}`;
    await Promise.all([pipeline.startIngest(), pipeline.startSink()]);
    return pipeline;
  }

  async startIngest(): Promise<void> {
    this.ingest = new ServiceProcess('ingest', {
      PORT: String(this.ingestPort),
      HOST: '127.0.0.1',
      KAFKA_BROKERS: this.kafka.brokers.join(','),
      INGEST_SPOOL_DIR: join(this.dataDir, 'spool'),
      ...this.options.ingestEnv,
    }).start();
    await this.ingest.waitUntilReady(`${this.ingestUrl}/readyz`);
  }

  async startSink(): Promise<void> {
    const metricsPort = await freePort();
    this.metricsUrl = `http://127.0.0.1:${metricsPort}`;
    this.sink = new ServiceProcess('sink', {
      KAFKA_BROKERS: this.kafka.brokers.join(','),
      METRICS_PORT: String(metricsPort),
      METRICS_HOST: '127.0.0.1',
      CLICKHOUSE_DATABASE: this.database,
      CLICKHOUSE_EMBEDDED_PATH: join(this.dataDir, 'clickhouse'),
      CLICKHOUSE_HTTP_PORT: String(this.clickhouseHttpPort),
      SINK_FLUSH_MS: '200',
      // The mock broker ignores LeaveGroup: a restarted member waits out the old session.
      KAFKA_SESSION_TIMEOUT_MS: '6000',
      ...this.clickhouse.sinkEnv,
      ...this.options.sinkEnv,
    }).start();
    await this.sink.waitUntilReady(`${this.metricsUrl}/healthz`, 120_000);
  }

  /** A ClickHouse client for assertions (embedded mode: through the sink's HTTP interface). */
  client(): ClickHouseClient {
    return this.clickhouse.client();
  }

  /** POSTs a webhook (object or raw text) to the ingest. */
  async post(body: unknown, headers: Record<string, string> = {}, path = '/webhooks/clustr'): Promise<Response> {
    return fetch(`${this.ingestUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
    });
  }

  async query<T>(sql: string, params: Record<string, unknown> = {}): Promise<T[]> {
    const result = await this.client().query({ query: sql, query_params: params, format: 'JSONEachRow' });
    return result.json<T>();
  }

  async count(table: string, where = '1', params: Record<string, unknown> = {}): Promise<number> {
    const rows = await this.query<{ n: string }>(`SELECT count() AS n FROM ${this.database}.${table} WHERE ${where}`, params);
    return Number(rows[0]?.n ?? 0);
  }

  /** Polls `count(table)` until it equals `expected` (or the timeout passes); returns the last count. */
  async waitForCount(table: string, expected: number, timeoutMs = 30_000, where = '1', params: Record<string, unknown> = {}): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    while (Date.now() < deadline) {
      try {
        last = await this.count(table, where, params);
        if (last === expected) return last;
      } catch {
        // the sink may be restarting
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    return last;
  }

  async stop(): Promise<void> {
    await this.ingest?.stop();
    await this.clickhouse.stop();
    await this.sink?.stop();
    await this.kafka.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
