import { TOPICS } from '@clustr-pipeline/schema';
import { z } from 'zod';
import { ConfigError } from './errors.js';

/**
 * The sink's configuration, parsed once from the environment in `main.ts` and passed down as a typed
 * object. Nothing else reads `process.env`. Empty variables count as unset (docker-compose habit).
 */

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

/** Only `true`/`false`/`1`/`0`: `"yes"` or `"False "` are mistakes worth failing start-up for. */
const strictBoolean = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ['true', 'false', '1', '0'].includes(v), { message: 'must be true, false, 1 or 0' })
  .transform((v) => v === 'true' || v === '1');

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, { message: 'must be a whole number' })
    .transform(Number)
    .refine((n) => n >= min && n <= max, { message: `must be between ${min} and ${max}` });

const port = int(0, 65_535);
const topic = z.string().trim().regex(TOPIC_NAME, { message: 'must be a Kafka topic name ([A-Za-z0-9._-])' });

const brokers = z
  .string()
  .transform((v) => v.split(',').map((b) => b.trim()).filter((b) => b.length > 0))
  .refine((list) => list.length > 0, { message: 'must list at least one host:port' })
  .refine((list) => list.every((b) => /^[^\s:/]+:\d{1,5}$/.test(b) || /^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(b)), {
    message: 'must be a comma-separated list of host:port',
  });

const clickhouseUrl = z
  .string()
  .trim()
  .refine(
    (v) => {
      try {
        const u = new URL(v);
        return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname.length > 0;
      } catch {
        return false;
      }
    },
    // NOTE: never echo the value: it usually carries a password.
    { message: 'must be an http(s)://[user:password@]host:port URL' },
  );

const envSchema = z.object({
  KAFKA_BROKERS: brokers,
  KAFKA_CLIENT_ID: z.string().trim().min(1).default('clustr-sink'),
  KAFKA_SSL: strictBoolean.optional(),
  KAFKA_SSL_CA_FILE: z.string().trim().min(1).optional(),
  KAFKA_SSL_REJECT_UNAUTHORIZED: strictBoolean.default(true),
  KAFKA_SASL_MECHANISM: z.enum(SASL_MECHANISMS).optional(),
  KAFKA_SASL_USERNAME: z.string().min(1).optional(),
  KAFKA_SASL_PASSWORD: z.string().min(1).optional(),
  KAFKA_SESSION_TIMEOUT_MS: int(6_000, 300_000).default(30_000),
  SINK_GROUP_ID: z.string().trim().min(1).default('clustr-clickhouse-sink'),
  SINK_BATCH_ROWS: int(1, 1_000_000).default(10_000),
  SINK_FLUSH_MS: int(1, 3_600_000).default(1_000),
  SINK_MAX_INFLIGHT_BATCHES: int(1, 64).default(4),
  SINK_RETRY_INITIAL_MS: int(1, 3_600_000).default(200),
  SINK_RETRY_MAX_MS: int(1, 3_600_000).default(30_000),
  SINK_SHUTDOWN_TIMEOUT_MS: int(0, 3_600_000).default(30_000),
  SINK_UNHEALTHY_AFTER_MS: int(0, 3_600_000).default(60_000),
  METRICS_PORT: port.default(9464),
  METRICS_HOST: z.string().trim().min(1).default('0.0.0.0'),
  CLICKHOUSE_URL: clickhouseUrl.optional(),
  CLICKHOUSE_DATABASE: z.string().trim().regex(IDENTIFIER, { message: 'must be an identifier ([A-Za-z_][A-Za-z0-9_]*)' }).default('clustr'),
  CLICKHOUSE_EMBEDDED_PATH: z.string().trim().min(1).default('./data/clickhouse'),
  CLICKHOUSE_HTTP_PORT: z
    .string()
    .trim()
    .refine((v) => v === 'none' || (/^\d+$/.test(v) && Number(v) <= 65_535), { message: 'must be a port (0 = any free port) or "none"' })
    .transform((v) => (v === 'none' ? null : Number(v)))
    .default(8123),
  CLICKHOUSE_HTTP_HOST: z.string().trim().min(1).default('127.0.0.1'),
  CLICKHOUSE_REQUEST_TIMEOUT_MS: int(1, 3_600_000).optional(),
  CLICKHOUSE_EMBEDDED_PURGE_MS: int(0, 3_600_000).default(10_000),
  CLICKHOUSE_TLS_CA_FILE: z.string().trim().min(1).optional(),
  CLICKHOUSE_TLS_REJECT_UNAUTHORIZED: strictBoolean.optional(),
  TOPIC_OPPORTUNITIES: topic.default(TOPICS.opportunities),
  TOPIC_JOBS: topic.default(TOPICS.jobs),
  TOPIC_DLQ: topic.default(TOPICS.dlq),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
});

