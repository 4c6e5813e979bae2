import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGunzip, createInflate, createBrotliDecompress } from 'node:zlib';
import type { Readable } from 'node:stream';
import type pino from 'pino';
import { HttpQueryError, errorBody, httpStatusFor, toHttpQueryError } from './http-errors.js';
import { bindableParams } from './params.js';
import { assertReadStatement, formatClause, isIdentifier } from './sql-guard.js';

/** The part of a chdb `Session` the HTTP interface needs (a fake one will do in a unit test). */
export interface QuerySession {
  queryAsync(query: string, opts?: { format?: string; timeout?: number }): Promise<QueryResult>;
  queryBindAsync(query: string, params: object, opts?: { format?: string; timeout?: number }): Promise<QueryResult>;
}
interface QueryResult {
  readonly elapsed: number;
  readonly rowsRead: number;
  readonly bytesRead: number;
  bytes(): Uint8Array;
  text(): string;
}

export interface HttpInterfaceOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port; the server's `url` reports it. */
  port: number;
  /** Database for queries that send no `database` parameter. @default 'default' */
  defaultDatabase?: string;
  /** Server version reported in errors and headers. @default 'chdb' */
  version?: string;
  /** Per-query limit, enforced by the engine (max_execution_time). @default 60_000 */
  maxExecutionMs?: number;
  /** Largest accepted request body. @default 1 MiB */
  maxBodyBytes?: number;
  logger?: pino.Logger;
}

export interface HttpInterface {
  /** `http://host:port` with the real port. */
  readonly url: string;
  close(): Promise<void>;
}

/** ClickHouse's HTTP default when neither FORMAT nor default_format is given. */
const DEFAULT_FORMAT = 'TabSeparated';
const FORMAT_NAME = /^[A-Za-z0-9_]+$/;

function contentTypeFor(format: string): string {
  const f = format.toLowerCase();
  if (f === 'jsoneachrow' || f === 'jsonstringseachrow' || f === 'jsoncompacteachrow' || f === 'ndjson' || f === 'jsonlines') {
    return 'application/x-ndjson; charset=UTF-8';
  }
  if (f.startsWith('json')) return 'application/json; charset=UTF-8';
  if (f.startsWith('csv')) return 'text/csv; charset=UTF-8; header=' + (f.includes('withnames') ? 'present' : 'absent');
  if (f.startsWith('tsv') || f.startsWith('tabseparated')) return 'text/tab-separated-values; charset=UTF-8';
  return 'text/plain; charset=UTF-8';
}

