import { flattenWebhook, parseWebhook } from '@clustr-pipeline/schema';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IngestConfig } from '../config.js';
import { IngestError, isIngestError } from '../errors.js';
import { countMessages, toDeadLetterBatch, toMessageBatches } from '../messages.js';
import type { IngestMetrics } from '../metrics.js';
import { authHook } from '../plugins/auth.js';
import type { Publisher } from '../publisher.js';

export interface WebhookRouteDeps {
  config: IngestConfig;
  publisher: Publisher;
  metrics: IngestMetrics;
}

export interface AcceptedBody {
  status: 'accepted';
  job_id: string;
  events: number;
}

export const WEBHOOK_PATH = '/webhooks/clustr';

export async function webhookRoutes(app: FastifyInstance, deps: WebhookRouteDeps): Promise<void> {
  const { config, publisher, metrics } = deps;

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
      metrics.webhookBytes.observe(raw.length);

      const parsed = parseWebhook(request.body);
      if (!parsed.ok) {
        // Nothing is lost: the raw body goes to the DLQ before we answer 422.
        const letter = toDeadLetterBatch(
          {
            body: raw,
            reason: 'INGEST_ERR_SCHEMA',
            error: JSON.stringify(parsed.issues),
            receivedAt,
            requestId: request.id,
            contentType: request.headers['content-type'] ?? 'application/json',
          },
          config.topics.dlq,
        );
        try {
          await publisher.publish([letter]);
        } catch (error) {
          request.log.error({ err: error }, 'could not dead-letter an invalid webhook');
          throw new IngestError('INGEST_ERR_DLQ_UNAVAILABLE', { cause: error });
        }
        metrics.dlqMessages.inc({ reason: 'INGEST_ERR_SCHEMA' });
        request.log.info({ issues: parsed.issues.length }, 'invalid webhook dead-lettered');
        throw new IngestError('INGEST_ERR_SCHEMA', { issues: parsed.issues.map(({ path, message }) => ({ path, message })) });
      }

      const flat = flattenWebhook(parsed.webhook, receivedAt);
      const batches = toMessageBatches(flat, { ceSource: config.ceSource, topics: config.topics });
      const events = countMessages(batches);
      const started = Date.now();
      try {
        await publisher.publish(batches);
      } catch (error) {
        throw isIngestError(error) ? error : new IngestError('INGEST_ERR_KAFKA_UNAVAILABLE', { cause: error });
      }
      request.log.info({ jobId: flat.job.job_id, status: flat.job.status, events, publishMs: Date.now() - started }, 'webhook accepted');
      void reply.code(200);
      return { status: 'accepted', job_id: flat.job.job_id, events };
    },
  });
}
