import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { IngestConfig } from './config.js';
import { IngestError, RETRY_AFTER_SECONDS, isIngestError, type ErrorCode } from './errors.js';
import { createLogger } from './logger.js';
import { createMetrics, type IngestMetrics } from './metrics.js';
import bodyPlugin from './plugins/body.js';
import type { Publisher } from './publisher.js';
import { healthRoutes } from './routes/health.js';
import { webhookRoutes } from './routes/webhook.js';

export interface ServerDeps {
  publisher: Publisher;
  /** A pino logger built with `loggerOptions` (redaction!). @default createLogger(config.logLevel) */
  logger?: Logger;
  /** @default createMetrics() */
  metrics?: IngestMetrics;
}

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** Fastify's own errors that reach our handler, mapped to our stable codes. */
function codeForFastifyError(error: FastifyError): ErrorCode {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'INGEST_ERR_BODY_TOO_LARGE';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return 'INGEST_ERR_UNSUPPORTED_MEDIA_TYPE';
    default:
      if (error.statusCode === 413) return 'INGEST_ERR_BODY_TOO_LARGE';
      if (error.statusCode === 415) return 'INGEST_ERR_UNSUPPORTED_MEDIA_TYPE';
      if (error.statusCode === 400 || error instanceof SyntaxError) return 'INGEST_ERR_INVALID_JSON';
      return 'INGEST_ERR_INTERNAL';
  }
}

/** Builds the HTTP app (routes, parsers, hooks, error handling). Does not listen or touch Kafka. */
export function buildServer(config: IngestConfig, deps: ServerDeps): FastifyInstance {
  const logger = deps.logger ?? createLogger(config.logLevel);
  const metrics = deps.metrics ?? createMetrics();
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: config.bodyLimitBytes,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    return503OnClosing: true,
    requestIdHeader: false,
    genReqId: (req: IncomingMessage) => {
      const incoming = req.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
  }) as unknown as FastifyInstance;

  // TRICKY: Node's server.close() only reaps connections idle at that moment; a keep-alive
  // connection whose request was in flight would then hold close() for keepAliveTimeout (72 s).
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (request, reply) => {
    void reply.header('x-request-id', request.id);
    if (closing) void reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpRequests.inc({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
  });

  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    const ingestError = isIngestError(error) ? error : new IngestError(codeForFastifyError(error), { cause: error });
    if (ingestError.statusCode >= 500) {
      request.log.error({ err: error, code: ingestError.code }, 'request failed');
    } else {
      request.log.info({ code: ingestError.code, statusCode: ingestError.statusCode }, ingestError.message);
    }
    if (ingestError.retriable) void reply.header('retry-after', String(RETRY_AFTER_SECONDS));
    // NOTE: a 400 from fastify may echo parser internals; always answer with our own messages.
    return reply.code(ingestError.statusCode).send(ingestError.toBody());
  });
  app.setNotFoundHandler(async (_request, reply) => reply.code(404).send(new IngestError('INGEST_ERR_NOT_FOUND').toBody()));

  void app.register(bodyPlugin, { bodyLimit: config.bodyLimitBytes });
  void app.register(healthRoutes, { publisher: deps.publisher, metrics });
  void app.register(webhookRoutes, { config, publisher: deps.publisher, metrics });
  return app;
}
