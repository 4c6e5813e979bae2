import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** What the spool gauges read at scrape time (set by `bindSpool`). */
export interface SpoolGaugeSource {
  stats(): { files: number; bytes: number; oldestReceivedAt: Date | undefined };
}

/** Per-app metrics on their own Registry (never prom-client's global one: tests run several apps). */
export interface IngestMetrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  eventsPublished: Counter<'topic'>;
  publishDuration: Histogram<'outcome'>;
  dlqMessages: Counter<'reason'>;
  webhookBytes: Histogram;
  spooled: Counter<'reason'>;
  spoolDrained: Counter;
  spoolQuarantined: Counter;
  /** Makes the spool gauges (files, bytes, oldest age) report this spool's state. */
  bindSpool(source: SpoolGaugeSource): void;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): IngestMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'clustr_ingest_' });
  let spool: SpoolGaugeSource | undefined;
  new Gauge({
    name: 'clustr_ingest_spool_files',
    help: 'Webhooks waiting in the local spool',
    registers: [registry],
    collect() {
      this.set(spool?.stats().files ?? 0);
    },
  });
  new Gauge({
    name: 'clustr_ingest_spool_bytes',
    help: 'Bytes on disk in the local spool',
    registers: [registry],
    collect() {
      this.set(spool?.stats().bytes ?? 0);
    },
  });
  new Gauge({
    name: 'clustr_ingest_spool_oldest_age_seconds',
    help: 'Age of the oldest spooled webhook (0 when the spool is empty)',
    registers: [registry],
    collect() {
      const oldest = spool?.stats().oldestReceivedAt;
      this.set(oldest ? Math.max(0, (Date.now() - oldest.getTime()) / 1000) : 0);
    },
  });
  return {
    registry,
    bindSpool: (source) => {
      spool = source;
    },
    spooled: new Counter({
      name: 'clustr_ingest_spooled_total',
      help: 'Webhooks written to the local spool instead of being published at once, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    spoolDrained: new Counter({
      name: 'clustr_ingest_spool_drained_total',
      help: 'Spooled webhooks published to Kafka and deleted from the spool',
      registers: [registry],
    }),
    spoolQuarantined: new Counter({
      name: 'clustr_ingest_spool_quarantined_total',
      help: 'Spool files that could not be read or validated and were moved to rejected/',
      registers: [registry],
    }),
    httpRequests: new Counter({
      name: 'clustr_ingest_http_requests_total',
      help: 'HTTP requests answered, by route and status code',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    eventsPublished: new Counter({
      name: 'clustr_ingest_events_published_total',
      help: 'Kafka messages acknowledged by the brokers, by topic',
      labelNames: ['topic'],
      registers: [registry],
    }),
    publishDuration: new Histogram({
      name: 'clustr_ingest_publish_duration_seconds',
      help: 'Time to publish all messages of one webhook until every one was acknowledged',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30],
      registers: [registry],
    }),
    dlqMessages: new Counter({
      name: 'clustr_ingest_dlq_messages_total',
      help: 'Webhooks written to the dead-letter topic, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    webhookBytes: new Histogram({
      name: 'clustr_ingest_webhook_size_bytes',
      help: 'Decompressed size of received webhook bodies',
      buckets: [1_024, 16_384, 131_072, 1_048_576, 4_194_304, 16_777_216, 67_108_864, 268_435_456],
      registers: [registry],
    }),
  };
}
