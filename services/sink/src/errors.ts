/**
 * Stable error codes of the sink, in one place. Imports nothing local. The codes appear in logs, in
 * `/healthz` reasons and (for the `SINK_DLQ_*` ones) in the `dlq_reason` header of dead letters.
 */

export const SINK_ERROR_CODES = {
  SINK_ERR_CONFIG: 'An environment variable is missing or invalid; start-up stops.',
  SINK_ERR_CLICKHOUSE_UNAVAILABLE: 'ClickHouse writes keep failing with retriable errors; the consumer is paused.',
  SINK_ERR_DLQ_UNAVAILABLE: 'Publishing to the dead-letter topic keeps failing; the consumer is paused.',
  SINK_ERR_CONSUMER_CRASHED: 'The Kafka consumer crashed and kafkajs will not restart it.',
  SINK_ERR_CONSUMER_NOT_RUNNING: 'The Kafka consumer has not joined the group yet, or has stopped.',
  SINK_ERR_SHUTDOWN_TIMEOUT: 'Close gave up waiting for in-flight writes; uncommitted data will be re-read.',
} as const;
export type SinkErrorCode = keyof typeof SINK_ERROR_CODES;

/** `dlq_reason` values the sink writes. The message is parked in the DLQ and its offset counts as processed. */
export const DLQ_REASONS = {
  SINK_DLQ_EMPTY_VALUE: 'The Kafka message has no value (tombstone).',
  SINK_DLQ_INVALID_JSON: 'The value is not valid UTF-8 JSON.',
  SINK_DLQ_SCHEMA: 'The JSON does not match the v1 event schema of its topic.',
  SINK_DLQ_CLICKHOUSE_REJECTED: 'ClickHouse rejected the row as bad data (found by bisecting a failed batch).',
} as const;
export type DlqReason = keyof typeof DLQ_REASONS;

export class SinkError extends Error {
  readonly code: SinkErrorCode;
  constructor(code: SinkErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SinkError';
    this.code = code;
  }
}

/** A bad environment variable. `variable` names it; the message never contains a secret value. */
export class ConfigError extends SinkError {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super('SINK_ERR_CONFIG', `${variable}: ${message}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}
