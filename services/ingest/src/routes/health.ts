import type { FastifyInstance } from 'fastify';
import type { IngestMetrics } from '../metrics.js';
import type { Publisher } from '../publisher.js';
import type { Spool } from '../spool.js';

/** Route config: never rate limited nor shed under pressure (probes and scrapes must keep working). */
export const UNLIMITED_ROUTE = { rateLimit: false, pressureHandler: () => undefined } as const;

export interface HealthRouteDeps {
  publisher: Publisher;
  metrics: IngestMetrics;
  spool?: Spool | undefined;
}

export async function healthRoutes(app: FastifyInstance, deps: HealthRouteDeps): Promise<void> {
  const { publisher, metrics, spool } = deps;
  const routeOptions = { logLevel: 'warn', config: UNLIMITED_ROUTE } as const;

  /** Liveness: the process is up and serving HTTP. Never depends on Kafka, load or rate limits. */
  app.get('/healthz', routeOptions, async () => ({ status: 'ok' }));

  /**
   * Readiness: 200 only when webhooks can be published at once (producer connected, topics
   * ensured) and the process is not shedding load. The spool depth is reported either way.
   */
  app.get('/readyz', routeOptions, async (_request, reply) => {
    const kafka = publisher.ready() ? 'connected' : 'disconnected';
    const overloaded = app.hasDecorator('isUnderPressure') && app.isUnderPressure();
    const stats = spool?.stats();
    const body = {
      status: kafka === 'connected' && !overloaded ? 'ready' : 'not_ready',
      kafka,
      ...(overloaded ? { pressure: 'overloaded' } : {}),
      ...(stats
        ? {
            spool: {
              files: stats.files,
              bytes: stats.bytes,
              oldest_age_seconds: stats.oldestReceivedAt ? Math.max(0, Math.round((Date.now() - stats.oldestReceivedAt.getTime()) / 1000)) : 0,
            },
          }
        : {}),
    };
    return reply.code(body.status === 'ready' ? 200 : 503).send(body);
  });

  app.get('/metrics', routeOptions, async (_request, reply) => {
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}
