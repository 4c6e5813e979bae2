import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';

/**
 * A development/test ClickHouse server: chDB (ClickHouse in-process) behind a WRITABLE ClickHouse
 * HTTP interface, i.e. the subset @clickhouse/client sends (`query`/`exec`/`command`/`insert`/
 * `ping`): SQL in the body or in `?query=` (INSERT data in the body), `database`,
 * `default_format`, `param_*` query parameters, and any other URL parameter as a setting of that
 * query (e.g. `insert_deduplication_token`). No authentication, no sessions, one query at a time.
 * Development and tests only — use a real ClickHouse server anywhere else.
 *
 * chDB binds one data directory per process, so {@link startDevClickHouseServer} runs it as its
 * own process; {@link serveClickHouseHttp} serves an already opened engine in-process.
 */

/** The part of a chdb `Session` this server uses. */
export interface ChdbSessionLike {
  queryAsync(query: string, opts?: { format?: string }): Promise<ChdbResultLike>;
  queryBindAsync(query: string, params: object, opts?: { format?: string }): Promise<ChdbResultLike>;
  close(): void;
}
interface ChdbResultLike {
  readonly elapsed: number;
  readonly rowsRead: number;
  readonly bytesRead: number;
  bytes(): Uint8Array;
}

export interface ClickHouseHttpOptions {
  /** A new session on the engine's data path (each request gets its own: settings never leak). */
  openSession: () => ChdbSessionLike;
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 = any free port. */
  port: number;
  /** Largest request body. @default 512 MiB */
  maxBodyBytes?: number;
  /** Reported in error bodies. @default 'chdb-dev' */
  version?: string;
}

export interface ClickHouseHttp {
  /** `http://host:port` with the real port. */
  readonly url: string;
  readonly port: number;
  /** Queries answered so far (including failed ones). */
  readonly queries: number;
  close(): Promise<void>;
}

/** URL parameters that are not settings. */
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
const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const DATABASE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const FORMAT_NAME = /^[A-Za-z0-9_]+$/;

class QueryError extends Error {
  constructor(
    readonly code: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

const CH_MESSAGE = /Code: (\d+)\. DB::Exception: ([\s\S]*?)\s*\(([A-Z0-9_]+)\)(?: \(version [^)]*\))?\.?\s*$/;

function toQueryError(err: unknown): QueryError {
  if (err instanceof QueryError) return err;
  const text = err instanceof Error ? err.message : String(err);
  const match = CH_MESSAGE.exec(text);
  if (match) return new QueryError(Number(match[1]), match[3]!, match[2]!);
  return new QueryError(1001, 'STD_EXCEPTION', text);
}

function statusFor(type: string): number {
  if (type.startsWith('CANNOT_PARSE') || /^(SYNTAX_ERROR|BAD_ARGUMENTS|BAD_QUERY_PARAMETER|UNKNOWN_QUERY_PARAMETER|TYPE_MISMATCH|UNKNOWN_FORMAT|UNKNOWN_SETTING|INCORRECT_DATA|EMPTY_QUERY)$/.test(type)) return 400;
  if (/^(UNKNOWN_TABLE|UNKNOWN_DATABASE|UNKNOWN_IDENTIFIER|UNKNOWN_FUNCTION|THERE_IS_NO_COLUMN|NO_SUCH_COLUMN_IN_TABLE)$/.test(type)) return 404;
  if (type === 'QUERY_IS_TOO_LARGE') return 413;
  return 500;
}

const ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', '0': '\0', a: '\x07', v: '\v', e: '\x1b' };

/** ClickHouse "Escaped" text unescaping (`\t` → tab, `\\` → `\`, `\'` → '). */
function unescapeEscaped(text: string): string {
  if (!text.includes('\\')) return text;
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch !== '\\' || i === text.length - 1) {
      out += ch;
      continue;
    }
    const next = text[++i]!;
    if (next === 'x' && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      out += String.fromCharCode(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      out += ESCAPES[next] ?? next;
    }
  }
  return out;
}

