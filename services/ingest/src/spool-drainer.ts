import { parseWebhook } from '@clustr-pipeline/schema';
import type { Logger } from 'pino';
import { decodeUtf8Strict } from './json.js';
import { LARGE_BODY_BYTES, LargeJsonBody, type ParsedBody } from './large-body.js';
import { lazyWebhookMessageStreams, webhookMessageStreams, type MessageSettings, type MessageStream } from './messages.js';
import type { IngestMetrics } from './metrics.js';
import type { Publisher } from './publisher.js';
import { SpoolCorruptError, type Spool, type SpooledWebhook } from './spool.js';
import { validateLargeBody } from './validate.js';

/**
 * A spooled webhook → the same Kafka messages the HTTP path would have published: same event ids
 * (they derive from job and opportunity ids) and the original `received_at`.
 *
 * Built the way the HTTP path builds them, so draining costs no more memory than receiving did:
 * messages are produced lazily, a slice at a time, while the publisher pulls chunks; a body of
 * `largeBodyBytes` or more takes the large-body path (never decoded or parsed whole).
 * Throws SpoolCorruptError when the body no longer parses or validates.
 */
export function spooledToStreams(webhook: SpooledWebhook, settings: MessageSettings, largeBodyBytes = LARGE_BODY_BYTES): MessageStream[] {
  const { body, receivedAt } = webhook;
  // The body passed the secure parser when it was received: plain JSON.parse reads it the same.
  const parseWhole = (): ParsedBody => {
    try {
      return { body: JSON.parse(decodeUtf8Strict(body)) as unknown, jsonTooDeep: null };
    } catch (error) {
      throw new SpoolCorruptError(`spooled webhook is not valid JSON: ${(error as Error).message}`);
    }
  };
  if (body.length >= largeBodyBytes) {
    const large = LargeJsonBody.from(body, (text) => JSON.parse(text) as unknown, parseWhole);
    const lazy = large ? validateLargeBody(large) : undefined;
    if (lazy) return lazyWebhookMessageStreams(lazy, receivedAt, settings).batches;
  }
  const parsed = parseWebhook(parseWhole().body);
  if (!parsed.ok) throw new SpoolCorruptError(`spooled webhook no longer matches the schema: ${JSON.stringify(parsed.issues.slice(0, 3))}`);
  return webhookMessageStreams(parsed.webhook, receivedAt, settings).batches;
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
      let batches: MessageStream[];
      let webhook: SpooledWebhook;
      try {
        webhook = await spool.read(entry);
        batches = spooledToStreams(webhook, messages);
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
