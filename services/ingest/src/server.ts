import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import rateLimit from '@fastify/rate-limit';
import underPressure from '@fastify/under-pressure';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { IngestConfig } from './config.js';
import { IngestError, RETRY_AFTER_SECONDS, isIngestError, type ErrorCode } from './errors.js';
import { createLogger } from './logger.js';
import { createMetrics, type IngestMetrics } from './metrics.js';
import bodyPlugin from './plugins/body.js';
import { Delivery } from './delivery.js';
import type { Publisher } from './publisher.js';
import { healthRoutes } from './routes/health.js';
import { webhookRoutes } from './routes/webhook.js';
import type { Spool } from './spool.js';

export interface ServerDeps {
  publisher: Publisher;
  /** A pino logger built with `loggerOptions` (redaction!). @default createLogger(config.logLevel) */
  logger?: Logger;
  /** @default createMetrics() */
  metrics?: IngestMetrics;
  /** Where webhooks go when Kafka does not acknowledge them (202). Unset: they get 503. */
  spool?: Spool;
  /** Bodies of at least this many bytes take the large-body path (see large-body.ts); tests lower it. @default LARGE_BODY_BYTES */
  largeBodyBytes?: number;
}

function trustHops(hops: number): (address: string, hop: number) => boolean {
  return (_address, hop) => hop < hops;
}

/**
 * Node answers malformed requests and request/header timeouts on the raw socket, outside fastify's
 * error handler; this gives them our error body and stable code.
 */
function clientErrorHandler(this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  let statusCode = 400;
  let body: object;
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    statusCode = 408;
    body = new IngestError('INGEST_ERR_REQUEST_TIMEOUT').toBody();
  } else {
    statusCode = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    body = { statusCode, error: STATUS_CODES[statusCode], message: 'Malformed HTTP request' };
  }
  this.log.info({ code: error.code, statusCode }, 'client error on the connection');
  if (socket.writable) {
    const text = JSON.stringify(body);
    socket.write(`HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
  }
  socket.destroy();
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
  const { limits } = config;
  const app = Fastify({
    loggerInstance: logger,
    // A hop count n means "trust the n closest proxies".
    trustProxy: typeof limits.trustProxy === 'number' ? trustHops(limits.trustProxy) : limits.trustProxy,
    // Slow senders: the whole request within requestTimeout, headers within headersTimeout (408),
    // an idle socket is closed after connectionTimeout. Node checks these every
    // connectionsCheckingInterval (30 s by default: far too coarse for short timeouts).
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.connectionTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    http: {
      headersTimeout: limits.headersTimeoutMs,
      connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(limits.headersTimeoutMs / 4))),
    },
    clientErrorHandler,
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
    // 429s already carry the limiter's own Retry-After (seconds until the window resets).
    if (ingestError.statusCode === 503 && !reply.hasHeader('retry-after')) void reply.header('retry-after', String(RETRY_AFTER_SECONDS));
    // NOTE: a 400 from fastify may echo parser internals; always answer with our own messages.
    return reply.code(ingestError.statusCode).send(ingestError.toBody());
  });
  app.setNotFoundHandler(async (_request, reply) => reply.code(404).send(new IngestError('INGEST_ERR_NOT_FOUND').toBody()));

  if (limits.maxEventLoopDelayMs > 0 || limits.maxHeapUsedBytes > 0) {
    void app.register(underPressure, {
      maxEventLoopDelay: limits.maxEventLoopDelayMs,
      maxHeapUsedBytes: limits.maxHeapUsedBytes,
      // Rejected promise → our error handler → 503 INGEST_ERR_OVERLOADED with Retry-After.
      pressureHandler: async (request, _reply, type, value) => {
        request.log.warn({ type, value }, 'under pressure, shedding load');
        throw new IngestError('INGEST_ERR_OVERLOADED', { message: `Service is overloaded (${type}), retry later` });
      },
    });
  }
  if (limits.ratePerMinute > 0) {
    void app.register(rateLimit, {
      max: limits.ratePerMinute,
      timeWindow: 60_000,
      onExceeded: (request) => request.log.warn({ ip: request.ip }, 'rate limit exceeded'),
      errorResponseBuilder: (_request, context) =>
        new IngestError('INGEST_ERR_RATE_LIMITED', { message: `More than ${context.max} requests per minute from this address, retry in ${context.after}` }),
    });
  }
  if (deps.spool) metrics.bindSpool(deps.spool);
  const delivery = new Delivery({ publisher: deps.publisher, spool: deps.spool, logger, metrics });
  void app.register(bodyPlugin, { bodyLimit: config.bodyLimitBytes, maxJsonDepth: config.limits.maxJsonDepth, largeBodyBytes: deps.largeBodyBytes });
  void app.register(healthRoutes, { publisher: deps.publisher, metrics, spool: deps.spool });
  void app.register(webhookRoutes, { config, publisher: deps.publisher, delivery, metrics });
  return app;
}
