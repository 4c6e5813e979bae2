import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one sink instance, on its own Registry (tests start many instances). */
export class SinkMetrics {
  readonly registry = new Registry();
  readonly rowsInserted = new Counter({ name: 'sink_rows_inserted_total', help: 'Rows inserted into ClickHouse.', labelNames: ['table'] as const, registers: [this.registry] });
  readonly duplicates = new Counter({ name: 'sink_rows_duplicate_total', help: 'Rows skipped because their event_id was already stored.', labelNames: ['table'] as const, registers: [this.registry] });
  readonly batches = new Counter({ name: 'sink_batches_total', help: 'Insert batches by outcome (ok, split).', labelNames: ['table', 'outcome'] as const, registers: [this.registry] });
  readonly insertSeconds = new Histogram({
    name: 'sink_insert_duration_seconds',
    help: 'Latency of successful ClickHouse inserts.',
    labelNames: ['table'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly retries = new Counter({ name: 'sink_retries_total', help: 'Retried writes (ClickHouse inserts, DLQ publishes, commits).', labelNames: ['target'] as const, registers: [this.registry] });
  readonly dlq = new Counter({ name: 'sink_dlq_messages_total', help: 'Messages sent to the dead-letter topic.', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly lag = new Gauge({ name: 'sink_consumer_lag', help: 'High watermark minus committed offset.', labelNames: ['topic', 'partition'] as const, registers: [this.registry] });
  readonly committedOffset = new Gauge({ name: 'sink_committed_offset', help: 'Last committed offset.', labelNames: ['topic', 'partition'] as const, registers: [this.registry] });
  readonly buffered = new Gauge({ name: 'sink_buffered_rows', help: 'Rows waiting in the batch buffer.', labelNames: ['table'] as const, registers: [this.registry] });
  readonly inflight = new Gauge({ name: 'sink_inflight_batches', help: 'Insert batches being written.', registers: [this.registry] });
  readonly paused = new Gauge({ name: 'sink_consumer_paused', help: '1 while consumption is paused because writes fail.', registers: [this.registry] });
  readonly messages = new Counter({ name: 'sink_messages_total', help: 'Kafka messages received.', labelNames: ['topic'] as const, registers: [this.registry] });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }
}
