import { DLQ_HEADERS } from '@clustr-pipeline/schema';
import type { Logger } from 'pino';
import type { DlqReason } from './errors.js';

/** A message the sink could not store, with its Kafka position. */
export interface DeadLetter {
  topic: string;
  partition: number;
  offset: number;
  key: Buffer | string | null;
  value: Buffer | string | null;
  /** The source message's headers; carried over (CloudEvents ids help tracing). */
  headers?: Record<string, Buffer | string | undefined | Array<Buffer | string>>;
  reason: DlqReason;
  error: string;
}

export interface DlqMessage {
  key: Buffer | string | null;
  value: Buffer | string | null;
  headers: Record<string, string | Buffer>;
}

const MAX_ERROR_CHARS = 1_000;

/** The dead-letter record for `entry`: the raw bytes plus `dlq_*` headers naming where it came from. */
export function toDlqMessage(entry: DeadLetter, now: Date): DlqMessage {
  const headers: Record<string, string | Buffer> = {};
  for (const [name, value] of Object.entries(entry.headers ?? {})) {
    // Ours win: never let a source header impersonate a dlq_* header.
    if (value === undefined || name.startsWith('dlq_')) continue;
    headers[name] = Array.isArray(value) ? value[value.length - 1]! : value;
  }
  const error = entry.error.length > MAX_ERROR_CHARS ? `${entry.error.slice(0, MAX_ERROR_CHARS)}…` : entry.error;
  Object.assign(headers, {
    [DLQ_HEADERS.reason]: entry.reason,
    [DLQ_HEADERS.error]: error,
    [DLQ_HEADERS.stage]: 'sink',
    [DLQ_HEADERS.receivedAt]: now.toISOString(),
    [DLQ_HEADERS.sourceTopic]: entry.topic,
    [DLQ_HEADERS.sourcePartition]: String(entry.partition),
    [DLQ_HEADERS.sourceOffset]: String(entry.offset),
  });
  if (headers[DLQ_HEADERS.contentType] === undefined) headers[DLQ_HEADERS.contentType] = 'application/octet-stream';
  return { key: entry.key, value: entry.value, headers };
}

/** The part of a kafkajs Producer the DLQ uses. */
export interface DlqProducer {
  connect(): Promise<void>;
  send(record: { topic: string; acks: number; messages: DlqMessage[] }): Promise<unknown>;
  disconnect(): Promise<void>;
}

export interface DeadLetterSink {
  /** Resolves once every entry is acknowledged by all in-sync replicas. */
  publish(entries: readonly DeadLetter[]): Promise<void>;
}

export class DlqPublisher implements DeadLetterSink {
  private connected = false;

  constructor(
    private readonly producer: DlqProducer,
    private readonly topic: string,
    private readonly logger?: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async connect(): Promise<void> {
    await this.producer.connect();
    this.connected = true;
  }

  async publish(entries: readonly DeadLetter[]): Promise<void> {
    if (entries.length === 0) return;
    const now = this.now();
    // acks -1: the poison message's offset is committed after this resolves, so it must be durable.
    await this.producer.send({ topic: this.topic, acks: -1, messages: entries.map((e) => toDlqMessage(e, now)) });
    for (const e of entries) {
      this.logger?.warn({ topic: e.topic, partition: e.partition, offset: e.offset, reason: e.reason, error: e.error }, 'message sent to the DLQ');
    }
  }

  async close(): Promise<void> {
    if (!this.connected) return;
    this.connected = false;
    await this.producer.disconnect();
  }
}
