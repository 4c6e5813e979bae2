import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IngestConfig } from '../config.js';
import type { Delivery } from '../delivery.js';
import { IngestError, type ErrorCode, type IssueBody } from '../errors.js';
import { countOpportunities, jsonDepthExceeds } from '../json.js';
import { LargeJsonBody, type ParsedBody } from '../large-body.js';
import { lazyWebhookMessageStreams, toDeadLetterBatch, webhookMessageStreams, type LazyWebhook, type WebhookMessages } from '../messages.js';
import type { IngestMetrics } from '../metrics.js';
import { authHook } from '../plugins/auth.js';
import { validateLargeBody, validateWebhook } from '../validate.js';
import { MAX_CHUNK_BYTES, type Publisher } from '../publisher.js';

export interface WebhookRouteDeps {
  config: IngestConfig;
  publisher: Publisher;
  delivery: Delivery;
  metrics: IngestMetrics;
}

export interface AcceptedBody {
  status: 'accepted' | 'spooled';
  job_id: string;
  events: number;
}

export const WEBHOOK_PATH = '/webhooks/clustr';

/**
 * `body.parseWhole()`, answering its errors (400 invalid UTF-8 / JSON) exactly as when the body
 * parser throws them: fastify then also sends `Connection: close`.
 */
function parseWholeLikeTheParser(body: LargeJsonBody, reply: FastifyReply): ParsedBody {
  try {
    return body.parseWhole();
  } catch (error) {
    void reply.header('connection', 'close');
    throw error;
  }
}

export async function webhookRoutes(app: FastifyInstance, deps: WebhookRouteDeps): Promise<void> {
  const { config, publisher, delivery, metrics } = deps;

  /** Writes the raw body to the DLQ (503 if that fails: refusing is better than losing it), then throws the 422. */
  async function deadLetter(request: FastifyRequest, raw: Buffer, receivedAt: Date, code: ErrorCode, error: IngestError, details: string): Promise<never> {
    const letter = toDeadLetterBatch(
      {
        body: raw,
        reason: code,
        error: details,
        receivedAt,
        requestId: request.id,
        contentType: request.headers['content-type'] ?? 'application/json',
      },
      config.topics.dlq,
    );
    try {
      await publisher.publish([letter]);
    } catch (cause) {
      request.log.error({ err: cause, reason: code }, 'could not dead-letter an invalid webhook');
      throw new IngestError('INGEST_ERR_DLQ_UNAVAILABLE', { cause });
    }
    metrics.dlqMessages.inc({ reason: code });
    request.log.info({ reason: code }, 'invalid webhook dead-lettered');
    throw error;
  }

  app.post(WEBHOOK_PATH, {
    bodyLimit: config.bodyLimitBytes,
    ...(config.webhookSecret ? { onRequest: authHook(config.webhookSecret) } : {}),
    handler: async (request: FastifyRequest, reply: FastifyReply): Promise<AcceptedBody> => {
      const receivedAt = new Date();
      const raw = request.rawBody;
      if (raw === null) {
        // No body at all: fastify skipped the parser.
        throw new IngestError(request.headers['content-type'] ? 'INGEST_ERR_INVALID_JSON' : 'INGEST_ERR_UNSUPPORTED_MEDIA_TYPE', {
          ...(request.headers['content-type'] ? { message: 'Request body is empty' } : {}),
        });
      }
      const { maxJsonDepth, maxOpportunities } = config.limits;
      const messageSettings = { ceSource: config.ceSource, topics: config.topics };

      /** Publishes (or spools) the webhook's messages and answers. */
      const accept = async ({ batches, job, events }: WebhookMessages): Promise<AcceptedBody> => {
        const started = Date.now();
        const outcome = await delivery.deliver({ requestId: request.id, receivedAt, contentType: request.headers['content-type'] ?? 'application/json', body: raw }, batches);
        const jobId = job.job_id;
        if (outcome === 'spooled') {
          request.log.info({ jobId, status: job.status, events }, 'webhook spooled (Kafka unavailable or backlog)');
          void reply.code(202);
          return { status: 'spooled', job_id: jobId, events };
        }
        request.log.info({ jobId, status: job.status, events, publishMs: Date.now() - started }, 'webhook accepted');
        void reply.code(200);
        return { status: 'accepted', job_id: jobId, events };
      };

      let body = request.body;
      let jsonTooDeep = request.jsonTooDeep;
      let lazy: LazyWebhook | undefined;
      if (body instanceof LargeJsonBody) {
        // The large-body path (see large-body.ts), only for a body that passes every check below.
        // Anything else is parsed whole here and goes the usual way, so errors are the usual ones.
        lazy = body.depth <= maxJsonDepth && body.opportunityCount <= maxOpportunities ? validateLargeBody(body) : undefined;
        if (!lazy) ({ body, jsonTooDeep } = parseWholeLikeTheParser(body, reply));
      }
      metrics.webhookBytes.observe(raw.length);
      if (lazy) return accept(lazyWebhookMessageStreams(lazy, receivedAt, messageSettings));

      // The body plugin checked the depth on the decoded text already (when configured with this limit).
      if (jsonTooDeep ?? jsonDepthExceeds(raw, maxJsonDepth)) {
        const message = `Request body nests objects/arrays deeper than ${maxJsonDepth} levels (MAX_JSON_DEPTH)`;
        const error = new IngestError('INGEST_ERR_JSON_TOO_DEEP', { message });
        // NOTE: a body too large for one Kafka message cannot be dead-lettered; the 422 tells the sender.
        if (raw.length > MAX_CHUNK_BYTES) throw error;
        return deadLetter(request, raw, receivedAt, 'INGEST_ERR_JSON_TOO_DEEP', error, JSON.stringify([{ path: '(root)', message }]));
      }

      // Before the schema: validating a million opportunities only to refuse them is wasted work.
      const opportunities = countOpportunities(body);
      if (opportunities > maxOpportunities) {
        throw new IngestError('INGEST_ERR_TOO_MANY_OPPORTUNITIES', {
          message: `Webhook has ${opportunities} opportunities; the limit is ${maxOpportunities} (MAX_OPPORTUNITIES)`,
        });
      }

      const parsed = validateWebhook(body);
      if (!parsed.ok) {
        const issues: IssueBody[] = parsed.issues.map(({ path, message }) => ({ path, message }));
        return deadLetter(request, raw, receivedAt, 'INGEST_ERR_SCHEMA', new IngestError('INGEST_ERR_SCHEMA', { issues }), JSON.stringify(parsed.issues));
      }

      // Events and messages are built chunk by chunk while publishing (bounded memory).
      return accept(webhookMessageStreams(parsed.webhook, receivedAt, messageSettings));
    },
  });
}
