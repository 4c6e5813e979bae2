import type { Logger } from 'pino';
import type { BufferedRow } from './batcher.js';
import { Batcher } from './batcher.js';
import type { DeadLetter, DeadLetterSink } from './dlq.js';
import type { SinkMetrics } from './metrics.js';
import { OffsetTracker, tpKey, type TopicPartitionOffset } from './offsets.js';
import type { BackoffPolicy } from './retry.js';
import { AbortedError, retryForever, sleep } from './retry.js';
import { decodeMessage, dedupToken, type SinkTable, type TopicRoute } from './rows.js';
import type { InsertBatch, InsertOutcome } from './writer.js';

/**
 * The consumer owns the loop; what happens to rows is injected (a writer, a DLQ, an error classifier).
 *
 *  eachBatch (kafkajs)  ─ decode + validate ─▶ per-table Batcher ─ size/time ─▶ insert task ─▶ OffsetTracker
 *        │ poison                                      (≤ maxInflight tasks)     │ retriable: pause + backoff
 *        └──────────────▶ DLQ task ─────────────────────────────────────────────┘ bad row: bisect → DLQ
 *                                                       commit = tracker.committable(), after each task
 *
 * eachBatch only buffers: inserts, retries and commits run outside it, so a slow or failing ClickHouse
 * never blocks kafkajs' fetch loop (which keeps heartbeating while the topics are paused), except at
 * the back-pressure cap, where eachBatch waits and heartbeats itself.
 */

export type { InsertBatch, InsertOutcome };

/** The writer's contract (`ClickHouseWriter` of writer.ts satisfies it). */
export interface BatchWriter {
  insert(batch: InsertBatch): Promise<InsertOutcome>;
}
/** What the sink needs to know about a failed insert (`classifyClickHouseError` of writer.ts gives it). */
export interface WriteErrorInfo {
  retriable: boolean;
  code: string;
  message: string;
  /**
   * The rows are at fault: bisect and dead-letter them. When the classifier leaves it out, every
   * non-retriable error counts as bad data (guarded by `maxConsecutiveRejects`).
   */
  badData?: boolean;
}

/** The parts of a kafkajs message and eachBatch payload the loop uses (kafkajs' own types satisfy them). */
export interface MessageLike {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, Buffer | string | Array<Buffer | string> | undefined>;
}
export interface EachBatchLike {
  batch: { topic: string; partition: number; highWatermark: string; messages: MessageLike[] };
  resolveOffset(offset: string): void;
  heartbeat(): Promise<void>;
  isRunning(): boolean;
  isStale(): boolean;
}

/** A kafkajs consumer seen through a narrow port (kafka.ts adapts the real one; tests fake it). */
export interface ConsumerPort {
  connect(): Promise<void>;
  subscribe(subscription: { topics: string[]; fromBeginning: boolean }): Promise<void>;
  run(config: { eachBatch(payload: EachBatchLike): Promise<void> }): Promise<void>;
  commitOffsets(offsets: Array<{ topic: string; partition: number; offset: string }>): Promise<void>;
  pause(topics: Array<{ topic: string }>): void;
  resume(topics: Array<{ topic: string }>): void;
  disconnect(): Promise<void>;
  /** After each join/sync, with the new assignment (topic → partitions). */
  onGroupJoin(listener: (assignment: Record<string, number[]>) => void): void;
  /** When kafkajs notices a rebalance, before it re-joins. */
  onRebalancing(listener: () => void): void;
  onCrash(listener: (error: Error, restart: boolean) => void): void;
}

export interface SinkConsumerOptions {
  consumer: ConsumerPort;
  writer: BatchWriter;
  classifyWriteError(error: unknown): WriteErrorInfo;
  dlq: DeadLetterSink;
  routes: TopicRoute[];
  batch: { maxRows: number; flushMs: number; maxInflight: number };
  retry: BackoffPolicy;
  /** Close waits this long for in-flight writes, then gives up on them (they stay uncommitted). @default 30000 */
  shutdownTimeoutMs?: number;
  /**
   * After this many rows in a row were rejected one by one with no successful insert in between,
   * non-retriable errors are treated as systemic (retried, consumer paused) instead of dead-lettering
   * the whole stream. @default 10
   */
  maxConsecutiveRejects?: number;
  metrics?: SinkMetrics;
  logger: Logger;
  now?: () => number;
  random?: () => number;
}

