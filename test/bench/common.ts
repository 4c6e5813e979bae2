import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cloudEventHeaders, flattenWebhook, makeWebhook, TOPICS, type ClustrWebhook } from '@clustr-pipeline/schema';
import { CompressionTypes, Kafka, logLevel, type Producer } from 'kafkajs';

export const benchDir = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(benchDir, '..', '..');

/** Engagement history entries per generated opportunity: ~1.3 kB opportunity events. */
export const ENGAGEMENTS = 1;
export const CE_SOURCE = 'urn:clustr-pipeline:ingest';

export interface OutgoingMessage {
  key: string;
  value: string;
  headers: Record<string, string>;
}

export function webhook(opportunities: number, jobId: string): ClustrWebhook {
  return makeWebhook({ opportunities, jobId, engagements: ENGAGEMENTS });
}

/**
 * The messages the ingest publishes for a webhook (mirrors services/ingest toMessageBatches):
 * one per opportunity (key opportunity_id), then the job event. Pre-flattened for the raw scenarios.
 */
export function webhookMessages(payload: ClustrWebhook, receivedAt = new Date()): { opportunities: OutgoingMessage[]; job: OutgoingMessage } {
  const { job, opportunities } = flattenWebhook(payload, receivedAt);
  const time = job.webhook_timestamp ?? job.received_at;
  return {
    opportunities: opportunities.map((e) => ({
      key: e.opportunity_id,
      value: JSON.stringify(e),
      headers: { ...cloudEventHeaders({ kind: 'opportunity', eventId: e.event_id, source: CE_SOURCE, time, subject: e.opportunity_id }) },
    })),
    job: {
      key: job.job_id,
      value: JSON.stringify(job),
      headers: { ...cloudEventHeaders({ kind: 'job', eventId: job.event_id, source: CE_SOURCE, time, subject: job.job_id }) },
    },
  };
}

export function kafkaClient(brokers: string[], clientId = 'bench'): Kafka {
  return new Kafka({ clientId, brokers, logLevel: logLevel.NOTHING, retry: { retries: 5 } });
}

export type Compression = 'none' | 'gzip';
export const compressionType = (c: Compression) => (c === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None);

/** Same chunking as the ingest's sendInChunks: chunks of `chunk`, at most `inFlight` outstanding, acks=-1. */
export async function sendChunked(producer: Producer, topic: string, messages: OutgoingMessage[], chunk: number, inFlight: number, compression: Compression): Promise<void> {
  const chunks: OutgoingMessage[][] = [];
  for (let i = 0; i < messages.length; i += chunk) chunks.push(messages.slice(i, i + chunk));
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) {
      const messagesChunk = chunks[next++]!;
      await producer.send({ topic, messages: messagesChunk, acks: -1, timeout: 30_000, compression: compressionType(compression) });
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, chunks.length) }, worker));
}

/** Sum of (high - low) watermarks; throws if any partition lost data to the mock's retention (low > 0). */
export async function topicMessageCount(brokers: string[], topic: string): Promise<{ count: number; partitions: number }> {
  const admin = kafkaClient(brokers, 'bench-admin').admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    let count = 0;
    for (const o of offsets) {
      if (Number(o.low) !== 0) throw new Error(`${topic}[${o.partition}] low watermark ${o.low}: the mock broker DROPPED data (retention); use more partitions or fewer events`);
      count += Number(o.high) - Number(o.low);
    }
    return { count, partitions: offsets.length };
  } finally {
    await admin.disconnect();
  }
}

/** Sum of the high watermarks of `topic`: messages ever appended (retention drops do not lower it). */
export async function highWatermarkSum(brokers: string[], topic: string): Promise<number> {
  const admin = kafkaClient(brokers, 'bench-admin').admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((n, o) => n + Number(o.high), 0);
  } finally {
    await admin.disconnect();
  }
}

/** Partitions so that `bytes` stay well under the mock's 5 MB per partition (≤ 3.5 MB each on average). */
export function partitionsFor(bytes: number, min = 8): number {
  let p = min;
  while (bytes / p > 3.5 * 1024 * 1024) p *= 2;
  return p;
}

/**
 * Fills `topic` with `count` opportunity events (webhooks of `perWebhook` opportunities), sending
 * `chunk` messages per produce request so each stored batch holds many messages (the mock returns
 * one stored batch per partition per fetch). Verifies the topic then holds exactly `count`.
 */
