import { readFileSync } from 'node:fs';
import { logLevel as KafkaLogLevel, type KafkaConfig, type logCreator, type SASLOptions } from 'kafkajs';
import type { Logger } from 'pino';
import type { KafkaSettings } from './config.js';

/** Routes kafkajs' own logs into pino (debug/info are demoted: kafkajs is chatty about reconnects). */
function pinoLogCreator(logger: Logger): logCreator {
  const child = logger.child({ component: 'kafkajs' });
  return () =>
    ({ level, log }) => {
      const { message, ...extra } = log;
      if (level === KafkaLogLevel.ERROR) child.warn(extra, message);
      else if (level === KafkaLogLevel.WARN) child.warn(extra, message);
      else child.debug(extra, message);
    };
}

function sasl(settings: KafkaSettings): SASLOptions | undefined {
  const s = settings.sasl;
  if (!s) return undefined;
  switch (s.mechanism) {
    case 'plain':
      return { mechanism: 'plain', username: s.username, password: s.password };
    case 'scram-sha-256':
      return { mechanism: 'scram-sha-256', username: s.username, password: s.password };
    case 'scram-sha-512':
      return { mechanism: 'scram-sha-512', username: s.username, password: s.password };
  }
}

/** kafkajs client options from the resolved settings: brokers, TLS, SASL, timeouts, logging. */
export function kafkaClientConfig(settings: KafkaSettings, logger: Logger): KafkaConfig {
  const ssl = settings.ssl
    ? {
        rejectUnauthorized: settings.ssl.rejectUnauthorized,
        ...(settings.ssl.caFile ? { ca: [readFileSync(settings.ssl.caFile, 'utf8')] } : {}),
      }
    : false;
  const mechanism = sasl(settings);
  return {
    clientId: settings.clientId,
    brokers: settings.brokers,
    ssl,
    ...(mechanism ? { sasl: mechanism } : {}),
    connectionTimeout: Math.min(10_000, settings.ackTimeoutMs),
    requestTimeout: Math.max(settings.ackTimeoutMs, 1_000),
    // Publishing has its own deadline (KAFKA_ACK_TIMEOUT_MS); keep kafkajs' retries within it.
    retry: { initialRetryTime: 200, maxRetryTime: 5_000, retries: 5 },
    logLevel: KafkaLogLevel.WARN,
    logCreator: pinoLogCreator(logger),
  };
}

/** kafkajs marks transient failures (leader moves, timeouts, lost connections) as `retriable`. */
export function isRetriableKafkaError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { retriable?: unknown }).retriable === true;
}
