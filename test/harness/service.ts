import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A service run as its own process (`node services/<name>/dist/main.js`), as in production. */
export class ServiceProcess {
  readonly logs: string[] = [];
  private child: ChildProcess | undefined;
  private exitPromise: Promise<number | null> | undefined;

  constructor(
    readonly name: 'ingest' | 'sink',
    private readonly env: Record<string, string>,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): this {
    const entry = join(repoRoot, 'services', this.name, 'dist', 'main.js');
    const child = spawn(process.execPath, [entry], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'info', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream! }).on('line', (line) => this.logs.push(line));
    this.exitPromise = new Promise((resolveExit) => child.once('exit', (code) => resolveExit(code)));
    this.child = child;
    return this;
  }

  /** Waits until `url` answers 2xx, failing early (with the logs) if the process exits. */
  async waitUntilReady(url: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`${this.name} exited during start-up:\n${this.tail()}`);
      try {
        if ((await fetch(url)).ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${this.name} not ready at ${url} after ${timeoutMs} ms:\n${this.tail()}`);
  }

  /** Graceful stop (SIGTERM); resolves with the exit code. */
  async stop(timeoutMs = 30_000): Promise<number | null> {
    if (!this.child || !this.running) return this.child?.exitCode ?? null;
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), timeoutMs);
    this.child.kill('SIGTERM');
    const code = await this.exitPromise!;
    clearTimeout(timer);
    return code;
  }

  /** Crash (SIGKILL): no flush, no commit. */
  async kill(): Promise<void> {
    if (!this.child || !this.running) return;
    this.child.kill('SIGKILL');
    await this.exitPromise;
  }

  tail(lines = 40): string {
    return this.logs.slice(-lines).join('\n');
  }
}