export async function fillTopic(brokers: string[], topic: string, count: number, opts: { chunk?: number; perWebhook?: number; prefix?: string } = {}): Promise<{ ms: number; bytes: number }> {
  const { chunk = 20_000, perWebhook = 10_000, prefix = 'bench_fill' } = opts;
  const producer = kafkaClient(brokers, 'bench-fill').producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const t0 = performance.now();
  let bytes = 0;
  try {
    for (let sent = 0, w = 0; sent < count; w++) {
      const n = Math.min(perWebhook, count - sent);
      const { opportunities } = webhookMessages(webhook(n, `${prefix}_${w}`));
      for (const m of opportunities) bytes += m.value.length;
      await sendChunked(producer, topic, opportunities, chunk, 2, 'none');
      sent += n;
    }
  } finally {
    await producer.disconnect();
  }
  const ms = performance.now() - t0;
  const { count: stored } = await topicMessageCount(brokers, topic);
  if (stored !== count) throw new Error(`fill: ${topic} holds ${stored} messages, expected ${count}`);
  return { ms, bytes };
}

/** Peak memory of a process from /proc (kB → MB). VmHWM is the kernel's own high-water mark. */
export function procMemory(pid: number): { rssMb: number; hwmMb: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/** Samples VmRSS every `everyMs` and keeps the max (and the last VmHWM seen). */
export class RssSampler {
  peakRssMb = 0;
  hwmMb = 0;
  #timer: NodeJS.Timeout | undefined;
  constructor(private readonly pid: number, everyMs = 50) {
    this.#timer = setInterval(() => this.sample(), everyMs);
    this.#timer.unref();
  }
  sample(): void {
    const m = procMemory(this.pid);
    if (!m) return;
    if (m.rssMb > this.peakRssMb) this.peakRssMb = m.rssMb;
    if (m.hwmMb > this.hwmMb) this.hwmMb = m.hwmMb;
  }
  stop(): { peakRssMb: number; hwmMb: number } {
    this.sample();
    clearInterval(this.#timer);
    return { peakRssMb: this.peakRssMb, hwmMb: this.hwmMb };
  }
}

/**
 * Runs `scenario.run(args)` of a bench module in its own Node process (own heap, own chDB engine,
 * RSS measurable), returning its result and the child's peak RSS.
 */
export async function runInChild<T>(module: string, args: unknown, opts: { timeoutMs?: number; nodeArgs?: string[] } = {}): Promise<{ result: T; peakRssMb: number }> {
  const entry = join(benchDir, 'child.ts');
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), ...cpuProfArgs(module), '--import', 'tsx', entry, module, JSON.stringify(args)], {
    cwd: repoRoot,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const sampler = new RssSampler(child.pid!, 100);
  let result: T | undefined;
  let error: string | undefined;
  child.on('message', (m: { ok: boolean; result?: T; error?: string }) => {
    if (m.ok) result = m.result;
    else error = m.error;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15 * 60_000);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(timer);
  const { peakRssMb, hwmMb } = sampler.stop();
  if (error) throw new Error(`${module}: ${error}`);
  if (code !== 0 || result === undefined) throw new Error(`${module}: child exited with code ${code} and no result`);
  return { result, peakRssMb: Math.max(peakRssMb, hwmMb) };
}

/** `--cpu-prof` runs: profiles of each child / service process go to BENCH_CPU_PROF_DIR. */
export function cpuProfArgs(name: string): string[] {
  const dir = process.env.BENCH_CPU_PROF_DIR;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`] : [];
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

export { TOPICS };

export interface LoadResult {
  /** Operations completed after the warm-up. */
  completed: number;
  /** From the end of the warm-up to the last completion. */
  windowMs: number;
  /** Latency of each operation completed after the warm-up, ms. */
  latenciesMs: number[];
  /** Every operation completed, warm-up included (for verifying counts). */
  total: number;
}

/**
 * Closed-loop load: `concurrency` senders each run `op(sender, i)` back to back until `durationMs`
 * has passed; no new operation starts after that, and the ones in flight are awaited. Operations
 * completing during the first `warmupMs` are not counted. Any failed operation fails the run.
 */
export async function closedLoop(concurrency: number, durationMs: number, warmupMs: number, op: (sender: number, i: number) => Promise<void>): Promise<LoadResult> {
  const start = performance.now();
  const warmEnd = start + warmupMs;
  const end = warmEnd + durationMs;
  let completed = 0;
  let total = 0;
  let last = warmEnd;
  const latenciesMs: number[] = [];
  const sender = async (s: number) => {
    for (let i = 0; performance.now() < end; i++) {
      const t = performance.now();
      await op(s, i);
      const done = performance.now();
      total++;
      if (done >= warmEnd) {
        completed++;
        last = done;
        latenciesMs.push(done - t);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, s) => sender(s)));
  return { completed, windowMs: last - warmEnd, latenciesMs, total };
}
