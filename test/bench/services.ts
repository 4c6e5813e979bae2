import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ServiceProcess } from '../harness/service.js';
import { freePort } from '../harness/ports.js';
import { benchDir, repoRoot } from './common.js';

/** NODE_OPTIONS for a service when profiling (--cpu-prof): one .cpuprofile per process in BENCH_CPU_PROF_DIR. */
function profEnv(name: string): Record<string, string> {
  const dir = process.env.BENCH_CPU_PROF_DIR;
  // Node 20 refuses --cpu-prof in NODE_OPTIONS: a preload starts the inspector's profiler instead.
  return dir ? { NODE_OPTIONS: `--import ${pathToFileURL(join(benchDir, 'cpu-prof-preload.mjs')).href}`, BENCH_CPU_PROF_FILE: join(dir, `${name}-${Date.now()}.cpuprofile`) } : {};
}

/** The services as processes (node services/<name>/dist/main.js), as in production. */

export function assertBuilt(name: 'ingest' | 'sink'): void {
  const entry = join(repoRoot, 'services', name, 'dist', 'main.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\` (npm run bench does)`);
}

export interface RunningIngest {
  svc: ServiceProcess;
  url: string;
  port: number;
  stop(): Promise<void>;
}

export async function startIngest(brokers: string[], env: Record<string, string> = {}): Promise<RunningIngest> {
  assertBuilt('ingest');
  const port = await freePort();
  // Its own spool directory (the default ./data/spool would be shared with other runs), and no
  // per-address rate limit: every request comes from this one load generator.
  const spoolDir = mkdtempSync(join(tmpdir(), 'bench-ingest-spool-'));
  const svc = new ServiceProcess('ingest', {
    PORT: String(port),
    HOST: '127.0.0.1',
    KAFKA_BROKERS: brokers.join(','),
    LOG_LEVEL: 'warn',
    INGEST_SPOOL_DIR: spoolDir,
    RATE_LIMIT_PER_MINUTE: '0',
    ...profEnv('ingest'),
    ...env,
  }).start();
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await svc.stop();
    rmSync(spoolDir, { recursive: true, force: true });
  };
  try {
    await svc.waitUntilReady(`${url}/readyz`, 60_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { svc, url, port, stop };
}

export interface RunningSink {
  svc: ServiceProcess;
  chUrl: string;
  metricsUrl: string;
  database: string;
  stop(): Promise<void>;
  count(where?: string): Promise<number>;
  query(sql: string): Promise<string>;
}

export async function startSink(brokers: string[], env: Record<string, string> = {}, readyTimeoutMs = 120_000): Promise<RunningSink> {
  assertBuilt('sink');
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-sink-'));
  const [metricsPort, chPort] = [await freePort(), await freePort()];
  const database = 'clustr';
  const svc = new ServiceProcess('sink', {
    KAFKA_BROKERS: brokers.join(','),
    METRICS_PORT: String(metricsPort),
    METRICS_HOST: '127.0.0.1',
    CLICKHOUSE_DATABASE: database,
    CLICKHOUSE_EMBEDDED_PATH: join(dataDir, 'clickhouse'),
    CLICKHOUSE_HTTP_PORT: String(chPort),
    LOG_LEVEL: 'warn',
    ...profEnv('sink'),
    ...env,
  }).start();
  const chUrl = `http://127.0.0.1:${chPort}`;
  const metricsUrl = `http://127.0.0.1:${metricsPort}`;
  const query = async (sql: string) => {
    const res = await fetch(`${chUrl}/`, { method: 'POST', body: sql });
    const text = await res.text();
    if (!res.ok) throw new Error(`sink HTTP ${res.status}: ${text.slice(0, 300)}`);
    return text;
  };
  try {
    await svc.waitUntilReady(`${metricsUrl}/healthz`, readyTimeoutMs);
  } catch (error) {
    await svc.stop(5_000);
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    svc,
    chUrl,
    metricsUrl,
    database,
    query,
    count: async (where = '1') => Number((await query(`SELECT count() FROM ${database}.opportunity_events WHERE ${where}`)).trim()),
    stop: async () => {
      await svc.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Minimal keep-alive HTTP POST (cheaper than fetch for thousands of small requests). */
export class Poster {
  readonly agent: Agent;
  constructor(private readonly url: string, maxSockets: number) {
    this.agent = new Agent({ keepAlive: true, maxSockets });
  }
  post(path: string, body: string | Buffer): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request(`${this.url}${path}`, { method: 'POST', agent: this.agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }
  close(): void {
    this.agent.destroy();
  }
}

export async function postOk(poster: Poster, body: string | Buffer): Promise<void> {
  const r = await poster.post('/webhooks/clustr', body);
  // 202 = spooled to disk because Kafka did not ack in time: not what this benchmark measures.
  if (r.status !== 200) throw new Error(`ingest answered ${r.status} (only 200 = acknowledged by Kafka counts): ${r.body.slice(0, 300)}`);
}
