import { flattenWebhook, parseWebhook } from '@clustr-pipeline/schema';
import type { Logger } from 'pino';
import { decodeUtf8Strict } from './json.js';
import { toMessageBatches, type MessageBatch, type MessageSettings } from './messages.js';
import type { IngestMetrics } from './metrics.js';
import type { Publisher } from './publisher.js';
import { SpoolCorruptError, type Spool, type SpooledWebhook } from './spool.js';

/**
 * A spooled webhook → the same Kafka batches the HTTP path would have published: same event ids
 * (they derive from job and opportunity ids) and the original `received_at`.
 */
export function spooledToBatches(webhook: SpooledWebhook, settings: MessageSettings): MessageBatch[] {
  const parsed = parseWebhook(JSON.parse(decodeUtf8Strict(webhook.body)));
  if (!parsed.ok) throw new SpoolCorruptError(`spooled webhook no longer matches the schema: ${JSON.stringify(parsed.issues.slice(0, 3))}`);
  return toMessageBatches(flattenWebhook(parsed.webhook, webhook.receivedAt), settings);
}

export interface SpoolDrainerOptions {
  spool: Spool;
  publisher: Publisher;
  messages: MessageSettings;
  logger: Logger;
  metrics?: IngestMetrics;
  /** First and longest wait after a failed publish. @default [250, 10_000] */
  backoffMs?: [number, number];
  /** How often to look again while Kafka is not ready. @default 250 */
  pollMs?: number;
}

/**
 * Publishes spooled webhooks one at a time, oldest first, and deletes each file only after all of
 * its events were acknowledged. Runs from start-up (files left by a crash) until `close()`.
 * A file that cannot be read or validated is moved to `rejected/` rather than block the queue.
 */
export class SpoolDrainer {
  readonly #options: SpoolDrainerOptions;
  readonly #logger: Logger;
  #closed = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #unsubscribe: (() => void) | undefined;
  #idle = false;

  constructor(options: SpoolDrainerOptions) {
    this.#options = options;
    this.#logger = options.logger.child({ component: 'spool-drainer' });
  }

  start(): void {
    // An append ends an idle wait, never a backoff after a failure.
    this.#unsubscribe = this.#options.spool.onAppend(() => {
      if (this.#idle) this.#wake?.();
    });
    this.#loop ??= this.#run();
  }

  /** Stops after the webhook being published (if any) settles, waiting at most `timeoutMs`. */
  async close(timeoutMs = 10_000): Promise<void> {
    this.#closed = true;
    this.#unsubscribe?.();
    this.#wake?.();
    if (this.#loop) await Promise.race([this.#loop, sleep(timeoutMs)]);
  }

  async #run(): Promise<void> {
    const { spool, publisher, messages, metrics } = this.#options;
    const [first, longest] = this.#options.backoffMs ?? [250, 10_000];
    const pollMs = this.#options.pollMs ?? 250;
    let failures = 0;
    while (!this.#closed) {
      const entry = spool.head();
      if (!entry || !publisher.ready()) {
        this.#idle = true;
        await this.#sleep(pollMs);
        this.#idle = false;
        continue;
      }
      let batches: MessageBatch[];
      let webhook: SpooledWebhook;
      try {
        webhook = await spool.read(entry);
        batches = spooledToBatches(webhook, messages);
      } catch (error) {
        await this.#quarantine(entry, error);
        continue;
      }
      try {
        await publisher.publish(batches);
        await spool.remove(entry);
        failures = 0;
        metrics?.spoolDrained.inc();
        this.#logger.info({ file: entry.name, requestId: webhook.requestId, left: spool.stats().files }, 'spooled webhook published');
      } catch (error) {
        failures++;
        const wait = Math.min(longest, first * 2 ** Math.min(failures - 1, 16)) * (0.5 + Math.random() / 2);
        this.#logger.warn({ err: error, file: entry.name, attempt: failures, retryInMs: Math.round(wait) }, 'could not publish a spooled webhook, retrying');
        await this.#sleep(wait);
      }
    }
  }

  async #quarantine(entry: Parameters<Spool['remove']>[0], error: unknown): Promise<void> {
    try {
      const path = await this.#options.spool.quarantine(entry);
      this.#options.metrics?.spoolQuarantined.inc();
      this.#logger.error({ err: error, file: entry.name, movedTo: path }, 'unreadable spool file moved aside');
    } catch (moveError) {
      this.#logger.error({ err: moveError, file: entry.name }, 'could not move an unreadable spool file aside');
      await this.#sleep(5_000);
    }
  }

  /** Sleeps `ms` or until woken (an append or close). */
  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
