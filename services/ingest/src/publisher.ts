import { CompressionTypes, Partitioners, type Admin, type Kafka, type Producer, type ProducerRecord } from 'kafkajs';
import type { Logger } from 'pino';
import type { KafkaSettings } from './config.js';
import { IngestError } from './errors.js';
import type { MessageStream, OutgoingMessage } from './messages.js';
import type { IngestMetrics } from './metrics.js';
import { ensureTopics } from './topics.js';

/**
 * Where accepted webhooks go. The HTTP layer only knows this interface, so a later disk spool can
 * sit in front of (or replace) Kafka without touching the routes.
 */
export interface Publisher {
  /**
   * Publishes the batches in order; resolves once every message was acknowledged (acks = -1).
   * Rejects with an IngestError (503 family) when it cannot.
   */
  publish(batches: readonly MessageStream[]): Promise<void>;
  /** True when publishing can be attempted: producer connected and topics ensured. */
  ready(): boolean;
  close(): Promise<void>;
}

/** The one producer call chunked sending needs (a fake one in unit tests). */
export interface SendFn {
  (record: ProducerRecord): Promise<unknown>;
}

export interface ChunkOptions {
  /** Messages per produce request. */
  chunkSize: number;
  /**
   * Bytes (keys + values + headers) per produce request. Keeps each per-partition record batch
   * under the broker's default `message.max.bytes` (1 MiB) even when all messages of a chunk
   * land on one partition. @default MAX_CHUNK_BYTES
   */
  maxChunkBytes?: number;
  /** Produce requests in flight at once, per batch. */
  maxInFlight: number;
  /** Deadline for each produce request to be acknowledged. */
  timeoutMs: number;
  compression: 'none' | 'gzip';
  /** Called after each acknowledged chunk. */
  onAcked?: (topic: string, count: number) => void;
}

class TimeoutError extends Error {}

/**
 * Building the messages of a lazily produced batch failed (a bug, not a Kafka problem): callers
 * must not treat it as retriable or spool the webhook for it. `cause` is the original error.
 */
