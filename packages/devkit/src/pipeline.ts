/**
 * `npm start` at the repo root: the whole pipeline on one machine, for development and demos.
 *
 *   - Kafka: KAFKA_BROKERS if set, else the in-memory librdkafka mock broker (development only).
 *   - ingest on INGEST_PORT (8080), the sink with embedded ClickHouse (served over the ClickHouse
 *     HTTP interface on CLICKHOUSE_HTTP_PORT, 8123) unless CLICKHOUSE_URL is set.
 *
 * Ctrl-C stops the ingest first (no new webhooks), then the sink (flush + commit), then the broker.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { TOPICS } from '@clustr-pipeline/schema';
import { startMockKafka, type MockKafka } from './mock-kafka.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const env = process.env;
const ingestPort = Number(env.INGEST_PORT ?? env.PORT ?? 8080);
const clickhouseHttpPort = Number(env.CLICKHOUSE_HTTP_PORT ?? 8123);
const metricsPort = Number(env.METRICS_PORT ?? 9464);

/** Partitions for the development broker: each mock partition keeps only ~5 MB, so spread wide. */
const DEV_TOPICS = { [TOPICS.opportunities]: 32, [TOPICS.jobs]: 4, [TOPICS.dlq]: 4 };

function log(message: string): void {
  process.stdout.write(`[pipeline] ${message}\n`);
}

function prefixLines(child: ChildProcess, name: string): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on('line', (line) => process.stdout.write(`[${name}] ${line}\n`));
  }
}

function startService(name: string, entry: string, extraEnv: Record<string, string>): ChildProcess {
  const path = join(root, entry);
  if (!existsSync(path)) throw new Error(`${relative(root, path)} is missing: run \`npm run build\` first`);
  const child = spawn(process.execPath, [path], { env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  prefixLines(child, name);
  return child;
}

async function waitFor(url: string, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const response = await fetch(url);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${what} did not become ready at ${url} within ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function stopChild(child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveStop) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolveStop();
    });
    child.kill('SIGTERM');
  });
}

async function main(): Promise<void> {
  let mock: MockKafka | undefined;
  let brokers = env.KAFKA_BROKERS;
  if (!brokers) {
    mock = await startMockKafka({ brokers: 1, topics: DEV_TOPICS });
    brokers = mock.brokers.join(',');
    log(`KAFKA_BROKERS is unset: started the DEVELOPMENT-ONLY in-memory Kafka broker (librdkafka mock) at ${brokers}.`);
    log('It keeps ~5 MB per partition and loses everything on exit. Set KAFKA_BROKERS to use a real cluster.');
  }

  const ingest = startService('ingest', 'services/ingest/dist/main.js', { KAFKA_BROKERS: brokers, PORT: String(ingestPort) });
  const sink = startService('sink', 'services/sink/dist/main.js', {
    KAFKA_BROKERS: brokers,
    CLICKHOUSE_HTTP_PORT: String(clickhouseHttpPort),
    CLICKHOUSE_EMBEDDED_PATH: env.CLICKHOUSE_EMBEDDED_PATH ?? join(root, 'data', 'clickhouse'),
    METRICS_PORT: String(metricsPort),
  });

  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    log('stopping: ingest, then sink (flush + commit), then the broker…');
    await stopChild(ingest);
    await stopChild(sink);
    await mock?.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));
  for (const [name, child] of [['ingest', ingest], ['sink', sink]] as const) {
    child.once('exit', (code, signal) => {
      if (stopping) return;
      log(`${name} exited unexpectedly (${signal ?? `code ${code}`}); stopping the pipeline`);
      void shutdown(1);
    });
  }

  await waitFor(`http://127.0.0.1:${ingestPort}/readyz`, 'ingest');
  await waitFor(`http://127.0.0.1:${metricsPort}/healthz`, 'sink');
  const sample = relative(process.cwd(), join(root, 'packages/schema/fixtures/completed-full-history.json')) || 'packages/schema/fixtures/completed-full-history.json';
  const chUrl = env.CLICKHOUSE_URL ? '<your CLICKHOUSE_URL>' : `http://127.0.0.1:${clickhouseHttpPort}`;
  log('ready. Send the bundled sample webhook:');
  process.stdout.write(
    `\n  curl -sS -X POST http://127.0.0.1:${ingestPort}/webhooks/clustr -H 'content-type: application/json' --data-binary @${sample}\n\n`,
  );
  log('then query the result (ClickHouse HTTP interface, read-only):');
  process.stdout.write(
    `\n  curl -sS '${chUrl}/?default_format=PrettyCompact' --data-binary 'SELECT opportunity_id, client_name, prospect_name, company_name, confidence_score FROM clustr.opportunity_events'\n\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`[pipeline] ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
