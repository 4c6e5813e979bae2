import type pino from 'pino';

/**
 * chDB allocates with jemalloc, which keeps freed pages ("dirty") for reuse instead of giving them
 * back: under steady inserts the sink's resident memory creeps up by hundreds of MB although
 * ClickHouse's own MemoryTracking stays at tens of MB. A ClickHouse server purges jemalloc from its
 * background memory worker; embedded, nobody does, so the sink runs `SYSTEM JEMALLOC PURGE` itself
 * every `intervalMs` (measured here: 268 → 55 MB anonymous RSS after a batch of inserts).
 */
export interface MemoryPurger {
  /** Stops the timer and waits for a purge in progress. Idempotent. */
  stop(): Promise<void>;
}

export interface MemoryPurgeOptions {
  /** Runs the purge statement (the writer's chDB session). */
  run: (statement: string) => Promise<unknown>;
  intervalMs: number;
  logger?: pino.Logger;
}

export const JEMALLOC_PURGE = 'SYSTEM JEMALLOC PURGE';

export function startMemoryPurge({ run, intervalMs, logger }: MemoryPurgeOptions): MemoryPurger {
  let current: Promise<void> | undefined;
  let warned = false;
  const tick = () => {
    if (current) return; // the previous purge is still running: skip, never pile up
    current = run(JEMALLOC_PURGE)
      .then(
        () => undefined,
        (err: unknown) => {
          // Harmless (memory is only held longer): warn once, keep trying.
          if (!warned) logger?.warn({ err }, 'jemalloc purge failed; resident memory may grow until it succeeds');
          warned = true;
        },
      )
      .finally(() => {
        current = undefined;
      });
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  let stopped: Promise<void> | undefined;
  return {
    stop: () =>
      (stopped ??= (async () => {
        clearInterval(timer);
        await current;
      })()),
  };
}
