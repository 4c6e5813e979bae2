import { afterEach, describe, expect, it, vi } from 'vitest';
import { JEMALLOC_PURGE, startMemoryPurge } from './memory-purge.js';

describe('startMemoryPurge', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs SYSTEM JEMALLOC PURGE every interval until stopped', async () => {
    vi.useFakeTimers();
    const run = vi.fn(async (_statement: string) => undefined);
    const purger = startMemoryPurge({ run, intervalMs: 1_000 });
    await vi.advanceTimersByTimeAsync(3_500);
    expect(run).toHaveBeenCalledTimes(3);
    expect(run).toHaveBeenCalledWith(JEMALLOC_PURGE);
    await purger.stop();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(run).toHaveBeenCalledTimes(3);
  });

  it('never overlaps purges, and stop() waits for the one in progress', async () => {
    vi.useFakeTimers();
    let finish!: () => void;
    const run = vi.fn(() => new Promise<void>((resolve) => (finish = resolve)));
    const purger = startMemoryPurge({ run, intervalMs: 100 });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(run).toHaveBeenCalledTimes(1);
    let stopped = false;
    const stopping = purger.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    finish();
    await stopping;
    expect(stopped).toBe(true);
  });

  it('keeps going after a failed purge and warns once', async () => {
    vi.useFakeTimers();
    const warn = vi.fn();
    const run = vi.fn(async () => {
      throw new Error('not supported');
    });
    const purger = startMemoryPurge({ run, intervalMs: 100, logger: { warn } as never });
    await vi.advanceTimersByTimeAsync(350);
    expect(run).toHaveBeenCalledTimes(3);
    expect(warn).toHaveBeenCalledTimes(1);
    await purger.stop();
  });
});
