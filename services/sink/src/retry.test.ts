import { describe, expect, it } from 'vitest';
import { AbortedError, backoffCeiling, backoffDelay, retryForever } from './retry.js';

const policy = { initialMs: 200, maxMs: 30_000 };

describe('backoff schedule', () => {
  it('doubles from initialMs up to maxMs', () => {
    expect([0, 1, 2, 3, 7, 8, 100, 5000].map((a) => backoffCeiling(a, policy))).toEqual([200, 400, 800, 1600, 25_600, 30_000, 30_000, 30_000]);
  });
  it('uses full jitter: uniform in [0, ceiling)', () => {
    expect(backoffDelay(3, policy, () => 0)).toBe(0);
    expect(backoffDelay(3, policy, () => 0.5)).toBe(800);
    expect(backoffDelay(3, policy, () => 0.999999)).toBe(1599);
    expect(() => backoffCeiling(-1, policy)).toThrow(RangeError);
  });
});

describe('retryForever', () => {
  it('retries retriable errors with the schedule and stops at a non-retriable one', async () => {
    const waits: number[] = [];
    let calls = 0;
    const result = await retryForever(
      async () => {
        if (++calls < 4) throw new Error('transient');
        return 'ok';
      },
      { policy, isRetriable: () => true, random: () => 0.5, sleep: async (ms) => void waits.push(ms) },
    );
    expect(result).toBe('ok');
    expect(waits).toEqual([100, 200, 400]);
    await expect(retryForever(async () => Promise.reject(new Error('fatal')), { policy, isRetriable: () => false })).rejects.toThrow('fatal');
  });
  it('stops when aborted', async () => {
    const ac = new AbortController();
    const run = retryForever(async () => Promise.reject(new Error('down')), { policy: { initialMs: 1_000, maxMs: 1_000 }, isRetriable: () => true, random: () => 0.9, signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    await expect(run).rejects.toBeInstanceOf(AbortedError);
  });
});
