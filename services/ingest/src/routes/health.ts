import type { FastifyInstance } from 'fastify';
import type { IngestMetrics } from '../metrics.js';
import type { Publisher } from '../publisher.js';

export interface HealthRouteDeps {
  publisher: Publisher;
  metrics: IngestMetrics;
}

export async function healthRoutes(app: FastifyInstance, deps: HealthRouteDeps): Promise<void> {
  const { publisher, metrics } = deps;

  /** Liveness: the process is up and serving HTTP. Never depends on Kafka. */
  app.get('/healthz', { logLevel: 'warn' }, async () => ({ status: 'ok' }));

  /** Readiness: 200 only when webhooks can be published (producer connected, topics ensured). */
  app.get('/readyz', { logLevel: 'warn' }, async (_request, reply) => {
    if (publisher.ready()) return { status: 'ready' };
    return reply.code(503).send({ status: 'not_ready', kafka: 'disconnected' });
  });

  app.get('/metrics', { logLevel: 'warn' }, async (_request, reply) => {
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}
