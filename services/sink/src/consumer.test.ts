import { DLQ_HEADERS, flattenWebhook, makeWebhook } from '@clustr-pipeline/schema';
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { SinkConsumer, type BatchWriter, type ConsumerPort, type EachBatchLike, type InsertBatch, type WriteErrorInfo } from './consumer.js';
import { toDlqMessage, type DeadLetter, type DeadLetterSink } from './dlq.js';
import { SinkMetrics } from './metrics.js';
import { topicRoutes } from './rows.js';

const OPP = 'clustr.opportunities.v1';
const JOBS = 'clustr.jobs.v1';
const logger = pino({ level: 'silent' });
const { opportunities, job } = flattenWebhook(makeWebhook({ opportunities: 50, engagements: 1 }), new Date('2025-01-01T00:00:00Z'));
const lines = opportunities.map((o) => JSON.stringify(o));

class WriteError extends Error {
  constructor(
    message: string,
    readonly retriable: boolean,
    readonly code = retriable ? 'CH_UNAVAILABLE' : 'CH_BAD_DATA',
  ) {
    super(message);
  }
}
const classify = (err: unknown): WriteErrorInfo => {
  const e = err instanceof WriteError ? err : new WriteError(String(err), true, 'CH_UNKNOWN');
  return { retriable: e.retriable, code: e.code, message: e.message, badData: e.code === 'CH_BAD_DATA' };
};

/** Stores rows by event id like the real writer (drops ids it already has). */
class FakeWriter implements BatchWriter {
  readonly stored = new Map<string, string>();
  readonly calls: InsertBatch[] = [];
  failNext = 0;
  failWith: ((batch: InsertBatch) => Error | null) | null = null;
  gate: Promise<void> | null = null;
  async insert(batch: InsertBatch) {
    this.calls.push(batch);
    if (this.gate) await this.gate;
    if (this.failNext > 0) {
      this.failNext--;
      throw new WriteError('connect ECONNREFUSED', true);
    }
    const failure = this.failWith?.(batch);
    if (failure) throw failure;
    let inserted = 0;
    for (const r of batch.rows) {
      if (this.stored.has(r.eventId)) continue;
      this.stored.set(r.eventId, r.line);
      inserted++;
    }
    return { inserted, duplicates: batch.rows.length - inserted };
  }
}

class FakeDlq implements DeadLetterSink {
  readonly sent: DeadLetter[] = [];
  async publish(entries: readonly DeadLetter[]) {
    this.sent.push(...entries);
  }
}

class FakeConsumer implements ConsumerPort {
  readonly commits: Array<Array<{ topic: string; partition: number; offset: string }>> = [];
  readonly events: string[] = [];
  eachBatch: ((p: EachBatchLike) => Promise<void>) | null = null;
  private joinListener: ((a: Record<string, number[]>) => void) | null = null;
  constructor(private readonly assignment: Record<string, number[]> = { [OPP]: [0, 1], [JOBS]: [0] }) {}
  async connect() {}
  async subscribe() {}
  async run(c: { eachBatch(p: EachBatchLike): Promise<void> }) {
    this.eachBatch = c.eachBatch;
    this.joinListener?.(this.assignment);
  }
  async commitOffsets(offsets: Array<{ topic: string; partition: number; offset: string }>) {
    this.commits.push(offsets);
    this.events.push('commit');
  }
  pause() {
    this.events.push('pause');
  }
  resume() {
    this.events.push('resume');
  }
  async disconnect() {
    this.events.push('disconnect');
  }
  onGroupJoin(l: (a: Record<string, number[]>) => void) {
    this.joinListener = l;
  }
  rejoin(a: Record<string, number[]>) {
    this.joinListener?.(a);
  }
  onRebalancing() {}
  onCrash() {}
  /** Last committed offset per topic:partition. */
  committed(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const c of this.commits) for (const o of c) out[`${o.topic}:${o.partition}`] = Number(o.offset);
    return out;
  }
}