export type LogLevel = (typeof LOG_LEVELS)[number];
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

export interface KafkaConfig {
  brokers: string[];
  clientId: string;
  /** TLS to the brokers. On when `KAFKA_SSL=true`, or implied by `KAFKA_SSL_CA_FILE`. */
  ssl: { caFile?: string; rejectUnauthorized: boolean } | null;
  sasl: { mechanism: SaslMechanism; username: string; password: string } | null;
  /** Consumer-group session timeout; heartbeats go every third of it (at most 3 s). */
  sessionTimeoutMs: number;
}

export interface SinkConfig {
  kafka: KafkaConfig;
  groupId: string;
  topics: { opportunities: string; jobs: string; dlq: string };
  batch: { maxRows: number; flushMs: number; maxInflight: number };
  retry: { initialMs: number; maxMs: number };
  shutdownTimeoutMs: number;
  /** `/healthz` turns 503 once ClickHouse writes have been failing for this long. */
  unhealthyAfterMs: number;
  metrics: { port: number; host: string };
  /** Shaped like `ClickHouseOptions` of `clickhouse.ts`. */
  clickhouse: {
    url?: string;
    database: string;
    embeddedPath: string;
    httpPort: number | null;
    httpHost: string;
    requestTimeoutMs?: number;
    tls?: { caFile?: string; rejectUnauthorized?: boolean };
    embeddedPurgeMs: number;
  };
  logLevel: LogLevel;
}

type Env = Record<string, string | undefined>;

