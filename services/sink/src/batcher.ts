/**
 * One table's row buffer, pure (the caller passes the clock). Rows carry their Kafka position so a
 * drained batch knows which offsets it covers. A buffer is due when it holds `maxRows` rows or its
 * oldest row has waited `flushMs`, whichever comes first.
 */

export interface BufferedRow {
  topic: string;
  partition: number;
  offset: number;
  eventId: string;
  /** The event JSON exactly as it came from Kafka. */
  line: string;
}

/** A contiguous run of offsets of one partition present in a batch. */
export interface OffsetRun {
  topic: string;
  partition: number;
  first: number;
  last: number;
}

export interface DrainedBatch<T extends string = string> {
  table: T;
  rows: BufferedRow[];
}

export type FlushTrigger = 'size' | 'time';

export interface BatcherOptions {
  maxRows: number;
  flushMs: number;
}

export class Batcher<T extends string = string> {
  private rows: BufferedRow[] = [];
  private oldestAt: number | null = null;

  constructor(
    readonly table: T,
    private readonly options: BatcherOptions,
  ) {
    if (options.maxRows < 1 || options.flushMs < 1) throw new RangeError('maxRows and flushMs must be positive');
  }

  get size(): number {
    return this.rows.length;
  }

  get full(): boolean {
    return this.rows.length >= this.options.maxRows;
  }

  add(row: BufferedRow, now: number): void {
    if (this.rows.length === 0) this.oldestAt = now;
    this.rows.push(row);
  }

  /** Why the buffer should be flushed now, or null. */
  due(now: number): FlushTrigger | null {
    if (this.rows.length === 0) return null;
    if (this.rows.length >= this.options.maxRows) return 'size';
    if (this.oldestAt !== null && now - this.oldestAt >= this.options.flushMs) return 'time';
    return null;
  }

  /** Milliseconds until the time trigger fires (0 when due), or null when empty. */
  msUntilDue(now: number): number | null {
    if (this.oldestAt === null || this.rows.length === 0) return null;
    return Math.max(0, this.oldestAt + this.options.flushMs - now);
  }

  /** Takes up to `maxRows` rows (oldest first). The rest stay, their age restarting at `now`. */
  drain(now: number): DrainedBatch<T> | null {
    if (this.rows.length === 0) return null;
    const taken = this.rows.length <= this.options.maxRows ? this.rows : this.rows.slice(0, this.options.maxRows);
    this.rows = taken === this.rows ? [] : this.rows.slice(this.options.maxRows);
    this.oldestAt = this.rows.length > 0 ? now : null;
    return { table: this.table, rows: taken };
  }

  /** Removes the rows of a revoked partition; returns how many. */
  dropPartition(topic: string, partition: number): number {
    const before = this.rows.length;
    this.rows = this.rows.filter((r) => r.topic !== topic || r.partition !== partition);
    if (this.rows.length === 0) this.oldestAt = null;
    return before - this.rows.length;
  }
}

/** The contiguous offset runs of a set of rows, sorted by topic, partition, offset. */
export function offsetRuns(rows: readonly Pick<BufferedRow, 'topic' | 'partition' | 'offset'>[]): OffsetRun[] {
  const sorted = [...rows].sort((a, b) =>
    a.topic !== b.topic ? (a.topic < b.topic ? -1 : 1) : a.partition !== b.partition ? a.partition - b.partition : a.offset - b.offset,
  );
  const runs: OffsetRun[] = [];
  for (const r of sorted) {
    const last = runs[runs.length - 1];
    if (last && last.topic === r.topic && last.partition === r.partition && r.offset <= last.last + 1) {
      last.last = Math.max(last.last, r.offset);
    } else {
      runs.push({ topic: r.topic, partition: r.partition, first: r.offset, last: r.offset });
    }
  }
  return runs;
}
