import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { IngestError } from './errors.js';

/**
 * A durable, ordered, size-bounded directory of webhooks that Kafka did not acknowledge in time.
 *
 * One file per webhook, named `<seq:16 digits>-<receivedAt, compact ISO>.webhook` so that a plain
 * name sort is arrival order. The content is one JSON header line (request id, received-at,
 * content type, body length and SHA-256) followed by the raw decompressed body, byte for byte.
 * A file is written as `.tmp-…`, fsync'd, renamed into place and the directory fsync'd before
 * `append` resolves: a file with a final name is always complete, a crash leaves at most a
 * `.tmp-…` file that `open` deletes.
 *
 * NOTE: one process per spool directory. Two replicas sharing a directory would reuse sequence
 * numbers and drain each other's files.
 */

export const SPOOL_FILE_SUFFIX = '.webhook';
const TMP_PREFIX = '.tmp-';
const SEQ_DIGITS = 16;
const FORMAT_VERSION = 1;
/** Where unreadable or no longer valid entries are moved, so that they never block the queue. */
export const QUARANTINE_DIR = 'rejected';

/** A webhook as the spool keeps it: enough to re-publish it with the same event ids and received_at. */
export interface SpooledWebhook {
  requestId: string;
  receivedAt: Date;
  contentType: string;
  /** The raw decompressed request body, already validated. */
  body: Buffer;
}

/** One spool file, as the in-memory index knows it. */
export interface SpoolEntry {
  seq: number;
  name: string;
  receivedAt: Date;
  /** Size of the file on disk (header + body). */
  bytes: number;
  /** False while the file is still being written (not yet renamed into place). */
  committed: boolean;
}

export interface SpoolStats {
  files: number;
  bytes: number;
  /** receivedAt of the oldest entry; undefined when the spool is empty. */
  oldestReceivedAt: Date | undefined;
}

const compactIso = (date: Date) => date.toISOString().replace(/[-:.]/g, '');

/** `0000000000000042-20261204T155642123Z.webhook`: sorts by sequence, shows the arrival time. */
export function spoolFileName(seq: number, receivedAt: Date): string {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`invalid spool sequence ${seq}`);
  return `${String(seq).padStart(SEQ_DIGITS, '0')}-${compactIso(receivedAt)}${SPOOL_FILE_SUFFIX}`;
}

const NAME = /^(\d{16})-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z\.webhook$/;

/** The sequence and arrival time encoded in a spool file name; undefined for any other file. */
export function parseSpoolFileName(name: string): { seq: number; receivedAt: Date } | undefined {
  const m = NAME.exec(name);
  if (!m) return undefined;
  const [, seq, y, mo, d, h, mi, s, ms] = m;
  const receivedAt = new Date(`${y}-${mo}-${d}T${h}:${mi}:${s}.${ms}Z`);
  const n = Number(seq);
  if (Number.isNaN(receivedAt.getTime()) || !Number.isSafeInteger(n)) return undefined;
  return { seq: n, receivedAt };
}

interface SpoolHeader {
  v: number;
  request_id: string;
  received_at: string;
  content_type: string;
  body_bytes: number;
  sha256: string;
}

