import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import { parseWebhook, type ClustrWebhook } from '@clustr-pipeline/schema';
import type { Logger } from 'pino';
import { loadConfig, type IngestConfig } from '../config.js';
import { createLogger } from '../logger.js';
import type { MessageBatch } from '../messages.js';
import type { Publisher } from '../publisher.js';

/** A fresh empty directory under the OS temp dir (for spools). */
export function tempDir(prefix = 'clustr-ingest-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A valid config for tests: `env` entries override the minimal defaults. Each call gets its own spool directory. */
export function testConfig(env: Record<string, string | undefined> = {}): IngestConfig {
  return loadConfig({ KAFKA_BROKERS: '127.0.0.1:9092', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', INGEST_SPOOL_DIR: tempDir(), ...env });
}

/** Records what would have been published; `failWith` makes publish reject. */
export class FakePublisher implements Publisher {
  readonly published: MessageBatch[][] = [];
  isReady = true;
  failWith: Error | undefined;
  closed = false;
  /** Simulated time until Kafka acknowledges. */
  delayMs = 0;

  async publish(batches: MessageBatch[]): Promise<void> {
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failWith) throw this.failWith;
    this.published.push(batches);
  }
  ready(): boolean {
    return this.isReady;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

/** A logger (with the production redaction) whose output the test can read back. */
export function captureLogs(level = 'trace'): { logger: Logger; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  return { logger: createLogger(level, stream), text: () => chunks.join('') };
}

const require = createRequire(import.meta.url);

/** The raw text of a schema fixture: completed, failed or completed-full-history. */
export function fixtureText(name: string): string {
  return readFileSync(require.resolve(`@clustr-pipeline/schema/fixtures/${name}.json`), 'utf8');
}

/** A schema fixture, parsed and validated. */
export function fixture(name: string): ClustrWebhook {
  const parsed = parseWebhook(JSON.parse(fixtureText(name)));
  if (!parsed.ok) throw new Error(`fixture ${name} is invalid`);
  return parsed.webhook;
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A TCP port on 127.0.0.1 with nothing listening. */
export async function closedPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || !address) throw new Error('no port');
  return address.port;
}
