import type { ProducerRecord } from 'kafkajs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MessageBatch } from './messages.js';
import { chunk, MessageProductionError, sendInChunks } from './publisher.js';

const batch = (topic: string, n: number): MessageBatch => ({
  topic,
  messages: Array.from({ length: n }, (_, i) => ({ key: `${topic}-${i}`, value: String(i), headers: {} })),
});

/** A fake producer.send that records calls and tracks concurrency. */
function fakeSend(options: { delayMs?: number; failOnCall?: number; hangOnCall?: number } = {}) {
  const calls: ProducerRecord[] = [];
  let inFlight = 0;
  let maxSeen = 0;
  const send = async (record: ProducerRecord) => {
    const call = calls.push(record);
    inFlight++;
    maxSeen = Math.max(maxSeen, inFlight);
    try {
      if (call === options.hangOnCall) await new Promise(() => {});
      await new Promise((r) => setTimeout(r, options.delayMs ?? 1));
      if (call === options.failOnCall) throw Object.assign(new Error('broker said no'), { retriable: true });
    } finally {
      inFlight--;
    }
  };
  return { send, calls, maxInFlight: () => maxSeen };
}

const opts = { chunkSize: 10, maxInFlight: 3, timeoutMs: 1_000, compression: 'none' as const };

describe('chunk', () => {
  const keys = (chunks: Array<Array<{ key: string }>>) => chunks.map((c) => c.map((m) => m.key));
  it('splits into chunks of at most maxCount messages, keeping order', () => {
    expect(keys(chunk(batch('t', 5).messages, 2))).toEqual([['t-0', 't-1'], ['t-2', 't-3'], ['t-4']]);
    expect(chunk([], 2)).toEqual([]);
  });
  it('also bounds the bytes per chunk; an oversized message travels alone', () => {
    const big = (key: string, size: number) => ({ key, value: 'x'.repeat(size), headers: { h: 'v' } });
    const chunks = chunk([big('a', 400), big('b', 400), big('c', 400), big('d', 5_000), big('e', 10)], 100, 1_000);
    expect(keys(chunks)).toEqual([['a', 'b'], ['c'], ['d'], ['e']]);
  });
  it('never loses or reorders messages (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(3_000), { maxLength: 200 }), fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 20_000 }), (sizes, maxCount, maxBytes) => {
        const messages = sizes.map((n, i) => ({ key: String(i), value: 'x'.repeat(n), headers: {} }));
        const chunks = chunk(messages, maxCount, maxBytes);
        expect(chunks.flat()).toEqual(messages);
        for (const c of chunks) {
          expect(c.length).toBeGreaterThan(0);
          expect(c.length).toBeLessThanOrEqual(maxCount);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('sendInChunks', () => {
  it('sends bounded chunks with acks=-1, at most maxInFlight at once, and the job batch last', async () => {
    const fake = fakeSend({ delayMs: 5 });
    const acked: Array<[string, number]> = [];
    await sendInChunks(fake.send, [batch('opps', 95), batch('jobs', 1)], { ...opts, onAcked: (t, n) => acked.push([t, n]) });
    expect(fake.calls.map((c) => [c.topic, c.messages.length])).toEqual([...Array.from({ length: 9 }, () => ['opps', 10]), ['opps', 5], ['jobs', 1]]);
    expect(fake.calls.every((c) => c.acks === -1)).toBe(true);
    expect(fake.maxInFlight()).toBe(3);
    expect(acked.at(-1)).toEqual(['jobs', 1]);
    expect(acked.reduce((n, [, c]) => n + c, 0)).toBe(96);
    const keys = fake.calls.flatMap((c) => c.messages.map((m) => m.key));
    expect(keys.slice(0, 95)).toEqual(Array.from({ length: 95 }, (_, i) => `opps-${i}`));
  });

  it('stops on the first failure and never sends the job event', async () => {
    const fake = fakeSend({ failOnCall: 2 });
    await expect(sendInChunks(fake.send, [batch('opps', 100), batch('jobs', 1)], { ...opts, maxInFlight: 1 })).rejects.toThrow('broker said no');
    expect(fake.calls).toHaveLength(2);
    expect(fake.calls.some((c) => c.topic === 'jobs')).toBe(false);
  });

  it('times out a chunk that is never acknowledged', async () => {
    const fake = fakeSend({ hangOnCall: 1 });
    const started = Date.now();
    await expect(sendInChunks(fake.send, [batch('opps', 5), batch('jobs', 1)], { ...opts, timeoutMs: 100 })).rejects.toThrow(/within 100 ms/);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(fake.calls.some((c) => c.topic === 'jobs')).toBe(false);
  });

  it('pulls lazily produced messages one chunk per free slot, and fails like a send when producing them throws', async () => {
    let produced = 0;
    const lazy = (n: number, failAt = Number.POSITIVE_INFINITY) => ({
      topic: 'opps',
      messages: {
        *[Symbol.iterator]() {
          for (let i = 0; i < n; i++) {
            if (i === failAt) throw new Error('cannot serialise');
            produced++;
            yield { key: `opps-${i}`, value: String(i), headers: {} };
          }
        },
      },
    });
    const fake = fakeSend({ delayMs: 5 });
    const seenAtSend: number[] = [];
    const send = async (record: ProducerRecord) => {
      seenAtSend.push(produced);
      await fake.send(record);
    };
    await sendInChunks(send, [lazy(95), batch('jobs', 1)], opts);
    expect(fake.calls.map((c) => c.messages.length)).toEqual([...Array.from({ length: 9 }, () => 10), 5, 1]);
    // The first request left when at most maxInFlight chunks (+ one look-ahead message) existed.
    expect(seenAtSend[0]).toBeLessThanOrEqual(11);
    expect(seenAtSend.slice(0, 3)).toEqual([11, 21, 31]);
    const failing = fakeSend();
    await expect(sendInChunks(failing.send, [lazy(50, 25), batch('jobs', 1)], opts)).rejects.toThrow(MessageProductionError);
    await expect(sendInChunks(failing.send, [lazy(50, 25)], opts)).rejects.toThrow('cannot serialise');
    expect(failing.calls.some((c) => c.topic === 'jobs')).toBe(false);
  });

  it('passes gzip compression through', async () => {
    const fake = fakeSend();
    await sendInChunks(fake.send, [batch('jobs', 1)], { ...opts, compression: 'gzip' });
    expect(fake.calls[0]!.compression).toBe(1);
  });
});
