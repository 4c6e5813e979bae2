import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** Per-app metrics on their own Registry (never prom-client's global one: tests run several apps). */
export interface IngestMetrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  eventsPublished: Counter<'topic'>;
  publishDuration: Histogram<'outcome'>;
  dlqMessages: Counter<'reason'>;
  webhookBytes: Histogram;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): IngestMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'clustr_ingest_' });
  return {
    registry,
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
