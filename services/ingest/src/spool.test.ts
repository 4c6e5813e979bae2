import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { IngestError } from './errors.js';
import {
  decodeSpoolFile,
  encodeSpoolFile,
  parseSpoolFileName,
  QUARANTINE_DIR,
  Spool,
  SpoolCorruptError,
  SpoolIndex,
  spoolFileName,
  type SpooledWebhook,
} from './spool.js';
import { tempDir } from './testing/helpers.js';

const logger = pino({ level: 'silent' });
const at = (ms: number) => new Date(Date.UTC(2026, 11, 4, 15, 56, 42) + ms);
const webhook = (i: number, body = `{"job_id":"job_${i}"}`): SpooledWebhook => ({
  requestId: `req-${i}`,
  receivedAt: at(i),
  contentType: 'application/json',
  body: Buffer.from(body),
});

describe('spool file names', () => {
  it('encode the sequence (zero-padded) and the arrival time, and parse back', () => {
    const name = spoolFileName(42, new Date('2026-12-04T15:56:42.123Z'));
    expect(name).toBe('0000000000000042-20261204T155642123Z.webhook');
    expect(parseSpoolFileName(name)).toEqual({ seq: 42, receivedAt: new Date('2026-12-04T15:56:42.123Z') });
  });
  it('ignore anything else', () => {
    for (const name of ['.tmp-0000000000000042-20261204T155642123Z.webhook', 'rejected', 'x.webhook', '42-20261204T155642123Z.webhook']) {
      expect(parseSpoolFileName(name)).toBeUndefined();
    }
  });
  it('sort by name in sequence order, whatever the times', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 1e15 }), { minLength: 2 }), fc.array(fc.integer({ min: 0, max: 4e12 })), (seqs, times) => {
        const names = seqs.map((seq, i) => spoolFileName(seq, new Date(times[i] ?? 0)));
        const byName = [...names].sort();
        expect(byName.map((n) => parseSpoolFileName(n)!.seq)).toEqual([...seqs].sort((a, b) => a - b));
      }),
    );
  });
});

describe('spool file format', () => {
  it('round-trips request id, received-at, content type and the exact bytes', () => {
    const original = webhook(1, '\uFEFF{"job_id":"é"}\n');
    expect(decodeSpoolFile(encodeSpoolFile(original))).toEqual(original);
  });
  it('detects truncation and alteration', () => {
    const data = encodeSpoolFile(webhook(1));
    expect(() => decodeSpoolFile(data.subarray(0, data.length - 1))).toThrow(SpoolCorruptError);
    const altered = Buffer.from(data);
    altered[altered.length - 2] = 0x41;
    expect(() => decodeSpoolFile(altered)).toThrow(/checksum/);
    expect(() => decodeSpoolFile(Buffer.from('garbage'))).toThrow(SpoolCorruptError);
  });
});

describe('SpoolIndex', () => {
  const entry = (seq: number, bytes = 10, committed = true) => ({ seq, name: `n${seq}`, receivedAt: at(seq), bytes, committed });

  it('keeps entries in sequence order and accounts bytes', () => {
    const index = new SpoolIndex(100);
    for (const seq of [3, 1, 2]) index.add(entry(seq, 20));
    expect(index.head()?.seq).toBe(1);
    expect(index.stats()).toEqual({ files: 3, bytes: 60, oldestReceivedAt: at(1) });
    expect(index.hasRoom(40)).toBe(true);
    expect(index.hasRoom(41)).toBe(false);
    index.remove(1);
    expect(index.head()?.seq).toBe(2);
    expect(index.stats().bytes).toBe(40);
    expect(index.maxSeq()).toBe(3);
  });
  it('never lets a later entry overtake one still being written', () => {
    const index = new SpoolIndex(100);
    index.add(entry(1, 10, false));
    index.add(entry(2));
    expect(index.head()).toBeUndefined();
    expect(index.stats().files).toBe(2);
  });
  it('accounting stays exact under any sequence of adds and removes', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 1, max: 50 }))), (ops) => {
        const index = new SpoolIndex(Number.MAX_SAFE_INTEGER);
        const model = new Map<number, number>();
        for (const [add, seq, bytes] of ops) {
          if (add && !model.has(seq)) {
            index.add(entry(seq, bytes));
            model.set(seq, bytes);
          } else if (!add) {
            index.remove(seq);
            model.delete(seq);
          }
        }
        const stats = index.stats();
        expect(stats.files).toBe(model.size);
        expect(stats.bytes).toBe([...model.values()].reduce((a, b) => a + b, 0));
        expect(index.head()?.seq).toBe(model.size ? Math.min(...model.keys()) : undefined);
      }),
    );
  });
});

