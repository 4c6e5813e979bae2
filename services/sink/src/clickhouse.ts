import { mkdirSync, readFileSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { createClient, parseError } from '@clickhouse/client';
import type { ClickHouseClient } from '@clickhouse/client';
import type * as ChdbTypes from 'chdb';
import type * as ChdbConnectionTypes from 'chdb/connection';
import type pino from 'pino';
import { startHttpInterface } from './embedded/http-interface.js';
import { startMemoryPurge, type MemoryPurger } from './embedded/memory-purge.js';
import type { HttpInterface, QuerySession } from './embedded/http-interface.js';

export interface ClickHouseOptions {
  /** `http(s)://user:password@host:port` of a ClickHouse server. Unset: embedded chDB. */
  url?: string;
  /** Database the sink writes (tables are always qualified with it). */
  database: string;
  /** Embedded mode: chDB data directory (created when missing). */
  embeddedPath: string;
  /** Embedded mode: serve the read-only ClickHouse HTTP interface on this port (0 = any free port); null = don't. */
  httpPort: number | null;
  /** @default '127.0.0.1' */
  httpHost?: string;
  /** Server mode: HTTP request timeout. Embedded mode: the HTTP interface's per-query limit. @default 30_000 */
  requestTimeoutMs?: number;
  /** Server mode over https. */
  tls?: { caFile?: string; rejectUnauthorized?: boolean };
  /** Embedded mode: return chDB's freed memory to the OS this often (see embedded/memory-purge.ts); 0 = never. @default 10_000 */
  embeddedPurgeMs?: number;
}

/**
 * How the writer sends `INSERT INTO <table> FORMAT JSONEachRow` + a body of JSON lines. The
 * settings apply to that one INSERT only (never to a session the next query would inherit).
 */
export interface InsertTransport {
  readonly kind: 'http' | 'chdb-raw';
  insertJsonEachRow(table: string, body: Buffer, settings: Record<string, string | number>): Promise<void>;
}

/** `@clickhouse/client`'s exec: HTTP in server mode (settings go as per-request URL parameters). */
export function clientInsertTransport(client: ClickHouseClient): InsertTransport {
  return {
    kind: 'http',
    async insertJsonEachRow(table, body, settings) {
      const result = await client.exec({
        query: `INSERT INTO ${table} FORMAT JSONEachRow`,
        values: Readable.from([body]),
        clickhouse_settings: settings,
      });
      result.stream.resume();
      await new Promise<void>((resolve, reject) => {
        result.stream.once('end', resolve).once('close', resolve).once('error', reject);
      });
    },
  };
}

/** The part of chdb's `ChdbConnection.chdb` extension the raw transport uses. */
export interface ChdbRawInserter {
  rawInsert(params: {
    table: string;
    values: Buffer;
    format: 'JSONEachRow';
    settings: Record<string, string | number>;
  }): Promise<unknown>;
}

/**
 * Embedded mode: chDB's raw passthrough insert. The Buffer goes to the engine zero-copy (no SQL
 * string of the whole batch, no `SET k=v;` that would persist in the session): the settings
 * travel in the statement's own `SETTINGS` clause. Errors are reshaped like the chdb connection
 * does (`Code: N. DB::Exception: … (TYPE)` → ClickHouseError) so the writer classifies them alike.
 */
export function chdbRawInsertTransport(chdb: ChdbRawInserter): InsertTransport {
  return {
    kind: 'chdb-raw',
    async insertJsonEachRow(table, body, settings) {
      try {
        await chdb.rawInsert({ table, values: body, format: 'JSONEachRow', settings });
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        const mapped = parseError(message) as Error & { type?: unknown };
        if (typeof mapped.type === 'string') {
          (mapped as { cause?: unknown }).cause = err;
          throw mapped;
        }
        throw err; // e.g. CHDB_CLOSED / CHDB_CONNECTION: classified by its code
      }
    },
  };
}

const transports = new WeakMap<ClickHouseClient, InsertTransport>();

/** The insert transport `openClickHouse` chose for this client; the HTTP/exec one for any other client. */
export function insertTransportFor(client: ClickHouseClient): InsertTransport {
  return transports.get(client) ?? clientInsertTransport(client);
}

export interface ClickHouseHandle {
  client: ClickHouseClient;
  /** How the writer inserts: HTTP via the client (server) or chDB's raw Buffer insert (embedded). */
  insertTransport: InsertTransport;
  mode: 'server' | 'embedded';
  database: string;
  /** Embedded mode with httpPort set: the read-only HTTP interface, e.g. http://127.0.0.1:8123. */
  httpUrl: string | null;
  /** Stops the HTTP interface, then closes the client. Idempotent. */
  close(): Promise<void>;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Throws unless `name` is a plain ClickHouse identifier (it is spliced into DDL and SQL). */
export function assertIdentifier(name: string, what = 'identifier'): string {
  if (!IDENTIFIER.test(name)) throw new Error(`Invalid ClickHouse ${what}: ${JSON.stringify(name)}`);
  return name;
}

type ChdbConnectionModule = typeof ChdbConnectionTypes;
type ChdbModule = typeof ChdbTypes;

function missingChdb(cause: unknown): Error {
  return new Error(
    'Embedded ClickHouse needs the optional package "chdb" (npm install chdb -w services/sink), ' +
      'or set CLICKHOUSE_URL to use a ClickHouse server.',
    { cause },
  );
}

async function loadChdb(): Promise<{ connection: ChdbConnectionModule; root: ChdbModule }> {
  // NOTE: lazy on purpose: chdb is ~540 MB, optional, and loads a native engine.
  try {
    const [connection, root] = await Promise.all([import('chdb/connection'), import('chdb')]);
    return { connection, root };
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') throw missingChdb(err);
    throw err;
  }
}

/** One ClickHouse client for either a server (CLICKHOUSE_URL) or the embedded chDB engine. */
export async function openClickHouse(options: ClickHouseOptions, logger?: pino.Logger): Promise<ClickHouseHandle> {
  const database = assertIdentifier(options.database, 'database name');
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;

  if (options.url) {
    const url = new URL(options.url);
    const https = url.protocol === 'https:';
    const ca = https && options.tls?.caFile ? readFileSync(options.tls.caFile) : undefined;
    const client = createClient({
      url: options.url,
      request_timeout: requestTimeoutMs,
      // NOTE: no `database` here: it may not exist before the migrations ran; SQL names it.
      ...(https && options.tls?.rejectUnauthorized === false
        ? { http_agent: new HttpsAgent({ keepAlive: true, rejectUnauthorized: false, ...(ca ? { ca } : {}) }) }
        : ca
          ? { tls: { ca_cert: ca } }
          : {}),
      application: 'clustr-sink',
    });
    logger?.info({ host: url.host, database }, 'ClickHouse: server mode');
    const insertTransport = clientInsertTransport(client);
    transports.set(client, insertTransport);
    let closed: Promise<void> | undefined;
    return {
      client,
      insertTransport,
      mode: 'server',
      database,
      httpUrl: null,
      close: () => (closed ??= client.close()),
    };
  }

  const path = resolve(options.embeddedPath);
  const { connection, root } = await loadChdb();
  mkdirSync(path, { recursive: true });
  // NOTE: chdb types its connection against its own copy of @clickhouse/client-common; the shape
  // is the same contract (chdb's documented use), only the nominal types differ.
  type ClientConnection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>['connection']>;
  const chdbConnection = connection.createChdbConnection({ path });
  const client = createClient({
    connection: chdbConnection as unknown as ClientConnection,
  });
  const insertTransport = chdbRawInsertTransport(chdbConnection.chdb as unknown as ChdbRawInserter);
  transports.set(client, insertTransport);

  let http: HttpInterface | null = null;
  let httpSession: InstanceType<ChdbModule['Session']> | null = null;
  if (options.httpPort !== null) {
    // TRICKY: a second Session on the same path shares the engine and the data (one engine per
    // process) but has its own session settings, so it can be made read-only without touching
    // the writer's session.
    try {
      httpSession = new root.Session(path);
      http = await startHttpInterface(httpSession as unknown as QuerySession, {
        host: options.httpHost ?? '127.0.0.1',
        port: options.httpPort,
        defaultDatabase: database,
        version: root.version().libchdb,
        maxExecutionMs: Math.max(requestTimeoutMs, 1000),
        ...(logger ? { logger } : {}),
      });
    } catch (err) {
      httpSession?.close();
      await client.close();
      throw err;
    }
  }
  const purgeMs = options.embeddedPurgeMs ?? 10_000;
  const purger: MemoryPurger | null =
    purgeMs > 0 ? startMemoryPurge({ run: (statement) => client.command({ query: statement }), intervalMs: purgeMs, ...(logger ? { logger } : {}) }) : null;
  logger?.info({ path, httpUrl: http?.url ?? null, database, purgeMs }, 'ClickHouse: embedded chDB mode');

  let closed: Promise<void> | undefined;
  return {
    client,
    insertTransport,
    mode: 'embedded',
    database,
    httpUrl: http?.url ?? null,
    close: () =>
      (closed ??= (async () => {
        try {
          await purger?.stop();
          await http?.close();
        } finally {
          httpSession?.close();
          await client.close();
        }
      })()),
  };
}
