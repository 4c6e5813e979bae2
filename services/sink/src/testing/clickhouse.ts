/**
 * Test harness: picks the real ClickHouse a suite runs against.
 *
 *   TEST_CLICKHOUSE=server     CLICKHOUSE_URL (required)
 *   TEST_CLICKHOUSE=container  testcontainers clickhouse/clickhouse-server:24.8 (Docker required)
 *   TEST_CLICKHOUSE=embedded   chDB in this process
 *   unset / auto               CLICKHOUSE_URL → server; Docker answers → container; else embedded
 *
 * Anything else is refused: a typo must not silently test something else.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openClickHouse } from '../clickhouse.js';
import type { ClickHouseHandle } from '../clickhouse.js';
import { dockerAvailable } from '@clustr-pipeline/devkit';

export type ClickHouseTestMode = 'server' | 'container' | 'embedded';
export const CLICKHOUSE_TEST_IMAGE = 'clickhouse/clickhouse-server:24.8';

export interface TestClickHouse {
  mode: ClickHouseTestMode;
  handle: ClickHouseHandle;
  /** A database unique to this run (server/container) or the given one (embedded). */
  database: string;
  close(): Promise<void>;
}

export interface TestClickHouseOptions {
  /** Usually `process.env` (only tests read the environment). */
  env: Record<string, string | undefined>;
  /** @default 'clustr_test' (a random suffix is added on a shared server) */
  database?: string;
  /** Embedded only: serve the read-only HTTP interface. @default null */
  httpPort?: number | null;
}


export async function resolveClickHouseTestMode(env: Record<string, string | undefined>): Promise<ClickHouseTestMode> {
  const requested = (env['TEST_CLICKHOUSE'] ?? 'auto').trim().toLowerCase();
  switch (requested) {
    case 'server':
      if (!env['CLICKHOUSE_URL']) throw new Error('TEST_CLICKHOUSE=server needs CLICKHOUSE_URL');
      return 'server';
    case 'container':
    case 'embedded':
      return requested;
    case '':
    case 'auto':
      if (env['CLICKHOUSE_URL']) return 'server';
      return dockerAvailable() ? 'container' : 'embedded';
    default:
      throw new Error(`Unknown TEST_CLICKHOUSE=${requested}: use server, container, embedded or auto`);
  }
}

export async function startTestClickHouse(options: TestClickHouseOptions): Promise<TestClickHouse> {
  const mode = await resolveClickHouseTestMode(options.env);
  const base = options.database ?? 'clustr_test';
  const cleanups: Array<() => Promise<void> | void> = [];
  let url: string | undefined;
  let database = base;

  if (mode === 'server') {
    url = options.env['CLICKHOUSE_URL']!;
    database = `${base}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
  } else if (mode === 'container') {
    const { GenericContainer, Wait } = await import('testcontainers');
    const container = await new GenericContainer(CLICKHOUSE_TEST_IMAGE)
      .withEnvironment({ CLICKHOUSE_USER: 'test', CLICKHOUSE_PASSWORD: 'test', CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT: '1' })
      .withExposedPorts(8123)
      .withWaitStrategy(Wait.forHttp('/ping', 8123).forStatusCode(200))
      .withStartupTimeout(120_000)
      .start();
    cleanups.push(async () => {
      await container.stop();
    });
    url = `http://test:test@${container.getHost()}:${container.getMappedPort(8123)}`;
  }

  const embeddedPath = mkdtempSync(join(tmpdir(), 'sink-chdb-'));
  cleanups.push(() => rmSync(embeddedPath, { recursive: true, force: true }));
  const handle = await openClickHouse({
    ...(url ? { url } : {}),
    database,
    embeddedPath,
    httpPort: mode === 'embedded' ? (options.httpPort ?? null) : null,
  });

  return {
    mode,
    handle,
    database,
    async close() {
      if (mode === 'server') {
        await handle.client.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => undefined);
      }
      await handle.close();
      for (const cleanup of cleanups.reverse()) await cleanup();
    },
  };
}
