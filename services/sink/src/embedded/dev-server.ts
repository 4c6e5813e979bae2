/**
 * DEVELOPMENT AND TESTS ONLY — never used by the sink's production path (nothing in app.ts,
 * main.ts or clickhouse.ts imports it). Use a real ClickHouse server anywhere else.
 *
 * A dev ClickHouse server: chDB in its own process behind the WRITABLE ClickHouse HTTP interface
 * (`startHttpInterface` in `readwrite` mode), i.e. the subset @clickhouse/client sends
 * (`query`/`exec`/`command`/`insert`/`ping`): SQL in the body or in `?query=` (INSERT data in the
 * body), `database`, `default_format`, `param_*` query parameters, and any other URL parameter as
 * a setting of that query only (e.g. `insert_deduplication_token`). No authentication, one query
 * at a time. The test suites run the sink in server mode against it (test/reliability).
 *
 * chDB binds one data directory per process, hence a process of its own (dev-server-main.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

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
/** From dist: dev-server-main.js next to this file; from the TypeScript source (this package's tests): the .ts. */
const FROM_SOURCE = THIS_FILE.endsWith('.ts');
const MAIN_FILE = join(dirname(THIS_FILE), FROM_SOURCE ? 'dev-server-main.ts' : 'dev-server-main.js');

/**
 * Starts the dev ClickHouse server (development/tests only) as its own process on `path`,
 * listening on `port`. Resolves once it answers. The process exits when this one dies.
 */
export async function startDevClickHouseServer(options: DevClickHouseServerOptions): Promise<DevClickHouseServer> {
  const path = resolve(options.path);
  const host = options.host ?? '127.0.0.1';
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  const loader = FROM_SOURCE ? ['--import', 'tsx'] : [];
  const child: ChildProcess = spawn(process.execPath, [...loader, MAIN_FILE, path, String(options.port ?? 0), host, '--exit-with-stdin'], {
    // stdin stays open while we live: the server exits when it closes, so a crashed test run leaves no orphan.
    stdio: ['pipe', 'pipe', 'pipe'],
    // A minimal environment on purpose (no NODE_OPTIONS or test-runner variables leak into it).
    // eslint-disable-next-line no-restricted-properties -- not configuration: the child's PATH and HOME.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
  });
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  createInterface({ input: child.stderr! }).on('line', (line) => options.onLog?.(line));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`dev ClickHouse server did not start within ${startTimeoutMs} ms`));
    }, startTimeoutMs);
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
