import { Partitioners } from 'kafkajs';
import pino, { type Logger } from 'pino';
import { openClickHouse, type ClickHouseHandle } from './clickhouse.js';
import { describeConfig, type SinkConfig } from './config.js';
import { SinkConsumer, type SinkStats, type WriteErrorInfo } from './consumer.js';
import { DlqPublisher } from './dlq.js';
import { startHttpServer, type HealthReport } from './http.js';
import { consumerPort, createKafka, createSinkConsumer } from './kafka.js';
import { SinkMetrics } from './metrics.js';
import { migrate } from './migrate.js';
import { topicRoutes } from './rows.js';
import { ClickHouseWriter, classifyClickHouseError } from './writer.js';

export interface SinkOptions {
  /** @default a pino logger at `config.logLevel` */
  logger?: Logger;
}

export interface Sink {
  /** Stop intake → flush and commit → close DLQ producer, ClickHouse, metrics server. Idempotent. */
  close(): Promise<void>;
  /** Base URL of the `/metrics` + `/healthz` server, e.g. http://127.0.0.1:9464. */
  metricsUrl: string;
  clickhouse: ClickHouseHandle;
  stats(): SinkStats;
  health(): HealthReport;
}

/** The writer's error as the consumer sees it: only CH_BAD_DATA is bisected and dead-lettered. */
export function classifyForConsumer(err: unknown): WriteErrorInfo {
  const e = classifyClickHouseError(err);
  return { retriable: e.retriable, code: e.code, message: e.message, badData: e.code === 'CH_BAD_DATA' };
}

/** Opens ClickHouse, migrates, starts the DLQ producer, the metrics server and the consumer. */
export async function startSink(config: SinkConfig, options: SinkOptions = {}): Promise<Sink> {
  const logger = options.logger ?? pino({ level: config.logLevel, base: { service: 'clustr-sink' } });
  logger.info({ config: describeConfig(config) }, 'starting sink');
  const cleanups: Array<() => Promise<void>> = [];
  const unwind = async () => {
    for (const fn of cleanups.reverse()) await fn().catch((err: unknown) => logger.warn({ err }, 'cleanup failed'));
  };

  try {
    const clickhouse = await openClickHouse(config.clickhouse, logger.child({ component: 'clickhouse' }));
    cleanups.push(() => clickhouse.close());
    const migration = await migrate(clickhouse.client, config.clickhouse.database, logger.child({ component: 'migrate' }));
    logger.info(migration, 'migrations done');

    const metrics = new SinkMetrics();
    const kafka = createKafka(config.kafka, logger);
    const dlq = new DlqPublisher(
      // NOTE: not idempotent: the devkit mock broker cannot do it; acks=-1 per send gives durability.
      kafka.producer({ allowAutoTopicCreation: false, idempotent: false, createPartitioner: Partitioners.DefaultPartitioner }),
      config.topics.dlq,
      logger.child({ component: 'dlq' }),
    );
    await dlq.connect();
    cleanups.push(() => dlq.close());

    const consumer = new SinkConsumer({
      consumer: consumerPort(createSinkConsumer(kafka, config.groupId, { sessionTimeoutMs: config.kafka.sessionTimeoutMs })),
      writer: new ClickHouseWriter(clickhouse.client, { database: config.clickhouse.database }),
      classifyWriteError: classifyForConsumer,
      dlq,
      routes: topicRoutes(config.topics),
      batch: config.batch,
      retry: config.retry,
      shutdownTimeoutMs: config.shutdownTimeoutMs,
      metrics,
      logger: logger.child({ component: 'consumer' }),
    });
    const health = (): HealthReport => {
      const h = consumer.health(config.unhealthyAfterMs);
      const s = consumer.stats();
      return { ...h, state: s.state, paused: s.paused, failingSince: s.failingSince, clickhouse: clickhouse.mode };
    };
    const http = await startHttpServer({ host: config.metrics.host, port: config.metrics.port, registry: metrics.registry, health });
    cleanups.push(() => http.close());

    cleanups.push(() => consumer.close());
    await consumer.start();
    logger.info({ metricsUrl: http.url, clickhouse: clickhouse.mode }, 'sink running');

    let closing: Promise<void> | null = null;
    return {
      metricsUrl: http.url,
      clickhouse,
      stats: () => consumer.stats(),
      health,
      close: () =>
        (closing ??= (async () => {
          // NOTE: order matters: the consumer flushes and commits while ClickHouse and the DLQ are open.
          await consumer.close();
          await dlq.close();
          await clickhouse.close();
          await http.close();
          logger.info('sink closed');
        })()),
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}
