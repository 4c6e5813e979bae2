import { TOPICS } from '@clustr-pipeline/schema';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

const base = { KAFKA_BROKERS: 'kafka-1:9092, kafka-2:9093' };

function errorOf(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig(base);
    expect(config).toEqual({
      port: 8080,
      host: '0.0.0.0',
      logLevel: 'info',
      bodyLimitBytes: 64 * 1024 * 1024,
      ceSource: 'urn:clustr-pipeline:ingest',
      topics: { opportunities: TOPICS.opportunities, jobs: TOPICS.jobs, dlq: TOPICS.dlq },
      kafka: {
        brokers: ['kafka-1:9092', 'kafka-2:9093'],
        clientId: 'clustr-ingest',
        ssl: false,
        idempotent: false,
        ackTimeoutMs: 15_000,
        publishChunk: 2_000,
        maxInFlight: 4,
        compression: 'none',
        topicPartitions: 6,
        replicationFactor: 1,
      },
      spool: { enabled: true, dir: './data/spool', maxBytes: 1024 * 1024 * 1024 },
      limits: {
        trustProxy: false,
        ratePerMinute: 600,
        maxEventLoopDelayMs: 1_000,
        maxHeapUsedBytes: expect.any(Number),
        requestTimeoutMs: 30_000,
        headersTimeoutMs: 10_000,
        keepAliveTimeoutMs: 72_000,
        connectionTimeoutMs: 300_000,
        maxOpportunities: 200_000,
        maxJsonDepth: 64,
      },
    });
    expect(config.limits.maxHeapUsedBytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(config.webhookSecret).toBeUndefined();
  });

  it('reads every variable', () => {
    const config = loadConfig({
      ...base,
      PORT: '9000',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'debug',
      KAFKA_CLIENT_ID: 'x',
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: '/etc/ca.pem',
      KAFKA_SSL_REJECT_UNAUTHORIZED: '0',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'u',
      KAFKA_SASL_PASSWORD: 'p',
      KAFKA_IDEMPOTENT: 'TRUE',
      KAFKA_ACK_TIMEOUT_MS: '2500',
      KAFKA_PUBLISH_CHUNK: '100',
      KAFKA_MAX_IN_FLIGHT: '2',
      KAFKA_COMPRESSION: 'gzip',
      KAFKA_TOPIC_PARTITIONS: '12',
      KAFKA_REPLICATION_FACTOR: '3',
      WEBHOOK_SECRET: 's3cret',
      BODY_LIMIT_MB: '0.5',
      CE_SOURCE: 'urn:test',
      TOPIC_OPPORTUNITIES: 'o',
      TOPIC_JOBS: 'j',
      TOPIC_DLQ: 'd',
      INGEST_SPOOL_ENABLED: 'false',
      INGEST_SPOOL_DIR: '/var/spool/x',
      INGEST_SPOOL_MAX_MB: '2',
      RATE_LIMIT_PER_MINUTE: '0',
      TRUST_PROXY: '10.0.0.0/8, 127.0.0.1',
      MAX_EVENT_LOOP_DELAY_MS: '250',
      MAX_HEAP_USED_BYTES: '123456789',
      REQUEST_TIMEOUT_MS: '5000',
      HEADERS_TIMEOUT_MS: '4000',
      KEEP_ALIVE_TIMEOUT_MS: '6000',
      CONNECTION_TIMEOUT_MS: '0',
      MAX_OPPORTUNITIES: '10',
      MAX_JSON_DEPTH: '20',
    });
    expect(config).toMatchObject({
      spool: { enabled: false, dir: '/var/spool/x', maxBytes: 2 * 1024 * 1024 },
      limits: {
        trustProxy: '10.0.0.0/8, 127.0.0.1',
        ratePerMinute: 0,
        maxEventLoopDelayMs: 250,
        maxHeapUsedBytes: 123_456_789,
        requestTimeoutMs: 5_000,
        headersTimeoutMs: 4_000,
        keepAliveTimeoutMs: 6_000,
        connectionTimeoutMs: 0,
        maxOpportunities: 10,
        maxJsonDepth: 20,
      },
      port: 9000,
      host: '127.0.0.1',
      logLevel: 'debug',
      bodyLimitBytes: 512 * 1024,
      webhookSecret: 's3cret',
      ceSource: 'urn:test',
      topics: { opportunities: 'o', jobs: 'j', dlq: 'd' },
      kafka: {
        clientId: 'x',
        ssl: { caFile: '/etc/ca.pem', rejectUnauthorized: false },
        sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' },
        idempotent: true,
        ackTimeoutMs: 2500,
        publishChunk: 100,
        maxInFlight: 2,
        compression: 'gzip',
        topicPartitions: 12,
        replicationFactor: 3,
      },
    });
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig({ ...base, PORT: '', WEBHOOK_SECRET: '' })).toMatchObject({ port: 8080 });
    expect(loadConfig({ ...base, WEBHOOK_SECRET: '' }).webhookSecret).toBeUndefined();
  });

  it.each([
    [{ KAFKA_BROKERS: undefined }, 'KAFKA_BROKERS', /required/],
    [{ KAFKA_BROKERS: 'localhost' }, 'KAFKA_BROKERS', /host:port/],
    [{ KAFKA_BROKERS: ' , ' }, 'KAFKA_BROKERS', /at least one/],
    [{ PORT: 'eighty' }, 'PORT', /number/],
    [{ PORT: '70000' }, 'PORT', /./],
    [{ KAFKA_ACK_TIMEOUT_MS: '1.5' }, 'KAFKA_ACK_TIMEOUT_MS', /whole/],
    [{ KAFKA_PUBLISH_CHUNK: '0' }, 'KAFKA_PUBLISH_CHUNK', /./],
    [{ KAFKA_SSL: 'yes' }, 'KAFKA_SSL', /true, false, 1 or 0/],
    [{ KAFKA_IDEMPOTENT: 'on' }, 'KAFKA_IDEMPOTENT', /true, false, 1 or 0/],
    [{ KAFKA_COMPRESSION: 'snappy' }, 'KAFKA_COMPRESSION', /./],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', /./],
    [{ BODY_LIMIT_MB: '-1' }, 'BODY_LIMIT_MB', /./],
    [{ KAFKA_SSL_CA_FILE: '/ca.pem' }, 'KAFKA_SSL_CA_FILE', /KAFKA_SSL/],
    [{ TOPIC_DLQ: TOPICS.jobs }, 'TOPIC_DLQ', /must differ/],
    [{ INGEST_SPOOL_MAX_MB: '0' }, 'INGEST_SPOOL_MAX_MB', /./],
    [{ INGEST_SPOOL_ENABLED: 'maybe' }, 'INGEST_SPOOL_ENABLED', /true, false, 1 or 0/],
    [{ RATE_LIMIT_PER_MINUTE: '-1' }, 'RATE_LIMIT_PER_MINUTE', /./],
    [{ HEADERS_TIMEOUT_MS: '40000' }, 'HEADERS_TIMEOUT_MS', /REQUEST_TIMEOUT_MS/],
    [{ MAX_JSON_DEPTH: '2' }, 'MAX_JSON_DEPTH', /./],
    [{ TRUST_PROXY: 'yes please' }, 'TRUST_PROXY', /hop count/],
  ])('rejects %j naming %s', (env, variable, message) => {
    const error = errorOf({ ...base, ...env });
    expect(error.variables).toContain(variable);
    expect(error.message).toContain(variable);
    expect(error.message).toMatch(message);
  });

  describe('SASL', () => {
    it('requires both username and password with a mechanism', () => {
      expect(errorOf({ ...base, KAFKA_SASL_MECHANISM: 'plain' }).variables).toEqual(['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD']);
      expect(errorOf({ ...base, KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u' }).variables).toEqual(['KAFKA_SASL_PASSWORD']);
      expect(errorOf({ ...base, KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_PASSWORD: 'p' }).variables).toEqual(['KAFKA_SASL_USERNAME']);
    });
    it('rejects credentials without a mechanism, and unknown mechanisms', () => {
      expect(errorOf({ ...base, KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' }).variables).toEqual(['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD']);
      expect(errorOf({ ...base, KAFKA_SASL_MECHANISM: 'gssapi', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' }).variables).toContain('KAFKA_SASL_MECHANISM');
    });
    it('accepts each supported mechanism', () => {
      for (const mechanism of ['plain', 'scram-sha-256', 'scram-sha-512'] as const) {
        const config = loadConfig({ ...base, KAFKA_SASL_MECHANISM: mechanism, KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' });
        expect(config.kafka.sasl).toEqual({ mechanism, username: 'u', password: 'p' });
      }
    });
    it('never echoes a rejected value (it may be a secret)', () => {
      const error = errorOf({ ...base, KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u', BODY_LIMIT_MB: 'hunter2-secret' });
      expect(error.message).not.toContain('hunter2');
    });
  });
});