export class MessageProductionError extends Error {
  constructor(cause: unknown) {
    super(`could not build the messages to publish: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'MessageProductionError';
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`not acknowledged within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Default byte budget of one produce request; see ChunkOptions.maxChunkBytes. */
export const MAX_CHUNK_BYTES = 900 * 1024;

function messageBytes(message: OutgoingMessage): number {
  let bytes = Buffer.byteLength(message.key) + (typeof message.value === 'string' ? Buffer.byteLength(message.value) : message.value.length);
  const headers = message.headers;
  for (const name in headers) bytes += name.length + Buffer.byteLength(headers[name]!) + 8;
  return bytes + 32;
}

/** Lazily splits messages, in order, into chunks of at most `maxCount` messages and `maxBytes` bytes (a larger single message gets a chunk of its own). */
export function* chunks(messages: Iterable<OutgoingMessage>, maxCount: number, maxBytes = Number.POSITIVE_INFINITY): Generator<OutgoingMessage[], void, undefined> {
  let current: OutgoingMessage[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = messageBytes(message);
    if (current.length > 0 && (current.length >= maxCount || bytes + size > maxBytes)) {
      yield current;
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) yield current;
}

/** Splits messages, in order, into chunks of at most `maxCount` messages and `maxBytes` bytes (a larger single message gets a chunk of its own). */
export function chunk(messages: Iterable<OutgoingMessage>, maxCount: number, maxBytes = Number.POSITIVE_INFINITY): OutgoingMessage[][] {
  return [...chunks(messages, maxCount, maxBytes)];
}

/**
 * Sends each batch in chunks of `chunkSize` messages with at most `maxInFlight` produce requests
 * outstanding; a batch starts only after the previous one was fully acknowledged. On the first
 * failure no new chunk starts, and the error is raised once the chunks already in flight settled.
 *
 * Chunks are cut from the batch's messages only when a produce request slot is free, so a lazily
 * produced batch (see webhookMessageStreams) holds at most `maxInFlight` chunks in memory, and
 * each chunk is dropped once acknowledged. An error while producing the messages fails the batch
 * like a failed send, as a MessageProductionError.
 *
 * NOTE: chunks sent before a failure stay in Kafka. That is harmless: event ids are deterministic,
 * so the sender's retry produces the same ids and downstream deduplicates them.
 */
export async function sendInChunks(send: SendFn, batches: readonly MessageStream[], options: ChunkOptions): Promise<void> {
  const compression = options.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
  for (const batch of batches) {
    const pending = chunks(batch.messages, options.chunkSize, options.maxChunkBytes ?? MAX_CHUNK_BYTES);
    let done = false;
    let failure: unknown;
    const worker = async () => {
      while (failure === undefined && !done) {
        let messages: OutgoingMessage[];
        try {
          const next = pending.next();
          if (next.done) {
            done = true;
            return;
          }
          messages = next.value;
        } catch (error) {
          failure ??= new MessageProductionError(error);
          return;
        }
        try {
          await withTimeout(send({ topic: batch.topic, messages, acks: -1, timeout: options.timeoutMs, compression }), options.timeoutMs);
          options.onAcked?.(batch.topic, messages.length);
        } catch (error) {
          failure ??= error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, options.maxInFlight) }, worker));
    if (failure !== undefined) throw failure;
  }
}

export interface KafkaPublisherOptions {
  kafka: Kafka;
  settings: KafkaSettings;
  /** Topics ensured before the publisher reports ready. */
  topics: string[];
  logger: Logger;
  metrics?: IngestMetrics;
  /** First and longest wait between connection attempts. @default [500, 30_000] */
  backoffMs?: [number, number];
}

/**
 * Publishes through one kafkajs producer. `start()` connects and ensures topics in the background,
 * retrying with backoff, so the service starts (and answers 503) while Kafka is unreachable.
 */
export class KafkaPublisher implements Publisher {
  readonly #options: KafkaPublisherOptions;
  readonly #producer: Producer;
  readonly #logger: Logger;
  #connected = false;
  #topicsReady = false;
  #closed = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;

  constructor(options: KafkaPublisherOptions) {
    this.#options = options;
    this.#logger = options.logger.child({ component: 'publisher' });
    const { settings } = options;
    this.#producer = options.kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
      idempotent: settings.idempotent,
      ...(settings.idempotent ? { retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5_000 } } : {}),
    });
    this.#producer.on(this.#producer.events.CONNECT, () => {
      this.#connected = true;
    });
    this.#producer.on(this.#producer.events.DISCONNECT, () => {
      this.#connected = false;
    });
  }

  /** Starts connecting in the background; resolves when ready or closed (callers need not await it). */
  start(): Promise<void> {
    this.#loop ??= this.#connectLoop();
    return this.#loop;
  }

  ready(): boolean {
    return this.#connected && this.#topicsReady && !this.#closed;
  }

  async publish(batches: readonly MessageStream[]): Promise<void> {
    if (!this.ready()) throw new IngestError('INGEST_ERR_KAFKA_UNAVAILABLE', { message: 'Kafka is not connected yet, retry later' });
    const { settings, metrics } = this.#options;
    const started = process.hrtime.bigint();
    let outcome = 'ok';
    try {
      await sendInChunks((record) => this.#producer.send(record), batches, {
        chunkSize: settings.publishChunk,
        maxInFlight: settings.maxInFlight,
        timeoutMs: settings.ackTimeoutMs,
        compression: settings.compression,
        onAcked: (topic, count) => metrics?.eventsPublished.inc({ topic }, count),
      });
    } catch (error) {
      outcome = error instanceof TimeoutError ? 'timeout' : 'error';
      if (error instanceof MessageProductionError) throw error;
      this.#logger.warn({ err: error }, 'publish to Kafka failed');
      throw error instanceof TimeoutError
        ? new IngestError('INGEST_ERR_KAFKA_TIMEOUT', { cause: error })
        : new IngestError('INGEST_ERR_KAFKA_UNAVAILABLE', { cause: error });
    } finally {
      metrics?.publishDuration.observe({ outcome }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake?.();
    // A connection attempt in progress cannot be cancelled; give it a moment, then disconnect anyway.
    if (this.#loop) await Promise.race([this.#loop, delay(2_000)]);
    await Promise.race([this.#producer.disconnect().catch(() => undefined), delay(5_000)]);
    this.#connected = false;
  }

  async #connectLoop(): Promise<void> {
    const [first, longest] = this.#options.backoffMs ?? [500, 30_000];
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        if (!this.#connected) await this.#producer.connect();
        await this.#ensureTopics();
        this.#topicsReady = true;
        this.#logger.info({ brokers: this.#options.settings.brokers }, 'Kafka producer connected, topics ensured');
        return;
      } catch (error) {
        const wait = Math.min(longest, first * 2 ** Math.min(attempt, 16)) * (0.5 + Math.random() / 2);
        this.#logger.warn({ err: error, attempt: attempt + 1, retryInMs: Math.round(wait) }, 'Kafka not reachable yet, retrying');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          timer.unref();
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
  }

  async #ensureTopics(): Promise<void> {
    const { kafka, settings, topics } = this.#options;
    const admin: Admin = kafka.admin();
    await admin.connect();
    try {
      const created = await ensureTopics(admin, topics, { partitions: settings.topicPartitions, replicationFactor: settings.replicationFactor }, this.#logger);
      if (created.length > 0) this.#logger.info({ topics: created }, 'created Kafka topics');
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
