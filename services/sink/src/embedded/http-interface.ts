import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGunzip, createInflate, createBrotliDecompress } from 'node:zlib';
import type { Readable } from 'node:stream';
import type pino from 'pino';
import { HttpQueryError, errorBody, httpStatusFor, toHttpQueryError } from './http-errors.js';
import { bindableParams } from './params.js';
import { assertReadStatement, formatClause, isIdentifier, trailingFormatClause } from './sql-guard.js';

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

/** A session the HTTP interface opens per request in `readwrite` mode, and closes after it. */
export interface OwnedQuerySession extends QuerySession {
  close(): void;
}

/**
 * `readonly` (the default): the sink's analyst port; one session frozen at readonly=1, read
 * statements only. `readwrite`: DEVELOPMENT/TEST servers only (see dev-server.ts): any statement,
 * INSERT data in the body, URL parameters applied as settings of that one query.
 */
export type HttpInterfaceMode = 'readonly' | 'readwrite';

export interface HttpInterfaceOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port; the server's `url` reports it. */
  port: number;
  /** Database for queries that send no `database` parameter. @default 'default' */
  defaultDatabase?: string;
  /** Server version reported in errors and headers. @default 'chdb' */
  version?: string;
  /**
   * Per-query limit, enforced by the engine (max_execution_time). @default 60_000 in readonly mode;
   * in readwrite mode no limit unless given.
   */
  maxExecutionMs?: number;
  /** Largest accepted request body. @default 1 MiB */
  maxBodyBytes?: number;
  /** Largest request head (URL + headers); param_ values travel in the URL. @default Node's (16 KiB) */
  maxHeaderBytes?: number;
  logger?: pino.Logger;
}

export interface ReadOnlyHttpInterfaceOptions extends HttpInterfaceOptions {
  /** @default 'readonly' */
  mode?: 'readonly';
}

export interface ReadWriteHttpInterfaceOptions extends HttpInterfaceOptions {
  mode: 'readwrite';
}

export interface HttpInterface {
  /** `http://host:port` with the real port. */
  readonly url: string;
  close(): Promise<void>;
}

/** ClickHouse's HTTP default when neither FORMAT nor default_format is given. */
const DEFAULT_FORMAT = 'TabSeparated';
const FORMAT_NAME = /^[A-Za-z0-9_]+$/;

/** URL parameters that are not settings (readwrite mode applies the others to the query). */
const CONTROL_PARAMS = new Set([
  'query', 'database', 'default_format', 'query_id', 'session_id', 'session_timeout', 'session_check',
  'user', 'password', 'quota_key', 'compress', 'decompress', 'buffer_size', 'role', 'client_protocol_version',
]);
/** Settings of the HTTP layer only: the engine would not know them. */
const HTTP_ONLY_SETTINGS = new Set([
  'wait_end_of_query', 'send_progress_in_http_headers', 'enable_http_compression', 'http_zlib_compression_level',
  'http_headers_progress_interval_ms', 'http_response_buffer_size', 'http_wait_end_of_query',
  'http_native_compression_disable_checksumming_on_decompress', 'http_write_exception_in_output_format',
  'http_response_headers',
]);

