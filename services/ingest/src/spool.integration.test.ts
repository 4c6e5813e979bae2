import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ApiKey, KafkaErrorCode, startMockKafka, type MockKafka } from '@clustr-pipeline/devkit';
import { makeWebhook, TOPICS, type JobEvent, type OpportunityEvent } from '@clustr-pipeline/schema';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startIngest, type RunningIngest } from './app.js';
import { closedPort, tempDir, testConfig, waitFor } from './testing/helpers.js';

/**
 * The disk spool against the librdkafka mock broker (it needs fault injection): Kafka down →
 * 202 + files on disk → Kafka back → published in arrival order, spool empty. Then the same
 * across a SIGKILL of a real `node dist/main.js` process.
 */

const SERVICE_DIR = fileURLToPath(new URL('..', import.meta.url));
const spoolFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.webhook')).sort();
const post = (url: string, body: string) =>
  fetch(`${url}/webhooks/clustr`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

interface Received {
  topic: string;
  value: string;
}

async function consumeAll(brokers: string[], received: Received[]): Promise<Consumer> {
  const consumer = new Kafka({ clientId: 'spool-it', brokers, logLevel: logLevel.NOTHING }).consumer({ groupId: `spool-it-${Date.now()}-${Math.random()}`, maxWaitTimeInMs: 200 });
  await consumer.connect();
  await consumer.subscribe({ topics: [TOPICS.opportunities, TOPICS.jobs], fromBeginning: true });
  await consumer.run({ eachMessage: async ({ topic, message }) => void received.push({ topic, value: String(message.value) }) });
  return consumer;
}

const jobsOf = (received: Received[]) => received.filter((m) => m.topic === TOPICS.jobs).map((m) => (JSON.parse(m.value) as JobEvent).job_id);
const oppsOf = (received: Received[], jobId: string) =>
  received.filter((m) => m.topic === TOPICS.opportunities && (JSON.parse(m.value) as OpportunityEvent).job_id === jobId);

describe('spool with the broker down, then up', () => {
  let mock: MockKafka;
  let ingest: RunningIngest;
  let consumer: Consumer | undefined;
  const received: Received[] = [];

  beforeAll(async () => {
    // One partition for jobs: its order is the publish order.
    mock = await startMockKafka({ topics: { [TOPICS.opportunities]: 6, [TOPICS.jobs]: 1, [TOPICS.dlq]: 1 } });
    ingest = await startIngest(testConfig({ KAFKA_BROKERS: mock.brokers.join(','), KAFKA_ACK_TIMEOUT_MS: '1500', KAFKA_PUBLISH_CHUNK: '50' }));
    await waitFor(async () => (await fetch(`${ingest.url}/readyz`)).status === 200, 30_000, '/readyz 200');
  });
  afterAll(async () => {
    await consumer?.disconnect();
    await ingest?.close();
    await mock?.stop();
  });

  it('answers 202 and spools while down, drains in arrival order once up, and goes back to 200', async () => {
    const dir = ingest.spool!.dir;
    expect((await post(ingest.url, JSON.stringify(makeWebhook({ opportunities: 3, jobId: 'job_before' })))).status).toBe(200);

    await mock.setBrokerDown(1);
    const ids = ['job_s1', 'job_s2', 'job_s3', 'job_s4'];
    for (const [i, jobId] of ids.entries()) {
      const response = await post(ingest.url, JSON.stringify(makeWebhook({ opportunities: 120 + i, jobId })));
      expect(response.status).toBe(202);
      expect(await response.json()).toEqual({ status: 'spooled', job_id: jobId, events: 120 + i + 1 });
    }
    expect(spoolFiles(dir)).toHaveLength(4);
    const ready = (await (await fetch(`${ingest.url}/readyz`)).json()) as { spool: { files: number; bytes: number } };
    expect(ready.spool.files).toBe(4);
    expect(ready.spool.bytes).toBeGreaterThan(0);

    await mock.setBrokerUp(1);
    await waitFor(() => spoolFiles(dir).length === 0 && ingest.spool!.isEmpty(), 45_000, 'the spool to drain');
    // Kafka is back and the spool empty: straight to Kafka again.
    await waitFor(async () => (await post(ingest.url, JSON.stringify(makeWebhook({ opportunities: 2, jobId: 'job_after' })))).status === 200, 20_000, 'a 200');

    consumer = await consumeAll(mock.brokers, received);
    await waitFor(() => jobsOf(received).includes('job_after'), 30_000, 'all job events');
    // Arrival order on the jobs topic (a webhook may appear twice if its first send half-succeeded).
    const order = jobsOf(received).filter((id, i, all) => all.indexOf(id) === i);
    expect(order).toEqual(['job_before', ...ids, 'job_after']);
    for (const [i, jobId] of ids.entries()) {
      await waitFor(() => new Set(oppsOf(received, jobId).map((m) => (JSON.parse(m.value) as OpportunityEvent).event_id)).size === 120 + i, 20_000, `opportunities of ${jobId}`);
    }
    const metrics = await (await fetch(`${ingest.url}/metrics`)).text();
    expect(metrics).toMatch(/clustr_ingest_spool_files 0/);
    expect(metrics).toMatch(/clustr_ingest_spool_drained_total 4/);
  });

  it('spools a webhook whose produce requests keep timing out (injected REQUEST_TIMED_OUT), then delivers it', async () => {
    await mock.injectErrors(ApiKey.Produce, KafkaErrorCode.REQUEST_TIMED_OUT, 8);
    const response = await post(ingest.url, JSON.stringify(makeWebhook({ opportunities: 5, jobId: 'job_timeouts' })));
    expect(response.status).toBe(202);
    await waitFor(() => ingest.spool!.isEmpty(), 45_000, 'the spool to drain');
    await waitFor(() => jobsOf(received).includes('job_timeouts'), 30_000, 'the job event');
    await waitFor(() => new Set(oppsOf(received, 'job_timeouts').map((m) => m.value)).size === 5, 30_000, 'its 5 opportunities');
  });
});

describe('crash safety: SIGKILL right after a 202, restart on the same spool', () => {
  let mock: MockKafka;
  let child: ChildProcess | undefined;
  let consumer: Consumer | undefined;

  beforeAll(() => {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: SERVICE_DIR, stdio: 'inherit' });
  }, 120_000);
  afterEach(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });
  afterAll(async () => {
    await consumer?.disconnect();
    await mock?.stop();
  });

  async function run(env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
    const port = await closedPort();
    const proc = spawn(process.execPath, ['dist/main.js'], {
      cwd: SERVICE_DIR,
      env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', KAFKA_ACK_TIMEOUT_MS: '1000', ...env },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    child = proc;
    const url = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.status === 200, 20_000, 'the ingest process to listen');
    return { child: proc, url };
  }

  it('the spooled webhook is published by the next process', async () => {
    const dir = tempDir('clustr-ingest-crash-');
    mock = await startMockKafka({ topics: { [TOPICS.opportunities]: 3, [TOPICS.jobs]: 1, [TOPICS.dlq]: 1 } });
    await mock.setBrokerDown(1);
    const first = await run({ KAFKA_BROKERS: mock.brokers.join(','), INGEST_SPOOL_DIR: dir });
    const response = await post(first.url, JSON.stringify(makeWebhook({ opportunities: 25, jobId: 'job_crash' })));
    expect(response.status).toBe(202);
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    expect(spoolFiles(dir)).toHaveLength(1);

    await mock.setBrokerUp(1);
    await run({ KAFKA_BROKERS: mock.brokers.join(','), INGEST_SPOOL_DIR: dir });
    await waitFor(() => spoolFiles(dir).length === 0, 30_000, 'the new process to drain the spool');

    const received: Received[] = [];
    consumer = await consumeAll(mock.brokers, received);
    await waitFor(() => jobsOf(received).includes('job_crash') && oppsOf(received, 'job_crash').length >= 25, 30_000, 'the events of job_crash');
    expect(new Set(oppsOf(received, 'job_crash').map((m) => (JSON.parse(m.value) as OpportunityEvent).event_id)).size).toBe(25);
  });
});