export type ConsumerState = 'idle' | 'starting' | 'running' | 'crashed' | 'stopping' | 'stopped';

export interface SinkStats {
  state: ConsumerState;
  messages: number;
  inserted: Record<SinkTable, number>;
  duplicates: Record<SinkTable, number>;
  batches: number;
  retries: number;
  dlq: number;
  buffered: number;
  inflight: number;
  outstanding: number;
  paused: boolean;
  failingSince: number | null;
  lastError: string | null;
  committed: TopicPartitionOffset[];
}

/**
 * ClickHouse errors that say "the server or schema is wrong", not "this row is wrong": never
 * dead-letter rows for these, retry (and stay paused and unhealthy) until an operator fixes it.
 */
const SYSTEMIC_CODES = new Set([
  'UNKNOWN_TABLE', '60', 'UNKNOWN_DATABASE', '81', 'READONLY', '164', 'TABLE_IS_READ_ONLY', '242', 'NOT_ENOUGH_SPACE', '243',
  'UNKNOWN_USER', '192', 'WRONG_PASSWORD', '193', 'REQUIRED_PASSWORD', '194', 'ACCESS_DENIED', '497', 'AUTHENTICATION_FAILED', '516',
  'NO_SUCH_COLUMN_IN_TABLE', '16', 'THERE_IS_NO_COLUMN', '8', 'CH_SCHEMA',
]);

const WAIT_SLICE_MS = 500;

export class SinkConsumer {
  private readonly consumer: ConsumerPort;
  private readonly routes = new Map<string, TopicRoute>();
  private readonly buffers = new Map<SinkTable, Batcher<SinkTable>>();
  private readonly tracker = new OffsetTracker();
  private readonly tasks = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private readonly now: () => number;
  private readonly log: Logger;
  private readonly maxRejects: number;

  private state: ConsumerState = 'idle';
  private inflight = 0;
  private slotWaiters: Array<() => void> = [];
  private activeHandlers = 0;
  private handlerWaiters: Array<() => void> = [];
  /** Writes being retried, by what they write to. */
  private readonly failing = new Map<symbol, 'clickhouse' | 'dlq'>();
  private failingSince: number | null = null;
  private lastError: string | null = null;
  private paused = false;
  private rejectStreak = 0;
  private assignment: Set<string> | null = null;
  private readonly highWatermarks = new Map<string, { topic: string; partition: number; hw: number; first: number }>();
  private committing: Promise<void> | null = null;
  private commitAgain = false;
  private timer: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;
  private readonly counts = {
    messages: 0,
    inserted: { opportunity_events: 0, jobs: 0 } as Record<SinkTable, number>,
    duplicates: { opportunity_events: 0, jobs: 0 } as Record<SinkTable, number>,
    batches: 0,
    retries: 0,
    dlq: 0,
  };

  constructor(private readonly options: SinkConsumerOptions) {
    this.consumer = options.consumer;
    this.now = options.now ?? Date.now;
    this.log = options.logger;
    this.maxRejects = options.maxConsecutiveRejects ?? 10;
    for (const route of options.routes) {
      this.routes.set(route.topic, route);
      if (!this.buffers.has(route.table)) {
        this.buffers.set(route.table, new Batcher(route.table, { maxRows: options.batch.maxRows, flushMs: options.batch.flushMs }));
      }
    }
  }