export class SpoolCorruptError extends Error {
  override name = 'SpoolCorruptError';
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Header line + raw body. */
export function encodeSpoolFile(webhook: SpooledWebhook): Buffer {
  const header: SpoolHeader = {
    v: FORMAT_VERSION,
    request_id: webhook.requestId,
    received_at: webhook.receivedAt.toISOString(),
    content_type: webhook.contentType,
    body_bytes: webhook.body.length,
    sha256: sha256(webhook.body),
  };
  return Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`, 'utf8'), webhook.body]);
}

/** Inverse of encodeSpoolFile; throws SpoolCorruptError for a truncated or altered file. */
export function decodeSpoolFile(data: Buffer): SpooledWebhook {
  const newline = data.indexOf(0x0a);
  if (newline === -1) throw new SpoolCorruptError('no header line');
  let header: SpoolHeader;
  try {
    header = JSON.parse(data.subarray(0, newline).toString('utf8')) as SpoolHeader;
  } catch {
    throw new SpoolCorruptError('header is not JSON');
  }
  if (header.v !== FORMAT_VERSION) throw new SpoolCorruptError(`unknown spool format version ${String(header.v)}`);
  const body = data.subarray(newline + 1);
  if (body.length !== header.body_bytes) throw new SpoolCorruptError(`body is ${body.length} bytes, header says ${header.body_bytes}`);
  if (sha256(body) !== header.sha256) throw new SpoolCorruptError('body checksum mismatch');
  const receivedAt = new Date(header.received_at);
  if (Number.isNaN(receivedAt.getTime())) throw new SpoolCorruptError('invalid received_at');
  return { requestId: header.request_id, receivedAt, contentType: header.content_type, body };
}

/**
 * The in-memory view of the spool: entries in arrival order and the byte accounting. Pure (no
 * I/O) so that ordering and bounds are unit-tested directly.
 */
export class SpoolIndex {
  readonly #entries: SpoolEntry[] = [];
  #bytes = 0;
  readonly maxBytes: number;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** Whether `bytes` more fit under the bound. A single entry larger than the bound never fits. */
  hasRoom(bytes: number): boolean {
    return this.#bytes + bytes <= this.maxBytes;
  }

  /** Inserts in sequence order (entries found at start-up arrive in any order). */
  add(entry: SpoolEntry): void {
    let i = this.#entries.length;
    while (i > 0 && this.#entries[i - 1]!.seq > entry.seq) i--;
    this.#entries.splice(i, 0, entry);
    this.#bytes += entry.bytes;
  }

  remove(seq: number): SpoolEntry | undefined {
    const i = this.#entries.findIndex((e) => e.seq === seq);
    if (i === -1) return undefined;
    const [entry] = this.#entries.splice(i, 1);
    this.#bytes -= entry!.bytes;
    return entry;
  }

  /** The oldest entry if it is committed. While the oldest is still being written, nothing may overtake it. */
  head(): SpoolEntry | undefined {
    const first = this.#entries[0];
    return first?.committed ? first : undefined;
  }

  /** The highest sequence number present, or -1. */
  maxSeq(): number {
    return this.#entries.at(-1)?.seq ?? -1;
  }

  get size(): number {
    return this.#entries.length;
  }

  stats(): SpoolStats {
    return { files: this.#entries.length, bytes: this.#bytes, oldestReceivedAt: this.#entries[0]?.receivedAt };
  }
}

export interface SpoolOptions {
  dir: string;
  maxBytes: number;
  logger: Logger;
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export class Spool {
  readonly dir: string;
  readonly #index: SpoolIndex;
  readonly #logger: Logger;
  readonly #listeners = new Set<() => void>();
  #nextSeq = 0;

  private constructor(options: SpoolOptions) {
    this.dir = options.dir;
    this.#index = new SpoolIndex(options.maxBytes);
    this.#logger = options.logger.child({ component: 'spool' });
  }

  /** Creates the directory if needed, deletes half-written `.tmp-` files and indexes the rest. */
  static async open(options: SpoolOptions): Promise<Spool> {
    const spool = new Spool(options);
    // Owner-only: spool files hold customer data. (An existing directory keeps its mode.)
    await mkdir(options.dir, { recursive: true, mode: 0o700 });
    let removed = 0;
    for (const name of await readdir(options.dir)) {
      if (name.startsWith(TMP_PREFIX)) {
        await unlink(join(options.dir, name)).catch(() => undefined);
        removed++;
        continue;
      }
      const parsed = parseSpoolFileName(name);
      if (!parsed) continue;
      const { size } = await stat(join(options.dir, name));
      spool.#index.add({ ...parsed, name, bytes: size, committed: true });
    }
    if (removed > 0) await fsyncDir(options.dir);
    spool.#nextSeq = spool.#index.maxSeq() + 1;
    const stats = spool.stats();
    if (stats.files > 0) spool.#logger.warn({ files: stats.files, bytes: stats.bytes, dir: options.dir }, 'spool holds webhooks from an earlier run; they will be published first');
    if (removed > 0) spool.#logger.warn({ removed }, 'deleted half-written spool files (never acknowledged to the sender)');
    return spool;
  }

  stats(): SpoolStats {
    return this.#index.stats();
  }

  /** True when nothing is spooled, not even a file being written. */
  isEmpty(): boolean {
    return this.#index.size === 0;
  }

  /** The next entry to publish, in arrival order (undefined when empty or the oldest is still being written). */
  head(): SpoolEntry | undefined {
    return this.#index.head();
  }

  /** `listener` is called after each successful append (the drainer wakes up on it). */
  onAppend(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Writes the webhook durably; resolves only once it survives a crash. Rejects with
   * INGEST_ERR_SPOOL_FULL past the size bound, INGEST_ERR_SPOOL_UNAVAILABLE on an I/O error.
   */
  async append(webhook: SpooledWebhook): Promise<SpoolEntry> {
    const data = encodeSpoolFile(webhook);
    if (!this.#index.hasRoom(data.length)) {
      throw new IngestError('INGEST_ERR_SPOOL_FULL', { message: `Kafka is unavailable and the local spool is full (${this.#index.maxBytes} bytes), retry later` });
    }
    // The sequence is taken synchronously, at arrival; the entry holds its place while written.
    const seq = this.#nextSeq++;
    const name = spoolFileName(seq, webhook.receivedAt);
    const entry: SpoolEntry = { seq, name, receivedAt: webhook.receivedAt, bytes: data.length, committed: false };
    this.#index.add(entry);
    const tmp = join(this.dir, `${TMP_PREFIX}${name}`);
    try {
      const handle = await open(tmp, 'wx', 0o600);
      try {
        await handle.writeFile(data);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, join(this.dir, name));
      await fsyncDir(this.dir);
    } catch (error) {
      this.#index.remove(seq);
      await unlink(tmp).catch(() => undefined);
      this.#logger.error({ err: error, file: name }, 'could not write to the spool');
      throw new IngestError('INGEST_ERR_SPOOL_UNAVAILABLE', { cause: error });
    }
    entry.committed = true;
    for (const listener of this.#listeners) listener();
    return entry;
  }

  /** Reads and verifies an entry; throws SpoolCorruptError for a damaged file. */
  async read(entry: SpoolEntry): Promise<SpooledWebhook> {
    return decodeSpoolFile(await readFile(join(this.dir, entry.name)));
  }

  /** Deletes an entry once all of its events were acknowledged. */
  async remove(entry: SpoolEntry): Promise<void> {
    await unlink(join(this.dir, entry.name)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    await fsyncDir(this.dir);
    this.#index.remove(entry.seq);
  }

  /** Moves an entry that can never be published to `rejected/`, out of the queue but not lost. */
  async quarantine(entry: SpoolEntry): Promise<string> {
    const target = join(this.dir, QUARANTINE_DIR);
    await mkdir(target, { recursive: true, mode: 0o700 });
    const path = join(target, entry.name);
    await rename(join(this.dir, entry.name), path);
    await fsyncDir(this.dir);
    this.#index.remove(entry.seq);
    return path;
  }
}