function batchOf(topic: string, partition: number, first: number, values: Array<string | null>, hw = first + values.length) {
  const resolved: string[] = [];
  const heartbeat = vi.fn(async () => {});
  const payload: EachBatchLike = {
    batch: {
      topic,
      partition,
      highWatermark: String(hw),
      messages: values.map((v, i) => ({ offset: String(first + i), key: Buffer.from(`k${first + i}`), value: v === null ? null : Buffer.from(v), headers: { ce_id: 'x' } })),
    },
    resolveOffset: (o) => void resolved.push(o),
    heartbeat,
    isRunning: () => true,
    isStale: () => false,
  };
  return { payload, resolved, heartbeat };
}

async function setup(opts: { maxRows?: number; flushMs?: number; maxInflight?: number; maxRejects?: number } = {}) {
  const consumer = new FakeConsumer();
  const writer = new FakeWriter();
  const dlq = new FakeDlq();
  const metrics = new SinkMetrics({ defaultMetrics: false });
  const sink = new SinkConsumer({
    consumer,
    writer,
    classifyWriteError: classify,
    dlq,
    routes: topicRoutes({ opportunities: OPP, jobs: JOBS }),
    batch: { maxRows: opts.maxRows ?? 5, flushMs: opts.flushMs ?? 60_000, maxInflight: opts.maxInflight ?? 2 },
    retry: { initialMs: 1, maxMs: 5 },
    shutdownTimeoutMs: 2_000,
    ...(opts.maxRejects !== undefined ? { maxConsecutiveRejects: opts.maxRejects } : {}),
    metrics,
    logger,
  });
  await sink.start();
  const feed = (p: EachBatchLike) => consumer.eachBatch!(p);
  return { consumer, writer, dlq, sink, feed, metrics };
}