function settingLiteral(value: string): string {
  if (/^-?\d+(\.\d+)?$/.test(value)) return value;
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

const isInsert = (sql: string) => /^\s*INSERT\b/i.test(sql);

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
 * Readonly mode: `session` frozen at readonly=1; each query's statement checked by ClickHouse's
 * own parser first. Settings from the URL are ignored.
 */
async function readOnlyExecutor(session: QuerySession, queue: SerialQueue, maxExecutionMs: number | undefined) {
  const maxExecutionSeconds = Math.max(1, Math.ceil((maxExecutionMs ?? 60_000) / 1000));
  // TRICKY: limits first, readonly=1 last: after it no setting can be changed on this session,
  // neither by SET nor by a query's SETTINGS clause (the engine answers READONLY).
  await session.queryAsync(`SET max_execution_time = ${maxExecutionSeconds}`);
  await session.queryAsync('SET readonly = 1');
  const check = (await session.queryAsync("SELECT getSetting('readonly')", { format: 'TabSeparated' })).text().trim();
  if (check !== '1') throw new Error(`Embedded HTTP interface: could not make its session read-only (readonly=${check})`);

  let currentDatabase: string | null = null;
  return (sql: string, database: string, format: string, params: Record<string, string>) =>
    queue.run(async () => {
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

/**
 * Serves the ClickHouse HTTP interface (the subset @clickhouse/client and curl use) over an
 * embedded chDB engine.
 *
 * READ-ONLY (the default, the sink's production use). A chDB data directory can be opened by one
 * process only, so this is how analysts and dashboards reach the sink's embedded database while
 * it runs. `session` must be a chdb Session on the sink's data path that nothing else uses: it is
 * switched to readonly=1 for good here (session settings are per Session; the writer's stays
 * read-write).
 *
 * READ-WRITE (`mode: 'readwrite'`): DEVELOPMENT AND TESTS ONLY (the dev ClickHouse server,
 * dev-server.ts), never the sink's production path. `openSession` opens a new chdb Session on the
 * engine's data path for each request, closed after it, so the URL parameters applied to a query
 * as settings (e.g. insert_deduplication_token) never leak into the next one. Any statement;
 * INSERT data goes in the body after `?query=`. No authentication, one query at a time.
 */
export function startHttpInterface(session: QuerySession, options: ReadOnlyHttpInterfaceOptions): Promise<HttpInterface>;
export function startHttpInterface(openSession: () => OwnedQuerySession, options: ReadWriteHttpInterfaceOptions): Promise<HttpInterface>;
export async function startHttpInterface(
  source: QuerySession | (() => OwnedQuerySession),
  options: ReadOnlyHttpInterfaceOptions | ReadWriteHttpInterfaceOptions,
): Promise<HttpInterface> {
  const writable = options.mode === 'readwrite';
  if (writable !== (typeof source === 'function')) {
    throw new Error('startHttpInterface: readwrite mode takes a session factory, readonly mode a session');
  }
  const host = options.host ?? '127.0.0.1';
  const defaultDatabase = options.defaultDatabase ?? 'default';
  const version = options.version ?? 'chdb';
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  const logger = options.logger;
  if (!isIdentifier(defaultDatabase)) throw new Error(`Invalid default database name: ${defaultDatabase}`);

  const queue = new SerialQueue();
  let execute: (sql: string, database: string, format: string, params: Record<string, string>, settings: Array<[string, string]>) =>
    Promise<{ result: QueryResult; format: string }>;
  if (typeof source === 'function') {
    const maxExecutionSeconds = options.maxExecutionMs === undefined ? null : Math.max(1, Math.ceil(options.maxExecutionMs / 1000));
    execute = (sql, database, format, params, settings) =>
      queue.run(async () => {
        const session = source();
        try {
          await session.queryAsync(`USE ${database}`);
          // A server's default (clickhouse-local's differs): 64-bit integers are quoted in JSON output.
          await session.queryAsync('SET output_format_json_quote_64bit_integers = 1');
          if (maxExecutionSeconds !== null) await session.queryAsync(`SET max_execution_time = ${maxExecutionSeconds}`);
          for (const [name, value] of settings) await session.queryAsync(`SET ${name} = ${settingLiteral(value)}`);
          const result = Object.keys(params).length > 0
            ? await session.queryBindAsync(sql, bindableParams(sql, params), { format })
            : await session.queryAsync(sql, { format });
          return { result, format: (isInsert(sql) ? undefined : trailingFormatClause(sql)) ?? format };
        } finally {
          session.close();
        }
      });
  } else {
    execute = await readOnlyExecutor(source, queue, options.maxExecutionMs);
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
      if (writable && queryParam && isInsert(queryParam) && body.trim() === '') {
        // A server inserts nothing for an empty body; chDB would say "No data to insert".
        res.writeHead(200, { 'X-ClickHouse-Query-Id': queryId, 'X-ClickHouse-Summary': '{"written_rows":"0"}' });
        res.end();
        return;
      }
      // As ClickHouse: the `query` parameter, then the request body.
      const sql = queryParam && body ? `${queryParam}\n${body}` : queryParam || body;
      if (sql.trim() === '') {
        if (req.method === 'POST') throw new HttpQueryError(62, 'SYNTAX_ERROR', 'Empty query');
        res.writeHead(200, { 'Content-Type': 'text/html; charset=UTF-8' });
        res.end('Ok.\n');
        return;
      }

      const readonly = search.get('readonly');
      if (!writable && readonly !== null && readonly !== '1') {
        throw new HttpQueryError(164, 'READONLY', "Cannot modify 'readonly' setting in readonly mode");
      }
      const database = search.get('database') || defaultDatabase;
      if (!isIdentifier(database)) throw new HttpQueryError(81, 'UNKNOWN_DATABASE', `Database ${database} does not exist`);
      const defaultFormat = search.get('default_format') || DEFAULT_FORMAT;
      if (!FORMAT_NAME.test(defaultFormat)) throw new HttpQueryError(73, 'UNKNOWN_FORMAT', `Unknown format ${defaultFormat}`);

      // {name:Type} placeholders: bound by the engine from these strings (ClickHouse's text form
      // of the type, e.g. ['a','b'] for Array(String)); never spliced into the SQL.
      const params: Record<string, string> = {};
      const settings: Array<[string, string]> = [];
      for (const [key, value] of search) {
        if (key.startsWith('param_') && key.length > 'param_'.length) params[key.slice('param_'.length)] = value;
        else if (writable && !CONTROL_PARAMS.has(key) && !HTTP_ONLY_SETTINGS.has(key)) {
          // Readwrite: a setting of this query only (its session is closed after it).
          if (!isIdentifier(key)) throw new HttpQueryError(115, 'UNKNOWN_SETTING', `Unknown setting ${key}`);
          settings.push([key, value]);
        }
      }
      // Readonly: everything else (session_id, compress, enable_http_compression, wait_end_of_query,
      // other settings the client sends) is accepted and ignored: this session's settings are frozen.

      const { result, format } = await execute(sql, database, defaultFormat, params, settings);
      const bytes = result.bytes();
      const wrote = writable && isInsert(sql);
      const summary = {
        read_rows: String(result.rowsRead),
        read_bytes: String(result.bytesRead),
        written_rows: wrote ? String(result.rowsRead) : '0',
        written_bytes: wrote ? String(result.bytesRead) : '0',
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
      req.resume();
      sendError(res, queryId, err);
    }
  }

  // readwrite: query parameters travel in the URL (`param_ids=[…10 000 ids…]`): the dev server
  // allows a server-sized URI (ClickHouse's http_max_uri_size is 1 MiB; Node's default is 16 KiB).
  const server = createServer(options.maxHeaderBytes === undefined ? {} : { maxHeaderSize: options.maxHeaderBytes }, (req, res) => {
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
  logger?.info({ url }, `embedded ClickHouse HTTP interface (${writable ? 'read-write, development only' : 'read-only'}) listening`);

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