/** Parses the environment. Throws {@link ConfigError} naming the first bad variable. */
export function loadConfig(env: Env): SinkConfig {
  const cleaned: Env = {};
  for (const key of Object.keys(envSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') cleaned[key] = value;
  }
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const variable = String(issue.path[0] ?? 'environment');
    const message = issue.code === 'invalid_type' && cleaned[variable] === undefined ? 'is required' : issue.message;
    throw new ConfigError(variable, message);
  }
  const e = parsed.data;

  if (e.SINK_RETRY_INITIAL_MS > e.SINK_RETRY_MAX_MS) {
    throw new ConfigError('SINK_RETRY_INITIAL_MS', `must not exceed SINK_RETRY_MAX_MS (${e.SINK_RETRY_MAX_MS})`);
  }
  const sslOn = e.KAFKA_SSL ?? e.KAFKA_SSL_CA_FILE !== undefined;
  if (e.KAFKA_SSL === false && e.KAFKA_SSL_CA_FILE !== undefined) {
    throw new ConfigError('KAFKA_SSL_CA_FILE', 'is set but KAFKA_SSL=false');
  }
  let sasl: KafkaConfig['sasl'] = null;
  if (e.KAFKA_SASL_MECHANISM !== undefined) {
    if (e.KAFKA_SASL_USERNAME === undefined) throw new ConfigError('KAFKA_SASL_USERNAME', `is required with KAFKA_SASL_MECHANISM`);
    if (e.KAFKA_SASL_PASSWORD === undefined) throw new ConfigError('KAFKA_SASL_PASSWORD', `is required with KAFKA_SASL_MECHANISM`);
    sasl = { mechanism: e.KAFKA_SASL_MECHANISM, username: e.KAFKA_SASL_USERNAME, password: e.KAFKA_SASL_PASSWORD };
  } else if (e.KAFKA_SASL_USERNAME !== undefined || e.KAFKA_SASL_PASSWORD !== undefined) {
    throw new ConfigError('KAFKA_SASL_MECHANISM', 'is required when KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is set');
  }
  const topics = { opportunities: e.TOPIC_OPPORTUNITIES, jobs: e.TOPIC_JOBS, dlq: e.TOPIC_DLQ };
  if (new Set(Object.values(topics)).size !== 3) {
    throw new ConfigError('TOPIC_DLQ', 'TOPIC_OPPORTUNITIES, TOPIC_JOBS and TOPIC_DLQ must be three different topics');
  }
  const chTls =
    e.CLICKHOUSE_TLS_CA_FILE !== undefined || e.CLICKHOUSE_TLS_REJECT_UNAUTHORIZED !== undefined
      ? {
          ...(e.CLICKHOUSE_TLS_CA_FILE !== undefined ? { caFile: e.CLICKHOUSE_TLS_CA_FILE } : {}),
          ...(e.CLICKHOUSE_TLS_REJECT_UNAUTHORIZED !== undefined ? { rejectUnauthorized: e.CLICKHOUSE_TLS_REJECT_UNAUTHORIZED } : {}),
        }
      : undefined;
  if (chTls && e.CLICKHOUSE_URL !== undefined && !e.CLICKHOUSE_URL.startsWith('https:')) {
    throw new ConfigError('CLICKHOUSE_TLS_CA_FILE', 'TLS settings need an https:// CLICKHOUSE_URL');
  }

  return {
    kafka: {
      brokers: e.KAFKA_BROKERS,
      clientId: e.KAFKA_CLIENT_ID,
      ssl: sslOn
        ? { ...(e.KAFKA_SSL_CA_FILE !== undefined ? { caFile: e.KAFKA_SSL_CA_FILE } : {}), rejectUnauthorized: e.KAFKA_SSL_REJECT_UNAUTHORIZED }
        : null,
      sasl,
      sessionTimeoutMs: e.KAFKA_SESSION_TIMEOUT_MS,
    },
    groupId: e.SINK_GROUP_ID,
    topics,
    batch: { maxRows: e.SINK_BATCH_ROWS, flushMs: e.SINK_FLUSH_MS, maxInflight: e.SINK_MAX_INFLIGHT_BATCHES },
    retry: { initialMs: e.SINK_RETRY_INITIAL_MS, maxMs: e.SINK_RETRY_MAX_MS },
    shutdownTimeoutMs: e.SINK_SHUTDOWN_TIMEOUT_MS,
    unhealthyAfterMs: e.SINK_UNHEALTHY_AFTER_MS,
    metrics: { port: e.METRICS_PORT, host: e.METRICS_HOST },
    clickhouse: {
      ...(e.CLICKHOUSE_URL !== undefined ? { url: e.CLICKHOUSE_URL } : {}),
      database: e.CLICKHOUSE_DATABASE,
      embeddedPath: e.CLICKHOUSE_EMBEDDED_PATH,
      httpPort: e.CLICKHOUSE_HTTP_PORT,
      httpHost: e.CLICKHOUSE_HTTP_HOST,
      ...(e.CLICKHOUSE_REQUEST_TIMEOUT_MS !== undefined ? { requestTimeoutMs: e.CLICKHOUSE_REQUEST_TIMEOUT_MS } : {}),
      ...(chTls ? { tls: chTls } : {}),
      embeddedPurgeMs: e.CLICKHOUSE_EMBEDDED_PURGE_MS,
    },
    logLevel: e.LOG_LEVEL,
  };
}

/** `https://user:secret@host` → `https://user:***@host`. Unparseable input is hidden entirely. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '***';
  }
}

/** The config as it may be logged: passwords removed. */
export function describeConfig(config: SinkConfig): Record<string, unknown> {
  return {
    ...config,
    kafka: { ...config.kafka, sasl: config.kafka.sasl ? { mechanism: config.kafka.sasl.mechanism, username: config.kafka.sasl.username, password: '***' } : null },
    clickhouse: { ...config.clickhouse, ...(config.clickhouse.url !== undefined ? { url: redactUrl(config.clickhouse.url) } : {}) },
  };
}
