import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session } from 'chdb';
import { INSERT_SETTINGS, migrationStatements } from './chdb-common.js';
import { sleep } from './common.js';
import { perSecond } from './stats.js';

/**
 * ClickHouse's own Kafka table engine (librdkafka inside chDB) + a materialized view consuming the
 * filled topic from the same broker into a table of the same shape (the sink's migrations).
 * Timed from attaching the view until count() reaches `count`; fails if it over- or undershoots.
 */
export interface KafkaEngineArgs {
  brokers: string[];
  topic: string;
  count: number;
  groupId: string;
  tables: 'full' | 'events';
  consumers: number;
  /** kafka_max_block_size: rows per insert (the sink's SINK_BATCH_ROWS). */
  blockRows: number;
  /** kafka_flush_interval_ms (the sink's SINK_FLUSH_MS). */
  flushMs: number;
  timeoutMs: number;
}

export interface KafkaEngineResult {
  rowsPerSec: number;
  rowsPerSecWall: number;
  ms: number;
  wallMs: number;
}

export async function run(a: KafkaEngineArgs): Promise<KafkaEngineResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-kafka-engine-'));
  const db = new Session(dir);
  try {
    for (const q of migrationStatements('bench', a.tables)) await db.queryAsync(q);
    const cols = await rows<{ name: string; type: string }>(db, "SELECT name, type FROM system.columns WHERE database = 'bench' AND table = 'opportunity_events' ORDER BY position");
    const columns = cols.map((c) => `\`${c.name}\` ${c.type}`).join(',\n  ');
    if (!columns) throw new Error('could not read the columns of bench.opportunity_events');
    const formatSettings = Object.entries(INSERT_SETTINGS)
      .filter(([k]) => k !== 'input_format_skip_unknown_fields')
      .map(([k, v]) => `${k} = ${typeof v === 'string' ? `'${v}'` : v}`);
    await db.queryAsync(`CREATE TABLE bench.queue (\n  ${columns}\n) ENGINE = Kafka SETTINGS
      kafka_broker_list = '${a.brokers.join(',')}',
      kafka_topic_list = '${a.topic}',
      kafka_group_name = '${a.groupId}',
      kafka_format = 'JSONEachRow',
      kafka_num_consumers = ${a.consumers},
      kafka_max_block_size = ${a.blockRows},
      kafka_flush_interval_ms = ${a.flushMs},
      kafka_skip_broken_messages = 0,
      input_format_skip_unknown_fields = 1,
      ${formatSettings.join(',\n      ')}`);
    const t0 = performance.now();
    await db.queryAsync('CREATE MATERIALIZED VIEW bench.queue_mv TO bench.opportunity_events AS SELECT * FROM bench.queue');
    let first = 0;
    let firstCount = 0;
    let n = 0;
    const deadline = t0 + a.timeoutMs;
    while (performance.now() < deadline) {
      n = Number((await rows<{ n: string }>(db, 'SELECT count() AS n FROM bench.opportunity_events'))[0]?.n ?? 0);
      if (n > 0 && first === 0) {
        first = performance.now();
        firstCount = n;
      }
      if (n >= a.count) break;
      await sleep(100);
    }
    const last = performance.now();
    await sleep(1000);
    const row = (await rows<{ n: string; u: string }>(db, 'SELECT count() AS n, uniqExact(event_id) AS u FROM bench.opportunity_events'))[0]!;
    await db.queryAsync('DROP TABLE bench.queue_mv');
    await db.queryAsync('DROP TABLE bench.queue');
    if (Number(row.n) !== a.count || Number(row.u) !== a.count) throw new Error(`Kafka engine stored ${row.n} rows (${row.u} distinct), expected ${a.count}`);
    // The engine writes big blocks (kafka_max_block_size): when most rows appeared in one step, a
    // "first row → last row" rate means nothing, so only the wall-clock rate is reported.
    const steady = firstCount < a.count / 2 && last > first;
    return { rowsPerSec: steady ? perSecond(a.count - firstCount, last - first) : Number.NaN, rowsPerSecWall: perSecond(a.count, last - t0), ms: steady ? last - first : Number.NaN, wallMs: last - t0 };
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function rows<T>(db: Session, sql: string): Promise<T[]> {
  const text = (await db.queryAsync(sql, { format: 'JSONEachRow' })).text();
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as T);
}
