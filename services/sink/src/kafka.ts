import { readFileSync } from 'node:fs';
import { Kafka, logLevel, type Consumer, type KafkaConfig as KafkaJsConfig, type LogEntry, type SASLOptions } from 'kafkajs';
import type { Logger } from 'pino';
import type { KafkaConfig } from './config.js';
import type { ConsumerPort } from './consumer.js';

/** kafkajs log entries → pino, at the matching level (kafkajs INFO is chatty: mapped to debug). */
export function kafkaLogCreator(logger: Logger) {
  return () =>
    ({ namespace, level, log }: LogEntry) => {
      const { message, timestamp: _timestamp, ...extra } = log;
      const fields = { kafkajs: namespace, ...extra };
      if (level === logLevel.ERROR) logger.error(fields, message);
      else if (level === logLevel.WARN) logger.warn(fields, message);
      else logger.debug(fields, message);
    };
}

export function kafkaClientConfig(config: KafkaConfig, logger: Logger): KafkaJsConfig {
  const ssl = config.ssl
    ? {
        rejectUnauthorized: config.ssl.rejectUnauthorized,
        ...(config.ssl.caFile !== undefined ? { ca: [readFileSync(config.ssl.caFile, 'utf8')] } : {}),
      }
    : undefined;
  const sasl: SASLOptions | undefined = config.sasl
    ? ({ mechanism: config.sasl.mechanism, username: config.sasl.username, password: config.sasl.password } as SASLOptions)
    : undefined;
  return {
    clientId: config.clientId,
    brokers: config.brokers,
    ...(ssl ? { ssl } : {}),
    ...(sasl ? { sasl } : {}),
    logLevel: logLevel.INFO,
    logCreator: kafkaLogCreator(logger.child({ component: 'kafkajs' })),
    retry: { initialRetryTime: 300, retries: 8 },
  };
}

export function createKafka(config: KafkaConfig, logger: Logger): Kafka {
  return new Kafka(kafkaClientConfig(config, logger));
}

/**
 * The sink's consumer settings: manual commits, manual offset resolution (we resolve exactly the
 * messages we took into a buffer or the DLQ queue).
 */
export function createSinkConsumer(kafka: Kafka, groupId: string, options: { sessionTimeoutMs: number }): Consumer {
  return kafka.consumer({
    groupId,
    sessionTimeout: options.sessionTimeoutMs,
    rebalanceTimeout: 60_000,
    heartbeatInterval: Math.min(3_000, Math.floor(options.sessionTimeoutMs / 3)),
    maxWaitTimeInMs: 500,
    allowAutoTopicCreation: false,
  });
}

/** The kafkajs Consumer behind the narrow {@link ConsumerPort}. */
export function consumerPort(consumer: Consumer): ConsumerPort {
  return {
    connect: () => consumer.connect(),
    subscribe: (s) => consumer.subscribe({ topics: s.topics, fromBeginning: s.fromBeginning }),
    run: (c) =>
      consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: (payload) => c.eachBatch(payload),
      }),
    commitOffsets: (offsets) => consumer.commitOffsets(offsets),
    pause: (topics) => consumer.pause(topics),
    resume: (topics) => consumer.resume(topics),
    disconnect: () => consumer.disconnect(),
    onGroupJoin: (listener) => void consumer.on(consumer.events.GROUP_JOIN, (e) => listener(e.payload.memberAssignment)),
    onRebalancing: (listener) => void consumer.on(consumer.events.REBALANCING, () => listener()),
    onCrash: (listener) => void consumer.on(consumer.events.CRASH, (e) => listener(e.payload.error, e.payload.restart)),
  };
}
