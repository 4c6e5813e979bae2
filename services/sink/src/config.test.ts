import { describe, expect, it } from 'vitest';
import { describeConfig, loadConfig, redactUrl } from './config.js';
import { ConfigError } from './errors.js';

const base = { KAFKA_BROKERS: 'localhost:9092' };
const fail = (env: Record<string, string>) => {
  try {
    loadConfig(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
};

describe('loadConfig', () => {
  it('applies the defaults', () => {
    const c = loadConfig(base);
    expect(c).toMatchObject({
      kafka: { brokers: ['localhost:9092'], clientId: 'clustr-sink', ssl: null, sasl: null },
      groupId: 'clustr-clickhouse-sink',
      topics: { opportunities: 'clustr.opportunities.v1', jobs: 'clustr.jobs.v1', dlq: 'clustr.dlq.v1' },
      batch: { maxRows: 10_000, flushMs: 1_000, maxInflight: 4 },
      retry: { initialMs: 200, maxMs: 30_000 },
      metrics: { port: 9464, host: '0.0.0.0' },
      clickhouse: { database: 'clustr', embeddedPath: './data/clickhouse', httpPort: 8123, httpHost: '127.0.0.1' },
      logLevel: 'info',
    });
    expect(c.clickhouse.url).toBeUndefined();
  });

  it('names the missing or bad variable', () => {
    expect(fail({}).variable).toBe('KAFKA_BROKERS');
    expect(fail({ KAFKA_BROKERS: ' , ' }).variable).toBe('KAFKA_BROKERS');
    expect(fail({ ...base, SINK_BATCH_ROWS: '0' }).variable).toBe('SINK_BATCH_ROWS');
    expect(fail({ ...base, SINK_FLUSH_MS: '1.5' }).variable).toBe('SINK_FLUSH_MS');
    expect(fail({ ...base, METRICS_PORT: '70000' }).variable).toBe('METRICS_PORT');
    expect(fail({ ...base, CLICKHOUSE_DATABASE: 'a-b; drop' }).variable).toBe('CLICKHOUSE_DATABASE');
    expect(fail({ ...base, KAFKA_SASL_MECHANISM: 'gssapi' }).variable).toBe('KAFKA_SASL_MECHANISM');
    expect(fail({ ...base, KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'u' }).variable).toBe('KAFKA_SASL_PASSWORD');
    expect(fail({ ...base, KAFKA_SASL_USERNAME: 'u' }).variable).toBe('KAFKA_SASL_MECHANISM');
    expect(fail({ ...base, SINK_RETRY_INITIAL_MS: '5000', SINK_RETRY_MAX_MS: '100' }).variable).toBe('SINK_RETRY_INITIAL_MS');
    expect(fail({ ...base, TOPIC_DLQ: 'clustr.jobs.v1' }).variable).toBe('TOPIC_DLQ');
    expect(fail({ ...base, LOG_LEVEL: 'loud' }).variable).toBe('LOG_LEVEL');
  });

  it('parses booleans strictly', () => {
    expect(loadConfig({ ...base, KAFKA_SSL: 'TRUE' }).kafka.ssl).toEqual({ rejectUnauthorized: true });
    expect(loadConfig({ ...base, KAFKA_SSL: '0' }).kafka.ssl).toBeNull();
    expect(loadConfig({ ...base, KAFKA_SSL: 'true', KAFKA_SSL_REJECT_UNAUTHORIZED: 'false' }).kafka.ssl).toEqual({ rejectUnauthorized: false });
    expect(fail({ ...base, KAFKA_SSL: 'yes' }).variable).toBe('KAFKA_SSL');
    expect(fail({ ...base, CLICKHOUSE_TLS_REJECT_UNAUTHORIZED: 'nope' }).variable).toBe('CLICKHOUSE_TLS_REJECT_UNAUTHORIZED');
  });

  it('treats empty variables as unset and accepts CLICKHOUSE_HTTP_PORT=none/0', () => {
    expect(loadConfig({ ...base, SINK_BATCH_ROWS: '', CLICKHOUSE_URL: '' }).batch.maxRows).toBe(10_000);
    expect(loadConfig({ ...base, CLICKHOUSE_HTTP_PORT: 'none' }).clickhouse.httpPort).toBeNull();
    expect(loadConfig({ ...base, CLICKHOUSE_HTTP_PORT: '0' }).clickhouse.httpPort).toBe(0);
  });

  it('never puts secrets in errors or in the loggable config', () => {
    const e = fail({ ...base, CLICKHOUSE_URL: 'ftp://u:hunter2@host' });
    expect(e.variable).toBe('CLICKHOUSE_URL');
    expect(e.message).not.toContain('hunter2');
    const c = loadConfig({ ...base, CLICKHOUSE_URL: 'https://u:hunter2@ch:8443', KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'hunter2' });
    expect(c.clickhouse.url).toBe('https://u:hunter2@ch:8443');
    expect(JSON.stringify(describeConfig(c))).not.toContain('hunter2');
    expect(redactUrl('http://a:b@h:1/')).toBe('http://a:***@h:1/');
  });
});
