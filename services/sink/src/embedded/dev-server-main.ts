/**
 * DEVELOPMENT AND TESTS ONLY: the dev ClickHouse server's process (started by
 * `startDevClickHouseServer`, dev-server.ts). Opens chDB at <path> and serves the WRITABLE
 * ClickHouse HTTP interface on it; prints `LISTENING <url>` once it answers.
 *
 *   node dist/embedded/dev-server-main.js <path> [port] [host] [--exit-with-stdin]
 *
 * `--exit-with-stdin`: the parent holds our stdin; end-of-file = the parent is gone, so exit.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type * as ChdbTypes from 'chdb';
import { startHttpInterface } from './http-interface.js';

async function loadChdb(): Promise<typeof ChdbTypes> {
  try {
    return await import('chdb');
  } catch (err) {
    throw new Error('The dev ClickHouse server needs the optional package "chdb" (npm install chdb -w services/sink)', { cause: err });
  }
}

async function main(args: string[]): Promise<void> {
  const exitWithStdin = args.includes('--exit-with-stdin');
  const [path, port, host] = args.filter((a) => a !== '--exit-with-stdin');
  if (!path) throw new Error('usage: dev-server-main <path> [port] [host] [--exit-with-stdin]');
  const dataPath = resolve(path);
  const chdb = await loadChdb();
  mkdirSync(dataPath, { recursive: true });
  // Keeps the engine bound to the path for the server's lifetime; requests open their own sessions.
  const anchor = new chdb.Session(dataPath);
  const http = await startHttpInterface(() => new chdb.Session(dataPath), {
    mode: 'readwrite',
    port: Number(port ?? 0),
    host: host ?? '127.0.0.1',
    version: chdb.version().libchdb,
    // As a server's defaults: big INSERT bodies, param_ values of a server-sized URI (1 MiB and more).
    maxBodyBytes: 512 * 1024 * 1024,
    maxHeaderBytes: 16 * 1024 * 1024,
  });
  process.stdout.write(`LISTENING ${http.url}\n`);
  const shutdown = () => {
    void http.close().finally(() => {
      anchor.close();
      process.exit(0);
    });
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  if (exitWithStdin) {
    process.stdin.resume();
    process.stdin.once('end', shutdown);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
