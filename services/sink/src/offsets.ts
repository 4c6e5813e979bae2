/**
 * Offset bookkeeping, pure (no I/O, no clock). Per topic-partition we remember the offsets we have
 * received (in order) and which of them are done (inserted into ClickHouse or acknowledged by the
 * DLQ). The committable offset is (highest received offset such that every received offset up to it
 * is done) + 1 — Kafka's "next offset to read" convention.
 *
 * NOTE: "received" rather than "every integer": Kafka offsets have legitimate holes (compaction,
 * transaction markers), and the consumer only ever hands us offsets in increasing order.
 * NOTE: offsets are JS numbers. Exact up to 2^53, i.e. centuries at a million messages a second.
 */

export interface TopicPartitionOffset {
  topic: string;
  partition: number;
  /** The next offset to read, as Kafka commits it. */
  offset: number;
}

export const tpKey = (topic: string, partition: number): string => `${topic}:${partition}`;

/**
 * The reference definition, used by the property tests: received offsets in increasing order and
 * the set of done ones → offset to commit, or null when not even the first received one is done.
 */
export function committableOffset(received: readonly number[], done: ReadonlySet<number>): number | null {
  let last: number | null = null;
  for (const offset of received) {
    if (!done.has(offset)) break;
    last = offset;
  }
  return last === null ? null : last + 1;
}

class PartitionState {
  /** Received, not yet folded into `safe`; increasing. */
  readonly pending: number[] = [];
  head = 0;
  readonly done = new Set<number>();
  highestReceived = -1;
  /** Everything below this is done. null until the first received offset is done. */
  safe: number | null = null;
  /** Last offset we successfully committed. */
  committed: number | null = null;

  constructor(
    readonly topic: string,
    readonly partition: number,
  ) {}

  advance(): void {
    while (this.head < this.pending.length) {
      const offset = this.pending[this.head]!;
      if (!this.done.has(offset)) break;
      this.done.delete(offset);
      this.safe = offset + 1;
      this.head++;
    }
    // Compact now and then so the array does not grow forever.
    if (this.head > 1024 && this.head * 2 > this.pending.length) {
      this.pending.splice(0, this.head);
      this.head = 0;
    }
  }

  get outstanding(): number {
    return this.pending.length - this.head;
  }
}

export class OffsetTracker {
  private readonly partitions = new Map<string, PartitionState>();

  private state(topic: string, partition: number): PartitionState {
    const key = tpKey(topic, partition);
    let s = this.partitions.get(key);
    if (!s) {
      s = new PartitionState(topic, partition);
      this.partitions.set(key, s);
    }
    return s;
  }

  /** True when `offset` has been received before (a redelivery after a rebalance): skip it. */
  seen(topic: string, partition: number, offset: number): boolean {
    const s = this.partitions.get(tpKey(topic, partition));
    return s !== undefined && offset <= s.highestReceived;
  }

  /**
   * Registers a received offset as pending. Returns false (and changes nothing) for an offset at or
   * below the highest one received, which the caller must then skip.
   */
  receive(topic: string, partition: number, offset: number): boolean {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`bad offset ${offset}`);
    const s = this.state(topic, partition);
    if (offset <= s.highestReceived) return false;
    s.highestReceived = offset;
    s.pending.push(offset);
    return true;
  }

  /** Marks a received offset durable. Unknown offsets (e.g. of a revoked partition) are ignored. */
  markDone(topic: string, partition: number, offset: number): void {
    const s = this.partitions.get(tpKey(topic, partition));
    if (!s || offset > s.highestReceived || (s.safe !== null && offset < s.safe)) return;
    s.done.add(offset);
    s.advance();
  }

  /** Offsets that may be committed now and have not been committed yet. */
  committable(filter?: (topic: string, partition: number) => boolean): TopicPartitionOffset[] {
    const out: TopicPartitionOffset[] = [];
    for (const s of this.partitions.values()) {
      if (s.safe === null || (s.committed !== null && s.safe <= s.committed)) continue;
      if (filter && !filter(s.topic, s.partition)) continue;
      out.push({ topic: s.topic, partition: s.partition, offset: s.safe });
    }
    return out;
  }

  markCommitted(offsets: readonly TopicPartitionOffset[]): void {
    for (const o of offsets) {
      const s = this.partitions.get(tpKey(o.topic, o.partition));
      if (s && (s.committed === null || o.offset > s.committed)) s.committed = o.offset;
    }
  }

  committed(topic: string, partition: number): number | null {
    return this.partitions.get(tpKey(topic, partition))?.committed ?? null;
  }

  /** Received offsets not yet done, over all partitions. */
  outstanding(): number {
    let n = 0;
    for (const s of this.partitions.values()) n += s.outstanding;
    return n;
  }

  partitionKeys(): Array<{ topic: string; partition: number }> {
    return [...this.partitions.values()].map((s) => ({ topic: s.topic, partition: s.partition }));
  }

  /** Drops a revoked partition: its next owner re-reads from the committed offset. */
  forget(topic: string, partition: number): void {
    this.partitions.delete(tpKey(topic, partition));
  }
}
