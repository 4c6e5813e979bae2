import type { FastifyInstance } from 'fastify';
import { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import type { IngestConfig } from './config.js';
import { kafkaClientConfig } from './kafka.js';
import { createLogger } from './logger.js';
import { createMetrics } from './metrics.js';
import { KafkaPublisher, type Publisher } from './publisher.js';
import { buildServer } from './server.js';

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

  if (!config.webhookSecret) {
    logger.warn(
      '!!! WEBHOOK_SECRET is not set: POST /webhooks/clustr accepts UNAUTHENTICATED requests. Set WEBHOOK_SECRET in any shared or production environment. !!!',
    );
  }

  const app = buildServer(config, { publisher, logger, metrics });
  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    await publisher.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info({ url, brokers: config.kafka.brokers, topics: config.topics }, 'clustr ingest listening');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Order matters: stop intake and drain in-flight requests first, then flush Kafka.
      await app.close();
      await publisher.close();
      logger.info('clustr ingest stopped');
    })());
  return { app, url, publisher, close };
}