const PLACEHOLDER = /\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([^{}]+?)\s*\}/g;
const COMPOSITE = /^(?:(?:Nullable|LowCardinality)\s*\(\s*)*(?:Array|Tuple|Map|Nested)\s*\(/i;

/**
 * `param_*` values as a ClickHouse server parses them (the type's escaped text form) → values for
 * chDB's binder (which escapes scalars again; composite literals keep their quotes, `\'` → `''`).
 */
function bindableParams(sql: string, raw: Record<string, string>): Record<string, string> {
  const types = new Map<string, string>();
  for (const m of sql.matchAll(PLACEHOLDER)) types.set(m[1]!, m[2]!);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    const type = types.get(name);
    out[name] = type !== undefined && COMPOSITE.test(type) ? value.replace(/\\'/g, "''") : unescapeEscaped(value);
  }
  return out;
}

function settingLiteral(value: string): string {
  if (/^-?\d+(\.\d+)?$/.test(value)) return value;
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

function contentTypeFor(format: string): string {
  const f = format.toLowerCase();
  if (f.endsWith('eachrow') || f === 'ndjson' || f === 'jsonlines') return 'application/x-ndjson; charset=UTF-8';
  if (f.startsWith('json')) return 'application/json; charset=UTF-8';
  if (f.startsWith('csv')) return 'text/csv; charset=UTF-8';
  if (f.startsWith('tsv') || f.startsWith('tabseparated')) return 'text/tab-separated-values; charset=UTF-8';
  return 'text/plain; charset=UTF-8';
}

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const encoding = (req.headers['content-encoding'] ?? '').toLowerCase().trim();
  let stream: Readable = req;
  if (encoding === 'gzip') stream = req.pipe(createGunzip());
  else if (encoding === 'deflate') stream = req.pipe(createInflate());
  else if (encoding === 'br') stream = req.pipe(createBrotliDecompress());
  else if (encoding !== '' && encoding !== 'identity') throw new QueryError(36, 'BAD_ARGUMENTS', `Unknown Content-Encoding: ${encoding}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new QueryError(202, 'QUERY_IS_TOO_LARGE', `Query is too large (more than ${limit} bytes)`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Serves a writable ClickHouse HTTP interface over an opened chDB engine, in this process. */
export async function serveClickHouseHttp(options: ClickHouseHttpOptions): Promise<ClickHouseHttp> {
  const host = options.host ?? '127.0.0.1';
  const maxBodyBytes = options.maxBodyBytes ?? 512 * 1024 * 1024;
  const version = options.version ?? 'chdb-dev';
  let queries = 0;
  // One query at a time: one engine, and a request's session state must not interleave.
  let tail: Promise<unknown> = Promise.resolve();
  const serial = <T>(task: () => Promise<T>): Promise<T> => {
    const next = tail.then(task, task);
    tail = next.catch(() => undefined);
    return next;
  };

  async function run(sql: string, database: string | null, settings: Array<[string, string]>, params: Record<string, string>, format: string) {
    return serial(async () => {
      const session = options.openSession();
      try {
        if (database) await session.queryAsync(`USE ${database}`);
        // A server's default (clickhouse-local's differs): 64-bit integers are quoted in JSON output.
        await session.queryAsync('SET output_format_json_quote_64bit_integers = 1');
        for (const [name, value] of settings) await session.queryAsync(`SET ${name} = ${settingLiteral(value)}`);
        return Object.keys(params).length > 0
          ? await session.queryBindAsync(sql, bindableParams(sql, params), { format })
          : await session.queryAsync(sql, { format });
      } finally {
        session.close();
      }
    });
  }

  function sendError(res: ServerResponse, queryId: string, err: unknown): void {
    const error = toQueryError(err);
    res.writeHead(statusFor(error.type), {
      'Content-Type': 'text/plain; charset=UTF-8',
      'X-ClickHouse-Exception-Code': String(error.code),
      'X-ClickHouse-Query-Id': queryId,
    });
    res.end(`Code: ${error.code}. DB::Exception: ${error.message.replace(/\.+$/, '')}. (${error.type}) (version ${version})\n`);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const search = url.searchParams;
    const queryId = search.get('query_id') || randomUUID();
    if (url.pathname === '/ping' || url.pathname === '/ping/' || (url.pathname === '/' && req.method === 'GET' && !search.has('query'))) {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'text/html; charset=UTF-8' });
      res.end('Ok.\n');
      return;
    }
    if (url.pathname !== '/') {
      req.resume();
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=UTF-8' });
      res.end(`There is no handle ${url.pathname}\n`);
      return;
    }
    queries++;
    try {
      const body = req.method === 'POST' ? await readBody(req, maxBodyBytes) : '';
      const queryParam = search.get('query') ?? '';
      if (queryParam && /^\s*INSERT\b/i.test(queryParam) && body.trim() === '') {
        // A server inserts nothing for an empty body; chDB would say "No data to insert".
        res.writeHead(200, { 'X-ClickHouse-Query-Id': queryId, 'X-ClickHouse-Summary': '{"written_rows":"0"}' });
        res.end();
        return;
      }
      // As ClickHouse: the `query` parameter, then the body (the INSERT's data).
      const sql = queryParam && body ? `${queryParam}\n${body}` : queryParam || body;
      if (sql.trim() === '') throw new QueryError(62, 'SYNTAX_ERROR', 'Empty query');
      const database = search.get('database');
      if (database !== null && !DATABASE_NAME.test(database)) throw new QueryError(81, 'UNKNOWN_DATABASE', `Database ${database} does not exist`);
      const format = search.get('default_format') || 'TabSeparated';
      if (!FORMAT_NAME.test(format)) throw new QueryError(73, 'UNKNOWN_FORMAT', `Unknown format ${format}`);
      const params: Record<string, string> = {};
      const settings: Array<[string, string]> = [];
      for (const [key, value] of search) {
        if (key.startsWith('param_') && key.length > 6) params[key.slice(6)] = value;
        else if (!CONTROL_PARAMS.has(key) && !HTTP_ONLY_SETTINGS.has(key)) {
          if (!SETTING_NAME.test(key)) throw new QueryError(115, 'UNKNOWN_SETTING', `Unknown setting ${key}`);
          settings.push([key, value]);
        }
      }
      const result = await run(sql, database, settings, params, format);
      const bytes = result.bytes();
      const isInsert = /^\s*INSERT\b/i.test(sql);
      const outFormat = /\sFORMAT\s+([A-Za-z0-9_]+)\s*(?:SETTINGS\s[^']*)?;?\s*$/i.exec(isInsert ? '' : sql)?.[1] ?? format;
      const summary = {
        read_rows: String(result.rowsRead),
        read_bytes: String(result.bytesRead),
        written_rows: isInsert ? String(result.rowsRead) : '0',
        written_bytes: isInsert ? String(result.bytesRead) : '0',
        total_rows_to_read: '0',
        result_rows: '0',
        result_bytes: String(bytes.byteLength),
        elapsed_ns: String(Math.round(result.elapsed * 1e9)),
      };
      res.writeHead(200, {
        'Content-Type': contentTypeFor(outFormat),
        'Content-Length': String(bytes.byteLength),
        'X-ClickHouse-Format': outFormat,
        'X-ClickHouse-Query-Id': queryId,
        'X-ClickHouse-Summary': JSON.stringify(summary),
        'X-ClickHouse-Timezone': 'UTC',
      });
      res.end(req.method === 'HEAD' ? undefined : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (err) {
      req.resume();
      sendError(res, queryId, err);
    }
  }

  // Query parameters travel in the URL (`param_ids=[…10 000 ids…]`): allow a server-sized URI
  // (ClickHouse's http_max_uri_size is 1 MiB; Node's default header limit is 16 KiB).
  const server = createServer({ maxHeaderSize: 16 * 1024 * 1024 }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 'unknown', err);
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  const address = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    get queries() {
      return queries;
    },
    close() {
      closing ??= new Promise<void>((done) => {
        server.close(() => done());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 2_000).unref();
      }).then(() => serial(async () => undefined));
      return closing;
    },
  };
}

/** Opens chDB at `path` (the optional `chdb` package, installed with services/sink). */
export function openChdb(path: string): { openSession: () => ChdbSessionLike; version: string; close(): void } {
  const require = createRequire(import.meta.url);
  let chdb: { Session: new (path: string) => ChdbSessionLike; version?: () => { libchdb?: string } };
  try {
    chdb = require('chdb') as typeof chdb;
  } catch (err) {
    throw new Error('The dev ClickHouse server needs the optional package "chdb" (npm install chdb -w services/sink)', { cause: err });
  }
  mkdirSync(path, { recursive: true });
  // Keeps the engine bound to `path` for the server's lifetime; requests open their own sessions.
  const anchor = new chdb.Session(path);
  return {
    openSession: () => new chdb.Session(path),
    version: chdb.version?.().libchdb ?? 'chdb',
    close: () => anchor.close(),
  };
}

export interface DevClickHouseServerOptions {
  /** chDB data directory (created when missing). */
  path: string;
  /** 0 = any free port. @default 0 */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** Called with each line the server process writes. */
  onLog?: (line: string) => void;
  /** How long to wait for the process to listen. @default 60_000 */
  startTimeoutMs?: number;
}

export interface DevClickHouseServer {
  /** `http://127.0.0.1:<port>`, for CLICKHOUSE_URL or `createClient({ url })`. */
  readonly url: string;
  readonly port: number;
  readonly pid: number | undefined;
  /** Graceful stop (SIGTERM, then SIGKILL after 10 s). */
  stop(): Promise<void>;
  /** Crash (SIGKILL). */
  kill(): Promise<void>;
}

const THIS_FILE = fileURLToPath(import.meta.url);

/**
 * Starts the dev ClickHouse server as its own process (chDB binds one data directory per process)
 * on `path`, listening on `port`. Resolves once it answers.
 */
export async function startDevClickHouseServer(options: DevClickHouseServerOptions): Promise<DevClickHouseServer> {
  const path = resolve(options.path);
  const host = options.host ?? '127.0.0.1';
  // Run from the TypeScript source (tests of this package) through tsx; from dist as plain node.
  const loader = THIS_FILE.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const child: ChildProcess = spawn(process.execPath, [...loader, THIS_FILE, '--serve', path, String(options.port ?? 0), host], {
    // stdin stays open while we live: the server exits when it closes, so a crashed test run leaves no orphan.
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', DEVKIT_EXIT_WITH_STDIN: '1' },
  });
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  createInterface({ input: child.stderr! }).on('line', (line) => options.onLog?.(line));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`dev ClickHouse server did not start within ${options.startTimeoutMs ?? 60_000} ms`));
    }, options.startTimeoutMs ?? 60_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      options.onLog?.(line);
      const m = /^LISTENING (\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]!);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`dev ClickHouse server exited during start-up (code ${code})`));
    });
  });
  const port = Number(new URL(url).port);
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    url,
    port,
    pid: child.pid,
    async stop() {
      if (!running()) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    },
    async kill() {
      if (!running()) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

async function serveMain(args: string[]): Promise<void> {
  const [path, port, host] = args;
  if (!path) throw new Error('usage: clickhouse-server --serve <path> [port] [host]');
  const engine = openChdb(path);
  const http = await serveClickHouseHttp({ openSession: engine.openSession, port: Number(port ?? 0), host: host ?? '127.0.0.1', version: engine.version });
  process.stdout.write(`LISTENING ${http.url}\n`);
  const shutdown = () => {
    void http.close().finally(() => {
      engine.close();
      process.exit(0);
    });
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  // Started by startDevClickHouseServer: its parent holds our stdin; end-of-file = the parent is gone.
  if (process.env.DEVKIT_EXIT_WITH_STDIN === '1') {
    process.stdin.resume();
    process.stdin.once('end', shutdown);
  }
}

if (process.argv[1] && pathToFileURL(resolve(process.argv[1])).href === import.meta.url && process.argv[2] === '--serve') {
  serveMain(process.argv.slice(3)).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
