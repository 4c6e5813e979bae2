import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import { eventBatches, INSERT_SETTINGS, migrationStatements } from './chdb-common.js';
import { perSecond } from './stats.js';

/**
 * Raw limit of the sink's write side: the same rows inserted into the same embedded engine (chDB,
 * the sink's migrations) in batches of `batchRows`, (1) through @clickhouse/client over the chDB
 * connection, (2) through chDB's raw passthrough insert. Sequential batches, like one writer.
 */
export interface RawInsertArgs {
  count: number;
  batchRows: number;
  tables: 'full' | 'events';
  /** Also measure @clickhouse/client over the chDB connection (slower; a comparison, not the limit). */
  withClient: boolean;
}

export interface RawInsertResult {
  client: { rowsPerSec: number; ms: number } | null;
  raw: { rowsPerSec: number; ms: number };
  bytes: number;
  engineVersion: string;
}

export async function run(a: RawInsertArgs): Promise<RawInsertResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-raw-insert-'));
  const connection = createChdbConnection({ path: dir });
  const client = createClient({ connection } as Parameters<typeof createClient>[0]);
  try {
    const batches = eventBatches(a.count, a.batchRows);
    const bytes = batches.reduce((s, b) => s + b.length, 0);
    const databases = a.withClient ? ['bench_client', 'bench_raw'] : ['bench_raw'];
    for (const db of databases) for (const q of migrationStatements(db, a.tables)) await client.command({ query: q });

    let t0 = performance.now();
    for (const b of a.withClient ? batches : []) {
      // As the sink's writer does: exec of INSERT … FORMAT JSONEachRow with the raw lines as the body.
      const r = await client.exec({ query: 'INSERT INTO bench_client.opportunity_events FORMAT JSONEachRow', values: Readable.from([b]), clickhouse_settings: { ...INSERT_SETTINGS } });
      r.stream.resume();
      await new Promise<void>((resolve, reject) => r.stream.once('end', resolve).once('close', resolve).once('error', reject));
    }
    const clientMs = performance.now() - t0;

    const native = connection.chdb;
    t0 = performance.now();
    for (const b of batches) {
      await native.rawInsert({ table: 'bench_raw.opportunity_events', values: b, format: 'JSONEachRow', settings: { ...INSERT_SETTINGS } });
    }
    const rawMs = performance.now() - t0;

    for (const db of databases) {
      const rs = await client.query({ query: `SELECT count() AS n FROM ${db}.opportunity_events`, format: 'JSONEachRow' });
      const n = Number(((await rs.json()) as Array<{ n: string }>)[0]?.n);
      if (n !== a.count) throw new Error(`raw insert: ${db}.opportunity_events holds ${n} rows, expected ${a.count}`);
    }
    const vr = await client.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' });
    const engineVersion = String(((await vr.json()) as Array<{ v: string }>)[0]?.v);
    return { engineVersion, client: a.withClient ? { rowsPerSec: perSecond(a.count, clientMs), ms: clientMs } : null, raw: { rowsPerSec: perSecond(a.count, rawMs), ms: rawMs }, bytes };
  } finally {
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