describe('Spool on disk', () => {
  it('appends durably, reopens in order, and removes', async () => {
    const dir = tempDir();
    const spool = await Spool.open({ dir, maxBytes: 1024 * 1024, logger });
    expect(spool.isEmpty()).toBe(true);
    let appended = 0;
    spool.onAppend(() => appended++);
    await Promise.all([1, 2, 3].map((i) => spool.append(webhook(i))));
    expect(appended).toBe(3);
    const files = readdirSync(dir).sort();
    expect(files).toHaveLength(3);
    expect(files.every((f) => parseSpoolFileName(f))).toBe(true);
    expect(statSync(join(dir, files[0]!)).mode & 0o777).toBe(0o600);

    // A crash mid-write leaves a .tmp- file: deleted on open, never published.
    writeFileSync(join(dir, `.tmp-${spoolFileName(99, at(0))}`), 'half');
    writeFileSync(join(dir, 'README.txt'), 'not ours');
    const reopened = await Spool.open({ dir, maxBytes: 1024 * 1024, logger });
    expect(reopened.stats().files).toBe(3);
    expect(reopened.stats().oldestReceivedAt).toEqual(at(1));
    expect(readdirSync(dir).some((f) => f.startsWith('.tmp-'))).toBe(false);
    const order: string[] = [];
    for (let head = reopened.head(); head; head = reopened.head()) {
      order.push((await reopened.read(head)).requestId);
      await reopened.remove(head);
    }
    expect(order).toEqual(['req-1', 'req-2', 'req-3']);
    expect(reopened.isEmpty()).toBe(true);
    expect(readdirSync(dir)).toEqual(['README.txt']);

    // New sequence numbers continue after those already on disk.
    const next = await reopened.append(webhook(4));
    expect(next.seq).toBe(3);
  });

  it('refuses with INGEST_ERR_SPOOL_FULL past the bound, and takes more once drained', async () => {
    const one = encodeSpoolFile(webhook(1)).length;
    const spool = await Spool.open({ dir: tempDir(), maxBytes: one * 2, logger });
    const first = await spool.append(webhook(1));
    await spool.append(webhook(2));
    const error = await spool.append(webhook(3)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IngestError);
    expect((error as IngestError).code).toBe('INGEST_ERR_SPOOL_FULL');
    expect(spool.stats()).toMatchObject({ files: 2, bytes: one * 2 });
    await spool.remove(first);
    await expect(spool.append(webhook(3))).resolves.toMatchObject({ committed: true });
  });

  it('answers INGEST_ERR_SPOOL_UNAVAILABLE when the directory is gone', async () => {
    const dir = tempDir();
    const spool = await Spool.open({ dir, maxBytes: 1024 * 1024, logger });
    const { rmSync } = await import('node:fs');
    rmSync(dir, { recursive: true });
    await expect(spool.append(webhook(1))).rejects.toMatchObject({ code: 'INGEST_ERR_SPOOL_UNAVAILABLE' });
    expect(spool.isEmpty()).toBe(true);
  });

  it('moves a corrupt file aside to rejected/', async () => {
    const dir = tempDir();
    const spool = await Spool.open({ dir, maxBytes: 1024 * 1024, logger });
    const entry = await spool.append(webhook(1));
    writeFileSync(join(dir, entry.name), 'corrupted');
    await expect(spool.read(entry)).rejects.toThrow(SpoolCorruptError);
    const moved = await spool.quarantine(entry);
    expect(moved).toBe(join(dir, QUARANTINE_DIR, entry.name));
    expect(readFileSync(moved, 'utf8')).toBe('corrupted');
    expect(existsSync(join(dir, entry.name))).toBe(false);
    expect(spool.isEmpty()).toBe(true);
  });
});
