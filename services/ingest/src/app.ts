import type { FastifyInstance } from 'fastify';
import { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import type { IngestConfig } from './config.js';
import { kafkaClientConfig } from './kafka.js';
import { createLogger } from './logger.js';
import { createMetrics } from './metrics.js';
import { KafkaPublisher, type Publisher } from './publisher.js';
import { buildServer } from './server.js';
import { SpoolDrainer } from './spool-drainer.js';
import { Spool } from './spool.js';

export interface StartIngestOptions {
  /** A pino logger; build it with `createLogger` so that credentials are redacted. */
  logger?: Logger;
  /**
   * Replaces the Kafka publisher (tests, or a later spooling publisher). When given, the caller
   * owns its lifecycle up to `close()`, which still closes it.
   */
  publisher?: Publisher;
}

export interface RunningIngest {
  app: FastifyInstance;
  /** `http://host:port` the server listens on (the real port when PORT=0). */
  url: string;
  publisher: Publisher;
  /** The disk spool (undefined when INGEST_SPOOL_ENABLED=false). */
  spool: Spool | undefined;
  /** Stops accepting requests, waits for those in flight, then flushes and disconnects Kafka. Idempotent. */
  close(): Promise<void>;
}

/**
 * Builds the server, starts connecting to Kafka in the background (the service answers 503 until
 * it is connected, so an unreachable Kafka never prevents start-up) and listens.
 */
export async function startIngest(config: IngestConfig, options: StartIngestOptions = {}): Promise<RunningIngest> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const metrics = createMetrics();
  let publisher = options.publisher;
  if (!publisher) {
    const kafkaPublisher = new KafkaPublisher({
      kafka: new Kafka(kafkaClientConfig(config.kafka, logger)),
      settings: config.kafka,
      topics: [config.topics.opportunities, config.topics.jobs, config.topics.dlq],
      logger,
      metrics,
    });
    void kafkaPublisher.start();
    publisher = kafkaPublisher;
  }

  // The spool is opened before listening: files left by a crash are published first, in order.
  let spool: Spool | undefined;
  let drainer: SpoolDrainer | undefined;
  if (config.spool.enabled) {
    try {
      spool = await Spool.open({ dir: config.spool.dir, maxBytes: config.spool.maxBytes, logger });
    } catch (error) {
      await publisher.close();
      throw error;
    }
    drainer = new SpoolDrainer({ spool, publisher, messages: { ceSource: config.ceSource, topics: config.topics }, logger, metrics });
    drainer.start();
  }

  if (!config.webhookSecret) {
    logger.warn(
      '!!! WEBHOOK_SECRET is not set: POST /webhooks/clustr accepts UNAUTHENTICATED requests. Set WEBHOOK_SECRET in any shared or production environment. !!!',
    );
  }

  const app = buildServer(config, { publisher, logger, metrics, ...(spool ? { spool } : {}) });
  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    await drainer?.close();
    await publisher.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info({ url, brokers: config.kafka.brokers, topics: config.topics, spool: spool ? { dir: config.spool.dir, ...spool.stats() } : 'disabled' }, 'clustr ingest listening');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Order matters: stop intake and drain in-flight requests first, then let the spool drainer
      // finish the webhook it is publishing (the rest stays on disk for the next start), then flush Kafka.
      await app.close();
      await drainer?.close();
      await publisher.close();
      logger.info('clustr ingest stopped');
    })());
  return { app, url, publisher, spool, close };
}