const until = async (check: () => boolean, ms = 3_000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('SinkConsumer', () => {
  it('flushes a table when its buffer reaches SINK_BATCH_ROWS and commits what was inserted', async () => {
    const { feed, writer, consumer, sink } = await setup({ maxRows: 3 });
    const b = batchOf(OPP, 0, 0, lines.slice(0, 7));
    await feed(b.payload);
    expect(b.resolved).toEqual(['0', '1', '2', '3', '4', '5', '6']);
    await until(() => writer.stored.size === 6);
    expect(writer.calls.map((c) => c.rows.length)).toEqual([3, 3]);
    expect(writer.calls[0]!.table).toBe('opportunity_events');
    expect(writer.calls[0]!.rows[0]!.line).toBe(lines[0]); // the original string, not re-serialised
    await until(() => consumer.committed()[`${OPP}:0`] === 6);
    expect(sink.stats().buffered).toBe(1);
    await sink.close();
    expect(writer.stored.size).toBe(7);
    expect(consumer.committed()[`${OPP}:0`]).toBe(7);
  });

  it('flushes on time when the buffer stays small', async () => {
    const { feed, writer, consumer, sink } = await setup({ maxRows: 100, flushMs: 30 });
    const b = batchOf(JOBS, 0, 10, [JSON.stringify(job)]);
    await feed(b.payload);
    expect(b.resolved).toEqual(['10']);
    expect(writer.calls).toHaveLength(0);
    await until(() => consumer.committed()[`${JOBS}:0`] === 11);
    expect(writer.calls).toHaveLength(1);
    expect(writer.calls[0]!.table).toBe('jobs');
    await sink.close();
  });

  it('retries a failing ClickHouse paused, never committing past what is stored, then resumes without loss', async () => {
    const { feed, writer, consumer, sink, metrics } = await setup({ maxRows: 4 });
    writer.failNext = 5;
    await feed(batchOf(OPP, 1, 0, lines.slice(0, 4)).payload);
    await until(() => consumer.events.includes('pause'));
    expect(consumer.committed()[`${OPP}:1`]).toBeUndefined();
    await until(() => writer.stored.size === 4);
    await until(() => consumer.events.includes('resume'));
    await until(() => consumer.committed()[`${OPP}:1`] === 4);
    // The same batch was retried: same rows, same token.
    expect(new Set(writer.calls.map((c) => c.dedupToken)).size).toBe(1);
    expect(writer.calls).toHaveLength(6);
    expect(sink.stats().retries).toBe(5);
    expect(await metrics.registry.getSingleMetricAsString('sink_retries_total')).toContain('target="clickhouse"} 5');
    await sink.close();
  });

  it('keeps the commit below a batch that is still failing even when later batches succeed', async () => {
    const { feed, writer, consumer, sink } = await setup({ maxRows: 2, maxInflight: 2 });
    let failFirst = true;
    writer.failWith = (b) => (failFirst && b.rows.some((r) => r.line === lines[0]) ? new WriteError('timeout', true, 'CH_TIMEOUT') : null);
    await feed(batchOf(OPP, 0, 0, lines.slice(0, 4)).payload);
    await until(() => writer.stored.size === 2); // the second batch (offsets 2,3) landed
    await new Promise((r) => setTimeout(r, 30));
    expect(consumer.committed()[`${OPP}:0`]).toBeUndefined();
    failFirst = false;
    await until(() => consumer.committed()[`${OPP}:0`] === 4);
    await sink.close();
  });

  it('bisects a rejected batch down to the bad row, dead-letters it and stores the rest', async () => {
    const { feed, writer, consumer, dlq, sink } = await setup({ maxRows: 8 });
    const bad = lines[5]!;
    writer.failWith = (b) => (b.rows.some((r) => r.line === bad) ? new WriteError('Cannot parse input', false) : null);
    await feed(batchOf(OPP, 0, 100, lines.slice(0, 8)).payload);
    await until(() => consumer.committed()[`${OPP}:0`] === 108);
    expect(writer.stored.size).toBe(7);
    expect(dlq.sent).toHaveLength(1);
    expect(dlq.sent[0]).toMatchObject({ topic: OPP, partition: 0, offset: 105, reason: 'SINK_DLQ_CLICKHOUSE_REJECTED', value: bad });
    expect(sink.stats().dlq).toBe(1);
    await sink.close();
  });

  it('sends messages that are not JSON or not events to the DLQ with their position, and continues', async () => {
    const { feed, writer, consumer, dlq, sink } = await setup({ maxRows: 3 });
    const b = batchOf(OPP, 1, 0, [lines[0]!, 'not json {', JSON.stringify({ hello: 1 }), null, lines[1]!, lines[2]!]);
    await feed(b.payload);
    expect(b.resolved).toEqual(['0', '1', '2', '3', '4', '5']);
    await until(() => consumer.committed()[`${OPP}:1`] === 6);
    expect(writer.stored.size).toBe(3);
    expect(dlq.sent.map((d) => [d.offset, d.reason])).toEqual([
      [1, 'SINK_DLQ_INVALID_JSON'],
      [2, 'SINK_DLQ_SCHEMA'],
      [3, 'SINK_DLQ_EMPTY_VALUE'],
    ]);
    const msg = toDlqMessage(dlq.sent[0]!, new Date('2025-01-01T00:00:00Z'));
    expect(msg.headers).toMatchObject({ [DLQ_HEADERS.sourceTopic]: OPP, [DLQ_HEADERS.sourcePartition]: '1', [DLQ_HEADERS.sourceOffset]: '1', [DLQ_HEADERS.stage]: 'sink', ce_id: 'x' });
    expect(String(msg.value)).toBe('not json {');
    await sink.close();
  });

  it('treats schema/permission errors as systemic: retried and paused, never dead-lettered', async () => {
    const { feed, writer, consumer, dlq, sink } = await setup({ maxRows: 2 });
    let broken = true;
    writer.failWith = () => (broken ? new WriteError('Unknown table', false, 'CH_SCHEMA') : null);
    await feed(batchOf(OPP, 0, 0, lines.slice(0, 2)).payload);
    await until(() => consumer.events.includes('pause'));
    await new Promise((r) => setTimeout(r, 30));
    expect(dlq.sent).toHaveLength(0);
    expect(sink.health(0).reasons.map((r) => r.code)).toContain('SINK_ERR_CLICKHOUSE_UNAVAILABLE');
    broken = false;
    await until(() => consumer.committed()[`${OPP}:0`] === 2);
    expect(sink.health(0)).toEqual({ ok: true, reasons: [] });
    await sink.close();
  });

  it('stops dead-lettering when every row is rejected (a broken writer is not bad data)', async () => {
    const { feed, writer, consumer, dlq, sink } = await setup({ maxRows: 8, maxRejects: 2 });
    let broken = true;
    writer.failWith = () => (broken ? new WriteError('Cannot parse', false) : null);
    await feed(batchOf(OPP, 0, 0, lines.slice(0, 8)).payload);
    await until(() => consumer.events.includes('pause'));
    expect(dlq.sent).toHaveLength(2);
    broken = false;
    await until(() => consumer.committed()[`${OPP}:0`] === 8);
    expect(writer.stored.size).toBe(6);
    await sink.close();
  });

  it('applies back-pressure: eachBatch waits (heartbeating) while the buffer is full and the in-flight cap reached', async () => {
    const { feed, writer, sink } = await setup({ maxRows: 2, maxInflight: 1 });
    let open!: () => void;
    writer.gate = new Promise<void>((r) => (open = r));
    const b = batchOf(OPP, 0, 0, lines.slice(0, 6));
    let done = false;
    const running = feed(b.payload).then(() => (done = true));
    await until(() => writer.calls.length === 1);
    await new Promise((r) => setTimeout(r, 600));
    expect(done).toBe(false);
    expect(sink.stats().buffered).toBe(2);
    expect(b.heartbeat).toHaveBeenCalled();
    writer.gate = null;
    open();
    await running;
    await sink.close();
    expect(writer.stored.size).toBe(6);
  });

  it('skips redelivered offsets (after a rebalance kafkajs re-reads from the committed offset)', async () => {
    const { feed, writer, consumer, sink } = await setup({ maxRows: 10 });
    await feed(batchOf(OPP, 0, 0, lines.slice(0, 3)).payload);
    const again = batchOf(OPP, 0, 0, lines.slice(0, 5));
    await feed(again.payload);
    expect(again.resolved).toEqual(['0', '1', '2', '3', '4']);
    await sink.close();
    expect(writer.calls.flatMap((c) => c.rows)).toHaveLength(5);
    expect(consumer.committed()[`${OPP}:0`]).toBe(5);
  });

  it('drops the buffered rows of a revoked partition and never commits it', async () => {
    const { feed, writer, consumer, sink } = await setup({ maxRows: 10 });
    await feed(batchOf(OPP, 0, 0, lines.slice(0, 3)).payload);
    await feed(batchOf(OPP, 1, 0, lines.slice(3, 5)).payload);
    consumer.rejoin({ [OPP]: [1], [JOBS]: [0] });
    await sink.close();
    expect(writer.calls.flatMap((c) => c.rows).map((r) => r.line)).toEqual(lines.slice(3, 5));
    expect(consumer.committed()).toEqual({ [`${OPP}:1`]: 2 });
  });

  it('closes in order: pause intake, flush, commit, disconnect', async () => {
    const { feed, consumer, sink } = await setup({ maxRows: 100 });
    await feed(batchOf(OPP, 0, 0, lines.slice(0, 3)).payload);
    await sink.close();
    expect(consumer.events).toEqual(['pause', 'commit', 'disconnect']);
    expect(sink.stats().state).toBe('stopped');
    await sink.close(); // idempotent
  });

  it('gives up on a dead ClickHouse at the shutdown timeout without committing the lost batch', async () => {
    const { feed, writer, consumer, sink } = await setup({ maxRows: 2 });
    writer.failNext = Number.MAX_SAFE_INTEGER;
    await feed(batchOf(OPP, 0, 0, lines.slice(0, 2)).payload);
    await sink.close();
    expect(consumer.committed()[`${OPP}:0`]).toBeUndefined();
    expect(consumer.events.at(-1)).toBe('disconnect');
  });
});