  /** Connects, subscribes and runs; resolves once the consumer has joined the group. */
  async start(): Promise<void> {
    if (this.state !== 'idle') throw new Error(`cannot start a consumer that is ${this.state}`);
    this.state = 'starting';
    this.consumer.onGroupJoin((assignment) => this.onAssignment(assignment));
    this.consumer.onRebalancing(() => {
      this.log.info('group is rebalancing: flushing and committing what we hold');
      this.flush().catch((err: unknown) => this.log.warn({ err }, 'flush on rebalance failed'));
    });
    this.consumer.onCrash((error, restart) => {
      this.lastError = error.message;
      this.log.error({ err: error, restart }, 'Kafka consumer crashed');
      if (!restart) this.state = 'crashed';
    });
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [...this.routes.keys()], fromBeginning: true });
    const tickMs = Math.max(5, Math.min(100, Math.floor(this.options.batch.flushMs / 4)));
    this.timer = setInterval(() => this.tick(), tickMs);
    this.timer.unref();
    await this.consumer.run({ eachBatch: (payload) => this.handleBatch(payload) });
    if (this.state === 'starting') this.state = 'running';
  }

  /** The eachBatch handler: decode, buffer, route poison to the DLQ; never writes to ClickHouse itself. */
  async handleBatch(payload: EachBatchLike): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    const { topic, partition } = batch;
    const route = this.routes.get(topic);
    if (!route) throw new Error(`no route for topic ${topic}`);
    const buffer = this.buffers.get(route.table)!;
    this.activeHandlers++;
    const dead: DeadLetter[] = [];
    let taken = 0;
    try {
      const first = batch.messages[0];
      if (first) this.noteHighWatermark(topic, partition, Number(batch.highWatermark), Number(first.offset));
      for (const message of batch.messages) {
        if (this.stopping || !isRunning() || isStale()) break;
        const offset = Number(message.offset);
        // A redelivery after a rebalance: we already hold (or stored) it.
        if (this.tracker.seen(topic, partition, offset)) {
          resolveOffset(message.offset);
          continue;
        }
        const decoded = decodeMessage(route, message.value);
        if (decoded.ok) {
          if (buffer.full) {
            await this.waitForRoom(buffer, heartbeat);
            if (this.stopping) break;
          }
          this.tracker.receive(topic, partition, offset);
          buffer.add({ topic, partition, offset, eventId: decoded.eventId, line: decoded.line }, this.now());
          if (buffer.full) this.dispatch(false);
        } else {
          this.tracker.receive(topic, partition, offset);
          dead.push({ topic, partition, offset, key: message.key, value: message.value, headers: message.headers ?? {}, reason: decoded.reason, error: decoded.error });
        }
        taken++;
        resolveOffset(message.offset);
      }
    } finally {
      // Counted once per fetched batch, not per message (a labelled prom-client inc is not free).
      this.counts.messages += taken;
      if (taken > 0) this.options.metrics?.messages.inc({ topic }, taken);
      // TRICKY: even when heartbeat() threw (rebalance), received poison offsets must reach the DLQ,
      // or the partition's commit would stall behind them.
      if (dead.length > 0) this.track(this.deadLetter(dead));
      this.activeHandlers--;
      if (this.activeHandlers === 0) for (const wake of this.handlerWaiters.splice(0)) wake();
      this.updateGauges();
    }
  }

  /** Sends everything buffered, waits for all writes, then commits. */
  async flush(): Promise<void> {
    for (;;) {
      this.dispatch(true);
      if (this.tasks.size === 0 && this.bufferedRows() === 0) break;
      await Promise.race(this.tasks);
    }
    await this.commit();
  }

  /** Stop intake → drain in-flight and flush → commit → leave the group. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  stats(): SinkStats {
    return {
      state: this.state,
      messages: this.counts.messages,
      inserted: { ...this.counts.inserted },
      duplicates: { ...this.counts.duplicates },
      batches: this.counts.batches,
      retries: this.counts.retries,
      dlq: this.counts.dlq,
      buffered: this.bufferedRows(),
      inflight: this.inflight,
      outstanding: this.tracker.outstanding(),
      paused: this.paused,
      failingSince: this.failingSince,
      lastError: this.lastError,
      committed: this.tracker
        .partitionKeys()
        .flatMap(({ topic, partition }) => {
          const offset = this.tracker.committed(topic, partition);
          return offset === null ? [] : [{ topic, partition, offset }];
        })
        .sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1)),
    };
  }

  /** Healthy while the consumer runs and writes have not been failing for longer than `unhealthyAfterMs`. */
  health(unhealthyAfterMs: number): { ok: boolean; reasons: Array<{ code: string; message: string }> } {
    const reasons: Array<{ code: string; message: string }> = [];
    if (this.state === 'crashed') reasons.push({ code: 'SINK_ERR_CONSUMER_CRASHED', message: this.lastError ?? 'consumer crashed' });
    else if (this.state !== 'running') reasons.push({ code: 'SINK_ERR_CONSUMER_NOT_RUNNING', message: `consumer is ${this.state}` });
    if (this.failingSince !== null && this.now() - this.failingSince >= unhealthyAfterMs) {
      const targets = new Set(this.failing.values());
      const message = `writes failing for ${Math.round((this.now() - this.failingSince) / 1000)}s: ${this.lastError ?? 'unknown error'}`;
      if (targets.has('clickhouse')) reasons.push({ code: 'SINK_ERR_CLICKHOUSE_UNAVAILABLE', message });
      if (targets.has('dlq')) reasons.push({ code: 'SINK_ERR_DLQ_UNAVAILABLE', message });
    }
    return { ok: reasons.length === 0, reasons };
  }

  // ─── internals ────────────────────────────────────────────────────────────────────────────────

  private get stopping(): boolean {
    return this.closing !== null;
  }

  private tick(): void {
    if (this.stopping) return;
    this.dispatch(false);
    if (this.tracker.committable((t, p) => this.isAssigned(t, p)).length > 0) void this.commit();
    this.updateGauges(true);
  }

  private bufferedRows(): number {
    let n = 0;
    for (const b of this.buffers.values()) n += b.size;
    return n;
  }

  /** Starts insert tasks for due buffers (all non-empty ones when `force`), up to the in-flight cap. */
  private dispatch(force: boolean): void {
    const now = this.now();
    for (const buffer of this.buffers.values()) {
      while (this.inflight < this.options.batch.maxInflight && (force ? buffer.size > 0 : buffer.due(now) !== null)) {
        const drained = buffer.drain(now)!;
        this.inflight++;
        this.track(
          this.insert(drained.table, drained.rows).finally(() => {
            this.inflight--;
            for (const wake of this.slotWaiters.splice(0)) wake();
            if (!this.stopping) this.dispatch(false);
            void this.commit();
          }),
        );
      }
    }
    this.updateGauges();
  }

  private track(task: Promise<void>): void {
    const guarded = task.catch((err: unknown) => {
      if (err instanceof AbortedError) this.log.warn('write abandoned at shutdown; its offsets stay uncommitted');
      else this.log.error({ err }, 'unexpected error in a write task');
    });
    this.tasks.add(guarded);
    void guarded.finally(() => this.tasks.delete(guarded));
  }

  /** Back-pressure: the table's buffer is full and the in-flight cap reached; wait, heartbeating. */
  private async waitForRoom(buffer: Batcher<SinkTable>, heartbeat: () => Promise<void>): Promise<void> {
    while (buffer.full && !this.stopping) {
      this.dispatch(false);
      if (!buffer.full) return;
      await Promise.race([new Promise<void>((resolve) => this.slotWaiters.push(resolve)), sleep(WAIT_SLICE_MS)]);
      await heartbeat();
    }
  }

  /** Inserts rows; on a non-retriable failure bisects down to the rejected rows and dead-letters them. */
  private async insert(table: SinkTable, rows: BufferedRow[]): Promise<void> {
    const batch: InsertBatch = { table, rows: rows.map((r) => ({ eventId: r.eventId, line: r.line })), dedupToken: dedupToken(table, rows) };
    const started = performance.now();
    try {
      const outcome = await this.withRetry('clickhouse', () => this.options.writer.insert(batch), (err) => this.retriableWrite(err));
      this.rejectStreak = 0;
      this.counts.batches++;
      this.counts.inserted[table] += outcome.inserted;
      this.counts.duplicates[table] += outcome.duplicates;
      const m = this.options.metrics;
      m?.batches.inc({ table, outcome: 'ok' });
      m?.rowsInserted.inc({ table }, outcome.inserted);
      m?.duplicates.inc({ table }, outcome.duplicates);
      m?.insertSeconds.observe({ table }, (performance.now() - started) / 1000);
      for (const r of rows) this.tracker.markDone(r.topic, r.partition, r.offset);
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      const info = this.options.classifyWriteError(err);
      this.lastError = `${info.code}: ${info.message}`;
      if (rows.length > 1) {
        this.log.warn({ table, rows: rows.length, code: info.code, error: info.message }, 'insert rejected: bisecting to find the bad rows');
        this.options.metrics?.batches.inc({ table, outcome: 'split' });
        const mid = Math.ceil(rows.length / 2);
        await this.insert(table, rows.slice(0, mid));
        await this.insert(table, rows.slice(mid));
        return;
      }
      const row = rows[0]!;
      this.rejectStreak++;
      if (this.rejectStreak > this.maxRejects) {
        // Now retriableWrite() treats every error as retriable: pause and retry until fixed.
        this.log.error({ table, code: info.code, streak: this.rejectStreak }, 'every row is rejected: treating it as a ClickHouse problem, not bad data');
        await this.insert(table, rows);
        return;
      }
      await this.deadLetter([
        { topic: row.topic, partition: row.partition, offset: row.offset, key: null, value: row.line, reason: 'SINK_DLQ_CLICKHOUSE_REJECTED', error: `${info.code}: ${info.message}` },
      ]);
    }
  }

  private retriableWrite(err: unknown): boolean {
    const info = this.options.classifyWriteError(err);
    return info.retriable || info.badData === false || SYSTEMIC_CODES.has(info.code) || this.rejectStreak > this.maxRejects;
  }

  /** Publishes dead letters (retrying every error: never drop), then counts their offsets as done. */
  private async deadLetter(entries: DeadLetter[]): Promise<void> {
    await this.withRetry('dlq', () => this.options.dlq.publish(entries), () => true);
    for (const e of entries) {
      this.counts.dlq++;
      this.options.metrics?.dlq.inc({ reason: e.reason });
      this.tracker.markDone(e.topic, e.partition, e.offset);
    }
    void this.commit();
  }

  /** retryForever, plus: the first retry pauses consumption; the last success resumes it. */
  private async withRetry<T>(target: 'clickhouse' | 'dlq', fn: () => Promise<T>, isRetriable: (err: unknown) => boolean): Promise<T> {
    const id = Symbol(target);
    try {
      return await retryForever(fn, {
        policy: this.options.retry,
        isRetriable,
        signal: this.abort.signal,
        ...(this.options.random ? { random: this.options.random } : {}),
        onRetry: (err, attempt, delayMs) => {
          this.counts.retries++;
          this.options.metrics?.retries.inc({ target });
          this.lastError = err instanceof Error ? err.message : String(err);
          if (!this.failing.has(id)) this.enterFailing(id, target);
          if (attempt < 3 || attempt % 10 === 0) this.log.warn({ target, attempt, delayMs, err }, `${target} write failed; retrying`);
        },
      });
    } finally {
      if (this.failing.has(id)) this.leaveFailing(id);
    }
  }

  private enterFailing(id: symbol, target: 'clickhouse' | 'dlq'): void {
    this.failing.set(id, target);
    if (this.failing.size > 1) return;
    this.failingSince = this.now();
    this.setPaused(true);
  }

  private leaveFailing(id: symbol): void {
    this.failing.delete(id);
    if (this.failing.size > 0) return;
    this.failingSince = null;
    if (!this.stopping) this.setPaused(false);
  }

  private setPaused(paused: boolean): void {
    if (this.paused === paused) return;
    const topics = [...this.routes.keys()].map((topic) => ({ topic }));
    try {
      if (paused) this.consumer.pause(topics);
      else this.consumer.resume(topics);
      this.paused = paused;
      this.options.metrics?.paused.set(paused ? 1 : 0);
      this.log.info(paused ? 'consumption paused' : 'consumption resumed');
    } catch (err) {
      // Before run() there is nothing to pause.
      this.log.debug({ err }, 'pause/resume not possible yet');
    }
  }

  /** Commits what is safe. Serialised; a request during a commit runs once more afterwards. */
  private commit(): Promise<void> {
    if (this.committing) {
      this.commitAgain = true;
      return this.committing;
    }
    this.committing = (async () => {
      do {
        this.commitAgain = false;
        const offsets = this.tracker.committable((t, p) => this.isAssigned(t, p));
        if (offsets.length === 0) continue;
        try {
          await this.consumer.commitOffsets(offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: String(o.offset) })));
          this.tracker.markCommitted(offsets);
          for (const o of offsets) this.options.metrics?.committedOffset.set({ topic: o.topic, partition: String(o.partition) }, o.offset);
          this.log.debug({ offsets }, 'committed');
        } catch (err) {
          // Nothing is lost: the next commit carries these offsets again.
          this.log.warn({ err, offsets }, 'offset commit failed; will retry');
          this.options.metrics?.retries.inc({ target: 'commit' });
        }
      } while (this.commitAgain);
    })().finally(() => {
      this.committing = null;
    });
    return this.committing;
  }

  private isAssigned(topic: string, partition: number): boolean {
    return this.assignment === null || this.assignment.has(tpKey(topic, partition));
  }

  private onAssignment(assignment: Record<string, number[]>): void {
    const next = new Set<string>();
    for (const [topic, partitions] of Object.entries(assignment)) for (const p of partitions) next.add(tpKey(topic, p));
    for (const { topic, partition } of this.tracker.partitionKeys()) {
      if (next.has(tpKey(topic, partition))) continue;
      // Revoked: its new owner re-reads from the committed offset. Our buffered rows for it are
      // dropped; in-flight ones still land (idempotently) but are no longer committed by us.
      let dropped = 0;
      for (const b of this.buffers.values()) dropped += b.dropPartition(topic, partition);
      this.tracker.forget(topic, partition);
      this.highWatermarks.delete(tpKey(topic, partition));
      this.options.metrics?.lag.remove({ topic, partition: String(partition) });
      this.log.info({ topic, partition, dropped }, 'partition revoked');
    }
    this.assignment = next;
    if (this.state === 'starting' || this.state === 'running') this.state = 'running';
    this.log.info({ assignment }, 'partitions assigned');
  }

  private noteHighWatermark(topic: string, partition: number, hw: number, offset: number): void {
    const key = tpKey(topic, partition);
    const entry = this.highWatermarks.get(key);
    if (entry) entry.hw = hw;
    else this.highWatermarks.set(key, { topic, partition, hw, first: offset });
  }

  /** Buffer and in-flight gauges; per-partition lag (one labelled set per partition) only from tick(). */
  private updateGauges(withLag = false): void {
    const m = this.options.metrics;
    if (!m) return;
    for (const [table, b] of this.buffers) m.buffered.set({ table }, b.size);
    m.inflight.set(this.inflight);
    if (!withLag) return;
    for (const { topic, partition, hw, first } of this.highWatermarks.values()) {
      const committed = this.tracker.committed(topic, partition) ?? first;
      m.lag.set({ topic, partition: String(partition) }, Math.max(0, hw - committed));
    }
  }

  private async shutdown(): Promise<void> {
    const started = this.state;
    this.state = 'stopping';
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.setPaused(true);
    if (this.activeHandlers > 0) await new Promise<void>((resolve) => this.handlerWaiters.push(resolve));
    const deadline = setTimeout(() => this.abort.abort(), this.options.shutdownTimeoutMs ?? 30_000);
    deadline.unref();
    try {
      await this.flush();
    } finally {
      clearTimeout(deadline);
    }
    if (this.abort.signal.aborted) {
      this.log.error({ code: 'SINK_ERR_SHUTDOWN_TIMEOUT' }, 'gave up on in-flight writes at shutdown; they will be re-read');
    }
    await this.commit();
    if (started !== 'idle') await this.consumer.disconnect();
    this.state = 'stopped';
    this.log.info(this.stats(), 'consumer closed');
  }
}