/** Runs `task`s one after another: the session's current database is per session state. */
class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();
  run<T>(task: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(task, task);
    this.#tail = next.catch(() => undefined);
    return next;
  }
}

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const encoding = (req.headers['content-encoding'] ?? '').toLowerCase().trim();
  let stream: Readable = req;
  if (encoding === 'gzip') stream = req.pipe(createGunzip());
  else if (encoding === 'deflate') stream = req.pipe(createInflate());
  else if (encoding === 'br') stream = req.pipe(createBrotliDecompress());
  else if (encoding !== '' && encoding !== 'identity') {
    throw new HttpQueryError(36, 'BAD_ARGUMENTS', `Unknown Content-Encoding: ${encoding}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) throw new HttpQueryError(202, 'QUERY_IS_TOO_LARGE', `Query is too large (more than ${limit} bytes)`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Serves the ClickHouse HTTP interface (the subset @clickhouse/client and curl use) over an
 * embedded chDB engine, READ-ONLY. A chDB data directory can be opened by one process only, so
 * this is how analysts and dashboards reach the sink's embedded database while it runs.
 *
 * `session` must be a chdb Session on the sink's data path that nothing else uses: it is switched
 * to readonly=1 for good here (session settings are per Session; the writer's stays read-write).
 */
export async function startHttpInterface(session: QuerySession, options: HttpInterfaceOptions): Promise<HttpInterface> {
  const host = options.host ?? '127.0.0.1';
  const defaultDatabase = options.defaultDatabase ?? 'default';
  const version = options.version ?? 'chdb';
  const maxExecutionSeconds = Math.max(1, Math.ceil((options.maxExecutionMs ?? 60_000) / 1000));
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  const logger = options.logger;
  if (!isIdentifier(defaultDatabase)) throw new Error(`Invalid default database name: ${defaultDatabase}`);

  // TRICKY: limits first, readonly=1 last: after it no setting can be changed on this session,
  // neither by SET nor by a query's SETTINGS clause (the engine answers READONLY).
  await session.queryAsync(`SET max_execution_time = ${maxExecutionSeconds}`);
  await session.queryAsync('SET readonly = 1');
  const check = (await session.queryAsync("SELECT getSetting('readonly')", { format: 'TabSeparated' })).text().trim();
  if (check !== '1') throw new Error(`Embedded HTTP interface: could not make its session read-only (readonly=${check})`);

  const queue = new SerialQueue();
  let currentDatabase: string | null = null;

  async function execute(sql: string, database: string, format: string, params: Record<string, string>) {
    return queue.run(async () => {
      // ClickHouse's own parser decides what the statement is; multi-statements fail here.
      const formatted = await session.queryBindAsync('SELECT formatQuerySingleLine({q:String}) AS q', { q: sql }, { format: 'JSONEachRow' });
      const canonical = (JSON.parse(formatted.text()) as { q?: string }).q ?? '';
      const statement = assertReadStatement(canonical);
      if (currentDatabase !== database) {
        await session.queryAsync(`USE ${database}`);
        currentDatabase = database;
      }
      const result = Object.keys(params).length > 0
        ? await session.queryBindAsync(statement, bindableParams(statement, params), { format })
        : await session.queryAsync(statement, { format });
      return { result, format: formatClause(statement) ?? format };
    });
  }

  function sendError(res: ServerResponse, queryId: string, err: unknown): void {
    const error = toHttpQueryError(err);
    const status = httpStatusFor(error.chType);
    if (status >= 500) logger?.warn({ err, queryId }, 'embedded HTTP interface: query failed');
    res.writeHead(status, {
      'Content-Type': 'text/plain; charset=UTF-8',
      'X-ClickHouse-Exception-Code': String(error.chCode),
      'X-ClickHouse-Query-Id': queryId,
      'X-ClickHouse-Server-Display-Name': 'chdb',
      'X-ClickHouse-Timezone': 'UTC',
    });
    res.end(errorBody(error, version));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const search = url.searchParams;
    const queryId = search.get('query_id') || randomUUID();

    if (url.pathname === '/ping' || url.pathname === '/ping/') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=UTF-8' });
      res.end(req.method === 'HEAD' ? undefined : 'Ok.\n');
      return;
    }
    if (url.pathname !== '/') {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=UTF-8' });
      res.end(`There is no handle ${url.pathname}\n\nUse / or /ping for health checks.\nSend queries with POST or GET /?query=...\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'POST' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, POST, HEAD', 'Content-Type': 'text/plain; charset=UTF-8' });
      res.end('Method not allowed. Use GET or POST.\n');
      return;
    }

    try {
      const body = req.method === 'POST' ? await readBody(req, maxBodyBytes) : '';
      const queryParam = search.get('query') ?? '';
      // As ClickHouse: the `query` parameter, then the request body.
      const sql = queryParam && body ? `${queryParam}\n${body}` : queryParam || body;
      if (sql.trim() === '') {
        if (req.method === 'POST') throw new HttpQueryError(62, 'SYNTAX_ERROR', 'Empty query');
        res.writeHead(200, { 'Content-Type': 'text/html; charset=UTF-8' });
        res.end('Ok.\n');
        return;
      }

      const readonly = search.get('readonly');
      if (readonly !== null && readonly !== '1') {
        throw new HttpQueryError(164, 'READONLY', "Cannot modify 'readonly' setting in readonly mode");
      }
      const database = search.get('database') || defaultDatabase;
      if (!isIdentifier(database)) throw new HttpQueryError(81, 'UNKNOWN_DATABASE', `Database ${database} does not exist`);
      const defaultFormat = search.get('default_format') || DEFAULT_FORMAT;
      if (!FORMAT_NAME.test(defaultFormat)) throw new HttpQueryError(73, 'UNKNOWN_FORMAT', `Unknown format ${defaultFormat}`);

      // {name:Type} placeholders: bound by the engine from these strings (ClickHouse's text form
      // of the type, e.g. ['a','b'] for Array(String)); never spliced into the SQL.
      const params: Record<string, string> = {};
      for (const [key, value] of search) {
        if (key.startsWith('param_') && key.length > 'param_'.length) params[key.slice('param_'.length)] = value;
      }
      // Everything else (session_id, compress, enable_http_compression, wait_end_of_query, other
      // settings the client sends) is accepted and ignored: this session's settings are frozen.

      const { result, format } = await execute(sql, database, defaultFormat, params);
      const bytes = result.bytes();
      const summary = {
        read_rows: String(result.rowsRead),
        read_bytes: String(result.bytesRead),
        written_rows: '0',
        written_bytes: '0',
        total_rows_to_read: String(result.rowsRead),
        result_rows: '0',
        result_bytes: String(bytes.byteLength),
        elapsed_ns: String(Math.round(result.elapsed * 1e9)),
      };
      res.writeHead(200, {
        'Content-Type': contentTypeFor(format),
        'Content-Length': String(bytes.byteLength),
        'X-ClickHouse-Format': format,
        'X-ClickHouse-Query-Id': queryId,
        'X-ClickHouse-Summary': JSON.stringify(summary),
        'X-ClickHouse-Server-Display-Name': 'chdb',
        'X-ClickHouse-Timezone': 'UTC',
      });
      res.end(req.method === 'HEAD' ? undefined : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (err) {
      sendError(res, queryId, err);
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger?.error({ err }, 'embedded HTTP interface: request handler failed');
      if (!res.headersSent) sendError(res, 'unknown', err);
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${urlHost}:${address.port}`;
  logger?.info({ url }, 'embedded ClickHouse HTTP interface (read-only) listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // A slow query must not hold shutdown for long; its client sees the socket close.
        setTimeout(() => server.closeAllConnections(), 5_000).unref();
      }).then(() => queue.run(async () => undefined));
      return closing;
    },
  };
}
