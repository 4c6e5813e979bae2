import type { Logger } from 'pino';
import { IngestError, isIngestError } from './errors.js';
import type { MessageStream } from './messages.js';
import type { IngestMetrics } from './metrics.js';
import { MessageProductionError, type Publisher } from './publisher.js';
import type { Spool, SpooledWebhook } from './spool.js';

export type DeliveryOutcome = 'published' | 'spooled';

export interface DeliveryOptions {
  publisher: Publisher;
  /** Without a spool every Kafka failure is the sender's problem (503, as before the spool). */
  spool?: Spool | undefined;
  logger: Logger;
  metrics?: IngestMetrics;
}

/**
 * Decides where an accepted webhook goes: straight to Kafka (200) or to the disk spool (202).
 *
 * Ordering: while anything is spooled, new webhooks are spooled too, so that the drainer
 * publishes them after the older ones (arrival order). Only webhooks whose requests overlapped in
 * time can reach Kafka in another order than they arrived, and those had no order to begin with.
 */
export class Delivery {
  readonly #options: DeliveryOptions;

  constructor(options: DeliveryOptions) {
    this.#options = options;
  }

  async deliver(webhook: SpooledWebhook, batches: readonly MessageStream[]): Promise<DeliveryOutcome> {
    const { publisher, spool, logger } = this.#options;
    if (!spool) {
      await this.#publish(batches);
      return 'published';
    }
    if (!spool.isEmpty()) return this.#spool(webhook, 'backlog');
    if (!publisher.ready()) return this.#spool(webhook, 'kafka_unavailable');
    try {
      await this.#publish(batches);
      return 'published';
    } catch (error) {
      if (!isIngestError(error) || !error.retriable) throw error;
      // NOTE: chunks acknowledged before the failure stay in Kafka; the drainer re-sends them with
      // the same event ids, which downstream deduplicates.
      logger.warn({ requestId: webhook.requestId, code: error.code }, 'Kafka did not acknowledge the webhook, spooling it');
      return this.#spool(webhook, error.code === 'INGEST_ERR_KAFKA_TIMEOUT' ? 'kafka_timeout' : 'kafka_unavailable');
    }
  }

  async #publish(batches: readonly MessageStream[]): Promise<void> {
    try {
      await this.#options.publisher.publish(batches);
    } catch (error) {
      // A bug building the messages is not Kafka's fault: no spool, no retry (500).
      if (error instanceof MessageProductionError) throw error;
      throw isIngestError(error) ? error : new IngestError('INGEST_ERR_KAFKA_UNAVAILABLE', { cause: error });
    }
  }

  async #spool(webhook: SpooledWebhook, reason: 'backlog' | 'kafka_unavailable' | 'kafka_timeout'): Promise<DeliveryOutcome> {
    await this.#options.spool!.append(webhook);
    this.#options.metrics?.spooled.inc({ reason });
    return 'spooled';
  }
}
