import { TOPICS } from '@clustr-pipeline/schema';
import { getHeapStatistics } from 'node:v8';
import { z } from 'zod';

/**
 * The only place that reads the environment: `main.ts` calls `loadConfig(process.env)` once and
 * passes the typed result down. An invalid value throws a ConfigError naming the variable.
 */

export class ConfigError extends Error {
  /** The offending environment variables, first one first. */
  readonly variables: string[];
  constructor(problems: Array<{ variable: string; message: string }>) {
    super(`Invalid configuration: ${problems.map((p) => `${p.variable}: ${p.message}`).join('; ')}`);
    this.name = 'ConfigError';
    this.variables = problems.map((p) => p.variable);
  }
}

/** Strict boolean: "true"/"false"/"1"/"0" (any case); anything else is an error (unlike z.coerce.boolean). */
const bool = (fallback: boolean) =>
  z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(['true', 'false', '1', '0'], { error: 'expected true, false, 1 or 0' }))
    .transform((v) => v === 'true' || v === '1')
    .default(fallback);

const int = (fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number({ error: 'expected a number' }).int('expected a whole number').min(min).max(max).default(fallback);

const text = z.string().trim().min(1);

/** ~85 % of V8's heap limit: past it the service sheds load (503) instead of crashing with an OOM. */
function defaultMaxHeapUsedBytes(): number {
  return Math.floor(getHeapStatistics().heap_size_limit * 0.85);
}

const brokerList = z
  .string()
  .transform((v) => v.split(',').map((b) => b.trim()).filter((b) => b !== ''))
  .pipe(
    z
      .array(z.string().regex(/^[^\s:,]+:\d{1,5}$/, 'each broker must be host:port'))
      .min(1, 'at least one broker (host:port) is required'),
  );

const envSchema = z
  .object({
    PORT: int(8080, 0, 65_535),
    HOST: text.default('0.0.0.0'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    KAFKA_BROKERS: brokerList,
    KAFKA_CLIENT_ID: text.default('clustr-ingest'),
    KAFKA_SSL: bool(false),
    KAFKA_SSL_CA_FILE: text.optional(),
    KAFKA_SSL_REJECT_UNAUTHORIZED: bool(true),
    KAFKA_SASL_MECHANISM: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
    KAFKA_SASL_USERNAME: text.optional(),
    KAFKA_SASL_PASSWORD: z.string().min(1).optional(),
    KAFKA_IDEMPOTENT: bool(false),
    KAFKA_ACK_TIMEOUT_MS: int(15_000, 100, 600_000),
    KAFKA_PUBLISH_CHUNK: int(2_000, 1, 100_000),
    KAFKA_MAX_IN_FLIGHT: int(4, 1, 64),
    KAFKA_COMPRESSION: z.enum(['none', 'gzip']).default('none'),
    KAFKA_TOPIC_PARTITIONS: int(6, 1, 10_000),
    KAFKA_REPLICATION_FACTOR: int(1, 1, 100),
    WEBHOOK_SECRET: z.string().min(1).optional(),
    BODY_LIMIT_MB: z.coerce.number({ error: 'expected a number' }).positive().max(1024).default(64),
    CE_SOURCE: text.default('urn:clustr-pipeline:ingest'),
    TOPIC_OPPORTUNITIES: text.default(TOPICS.opportunities),
    TOPIC_JOBS: text.default(TOPICS.jobs),
    TOPIC_DLQ: text.default(TOPICS.dlq),
    INGEST_SPOOL_ENABLED: bool(true),
    INGEST_SPOOL_DIR: text.default('./data/spool'),
    INGEST_SPOOL_MAX_MB: z.coerce.number({ error: 'expected a number' }).positive().max(1_048_576).default(1024),
    RATE_LIMIT_PER_MINUTE: int(600, 0, 10_000_000),
    TRUST_PROXY: z
      .string()
      .trim()
      .regex(/^(true|false|\d{1,2}|[0-9a-fA-F.:/,\s]+)$/, 'expected true, false, a hop count or a comma-separated list of proxy addresses/CIDRs')
      .transform((v): boolean | number | string => (v === 'true' ? true : v === 'false' ? false : /^\d+$/.test(v) ? Number(v) : v))
      .default(false),
    MAX_EVENT_LOOP_DELAY_MS: int(1_000, 0, 600_000),
    MAX_HEAP_USED_BYTES: int(defaultMaxHeapUsedBytes(), 0),
    REQUEST_TIMEOUT_MS: int(30_000, 1_000, 3_600_000),
    HEADERS_TIMEOUT_MS: int(10_000, 500, 3_600_000),
    KEEP_ALIVE_TIMEOUT_MS: int(72_000, 1_000, 3_600_000),
    CONNECTION_TIMEOUT_MS: int(300_000, 0, 3_600_000),
    MAX_OPPORTUNITIES: int(200_000, 1, 100_000_000),
    MAX_JSON_DEPTH: int(64, 8, 10_000),
  })
  .superRefine((env, ctx) => {
    const mechanism = env.KAFKA_SASL_MECHANISM;
    if (mechanism) {
      if (!env.KAFKA_SASL_USERNAME) ctx.addIssue({ code: 'custom', path: ['KAFKA_SASL_USERNAME'], message: `required when KAFKA_SASL_MECHANISM=${mechanism}` });
      if (!env.KAFKA_SASL_PASSWORD) ctx.addIssue({ code: 'custom', path: ['KAFKA_SASL_PASSWORD'], message: `required when KAFKA_SASL_MECHANISM=${mechanism}` });
    } else {
      for (const variable of ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD'] as const) {
        if (env[variable]) ctx.addIssue({ code: 'custom', path: [variable], message: 'set, but KAFKA_SASL_MECHANISM is not' });
      }
    }
    if (!env.KAFKA_SSL && env.KAFKA_SSL_CA_FILE) {
      ctx.addIssue({ code: 'custom', path: ['KAFKA_SSL_CA_FILE'], message: 'set, but KAFKA_SSL is not true' });
    }
    if (env.HEADERS_TIMEOUT_MS > env.REQUEST_TIMEOUT_MS) {
      ctx.addIssue({ code: 'custom', path: ['HEADERS_TIMEOUT_MS'], message: 'must not exceed REQUEST_TIMEOUT_MS' });
    }
    const topics = [env.TOPIC_OPPORTUNITIES, env.TOPIC_JOBS, env.TOPIC_DLQ];
    if (new Set(topics).size !== topics.length) {
      ctx.addIssue({ code: 'custom', path: ['TOPIC_DLQ'], message: 'TOPIC_OPPORTUNITIES, TOPIC_JOBS and TOPIC_DLQ must differ' });
    }
  });

export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512';

export interface KafkaSettings {
  brokers: string[];
  clientId: string;
  /** `false`, or TLS settings (the CA file is read when the client is built). */
  ssl: false | { caFile?: string; rejectUnauthorized: boolean };
  sasl?: { mechanism: SaslMechanism; username: string; password: string };
  idempotent: boolean;
  ackTimeoutMs: number;
  publishChunk: number;
  maxInFlight: number;
  compression: 'none' | 'gzip';
  topicPartitions: number;
  replicationFactor: number;
}

export interface IngestConfig {
  port: number;
  host: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  bodyLimitBytes: number;
  /** Unset: webhooks are not authenticated (a warning is logged at start-up). */
  webhookSecret?: string;
  ceSource: string;
  topics: { opportunities: string; jobs: string; dlq: string };
  kafka: KafkaSettings;
  spool: SpoolSettings;
  limits: LimitSettings;
}

export interface SpoolSettings {
  /** Off: Kafka failures answer 503 as before, nothing is written to disk. */
  enabled: boolean;
  dir: string;
  maxBytes: number;
}

export interface LimitSettings {
  /** Fastify `trustProxy`: which `X-Forwarded-For` hops to believe for the client IP (rate limiting). */
  trustProxy: boolean | number | string;
  /** Webhook requests per minute per client IP; 0 = no rate limit. */
  ratePerMinute: number;
  /** Event-loop delay past which requests are shed with 503; 0 = not checked. */
  maxEventLoopDelayMs: number;
  /** Heap used past which requests are shed with 503; 0 = not checked. */
  maxHeapUsedBytes: number;
  /** Whole request (headers + body) must arrive within this (408 otherwise). */
  requestTimeoutMs: number;
  /** Headers must arrive within this (408 otherwise). */
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Socket inactivity timeout; 0 = none. */
  connectionTimeoutMs: number;
  maxOpportunities: number;
  maxJsonDepth: number;
}

/**
 * Parses the environment into a fully resolved config. Empty strings count as unset, so
 * `FOO=` in a compose file falls back to the default instead of failing.
 */
export function loadConfig(env: Record<string, string | undefined>): IngestConfig {
  const input: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') input[key] = value;
  }
  const result = envSchema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => {
        const variable = String(issue.path[0] ?? '(environment)');
        // NOTE: never echo the received value: it may be a secret.
        return { variable, message: issue.code === 'invalid_type' && input[variable] === undefined ? 'is required' : issue.message };
      }),
    );
  }
  const e = result.data;
  return {
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    bodyLimitBytes: Math.floor(e.BODY_LIMIT_MB * 1024 * 1024),
    ...(e.WEBHOOK_SECRET ? { webhookSecret: e.WEBHOOK_SECRET } : {}),
    ceSource: e.CE_SOURCE,
    topics: { opportunities: e.TOPIC_OPPORTUNITIES, jobs: e.TOPIC_JOBS, dlq: e.TOPIC_DLQ },
    kafka: {
      brokers: e.KAFKA_BROKERS,
      clientId: e.KAFKA_CLIENT_ID,
      ssl: e.KAFKA_SSL
        ? { rejectUnauthorized: e.KAFKA_SSL_REJECT_UNAUTHORIZED, ...(e.KAFKA_SSL_CA_FILE ? { caFile: e.KAFKA_SSL_CA_FILE } : {}) }
        : false,
      ...(e.KAFKA_SASL_MECHANISM && e.KAFKA_SASL_USERNAME && e.KAFKA_SASL_PASSWORD
        ? { sasl: { mechanism: e.KAFKA_SASL_MECHANISM, username: e.KAFKA_SASL_USERNAME, password: e.KAFKA_SASL_PASSWORD } }
        : {}),
      idempotent: e.KAFKA_IDEMPOTENT,
      ackTimeoutMs: e.KAFKA_ACK_TIMEOUT_MS,
      publishChunk: e.KAFKA_PUBLISH_CHUNK,
      maxInFlight: e.KAFKA_MAX_IN_FLIGHT,
      compression: e.KAFKA_COMPRESSION,
      topicPartitions: e.KAFKA_TOPIC_PARTITIONS,
      replicationFactor: e.KAFKA_REPLICATION_FACTOR,
    },
    spool: { enabled: e.INGEST_SPOOL_ENABLED, dir: e.INGEST_SPOOL_DIR, maxBytes: Math.floor(e.INGEST_SPOOL_MAX_MB * 1024 * 1024) },
    limits: {
      trustProxy: e.TRUST_PROXY,
      ratePerMinute: e.RATE_LIMIT_PER_MINUTE,
      maxEventLoopDelayMs: e.MAX_EVENT_LOOP_DELAY_MS,
      maxHeapUsedBytes: e.MAX_HEAP_USED_BYTES,
      requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
      headersTimeoutMs: e.HEADERS_TIMEOUT_MS,
      keepAliveTimeoutMs: e.KEEP_ALIVE_TIMEOUT_MS,
      connectionTimeoutMs: e.CONNECTION_TIMEOUT_MS,
      maxOpportunities: e.MAX_OPPORTUNITIES,
      maxJsonDepth: e.MAX_JSON_DEPTH,
    },
  };
}

/** Names of every variable `loadConfig` reads (for the README test and `--help`-style output). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(envSchema.shape);
