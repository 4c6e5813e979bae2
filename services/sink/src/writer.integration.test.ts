/**
 * Migrations + writer + views against a real ClickHouse: TEST_CLICKHOUSE picks server, container
 * or embedded chDB (see src/testing/clickhouse.ts).
 */
import { readFileSync } from 'node:fs';
import { ENGAGEMENT_TYPES, flattenWebhook, makeWebhook } from '@clustr-pipeline/schema';
import type { ClustrWebhook, JobEvent, OpportunityEvent } from '@clustr-pipeline/schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from './migrate.js';
import { startTestClickHouse } from './testing/clickhouse.js';
import type { TestClickHouse } from './testing/clickhouse.js';
import { ClickHouseWriter } from './writer.js';
import type { SinkTable } from './writer.js';

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../../../packages/schema/fixtures/${name}.json`, import.meta.url), 'utf8')) as ClustrWebhook;
const RECEIVED_AT = new Date('2026-12-04T15:00:00.123Z');

let ch: TestClickHouse;
let db: string;
let writer: ClickHouseWriter;

async function rows<T = Record<string, unknown>>(query: string, params?: Record<string, unknown>): Promise<T[]> {
  const result = await ch.handle.client.query({
    query,
    format: 'JSONEachRow',
    ...(params ? { query_params: params } : {}),
    clickhouse_settings: { date_time_output_format: 'iso', output_format_json_quote_64bit_integers: 0 },
  });
  return result.json<T>();
}
const count = async (table: string, where = '1') =>
  Number((await rows<{ c: number }>(`SELECT count() AS c FROM ${db}.${table} WHERE ${where}`))[0]!.c);

function insert(table: SinkTable, events: Array<{ event_id: string }>, dedupToken: string) {
  return writer.insert({ table, rows: events.map((e) => ({ eventId: e.event_id, line: JSON.stringify(e) })), dedupToken });
}

const TIMESTAMP_FIELDS = new Set(['webhook_timestamp', 'received_at', 'engagement_last_date', 'date']);

/** Column-by-column equality with the input event: timestamps by instant, custom as JSON. */
function expectSameEvent(stored: Record<string, unknown>, input: Record<string, unknown>) {
  expect(Object.keys(stored).sort()).toEqual(Object.keys(input).sort());
  for (const [field, value] of Object.entries(input)) {
    const got = stored[field];
    if (field === 'custom') {
      expect(got === null ? null : JSON.parse(got as string), field).toEqual(value);
    } else if (field === 'engagement_history') {
      const entries = got as Array<Record<string, unknown>>;
      expect(entries).toHaveLength((value as unknown[]).length);
      (value as Array<Record<string, unknown>>).forEach((entry, i) => expectSameEvent(entries[i]!, entry));
    } else if (TIMESTAMP_FIELDS.has(field) && value !== null) {
      expect(Date.parse(got as string), field).toBe(Date.parse(value as string));
    } else {
      expect(got, field).toEqual(value);
    }
  }
}

beforeAll(async () => {
  ch = await startTestClickHouse({ env: process.env, database: 'clustr_it' });
  db = ch.database;
  writer = new ClickHouseWriter(ch.handle.client, { database: db });
}, 180_000);
afterAll(async () => {
  await ch?.close();
});

describe(`ClickHouse sink schema and writer`, () => {
  it('applies the migrations once and is idempotent', async () => {
    const first = await migrate(ch.handle.client, db);
    expect(first.applied.length).toBeGreaterThanOrEqual(5);
    expect(first.skipped).toEqual([]);
    const second = await migrate(ch.handle.client, db);
    expect(second).toEqual({ applied: [], skipped: first.applied });
    const tables = (await rows<{ name: string }>(`SELECT name FROM system.tables WHERE database = {db:String}`, { db })).map((r) => r.name);
    for (const t of ['opportunity_events', 'jobs', 'engagements', 'engagements_mv', 'opportunities', 'opportunities_mv',
      'v_opportunities', 'v_target_company_summary', 'v_client_summary', 'v_engagement_daily', 'schema_migrations']) {
      expect(tables, t).toContain(t);
    }
  });

  it('refuses to run when an applied migration changed', async () => {
    const { loadMigrations } = await import('./migrate.js');
    const changed = (await loadMigrations()).map((m, i) => (i === 0 ? { ...m, checksum: 'f'.repeat(64) } : m));
    await expect(migrate(ch.handle.client, db, undefined, changed)).rejects.toThrow(/never edit an applied migration/);
  });

  it(`stores the full-history fixture with every field equal to the input (mode: ${process.env['TEST_CLICKHOUSE'] ?? 'auto'})`, async () => {
    const { job, opportunities } = flattenWebhook(fixture('completed-full-history'), RECEIVED_AT);
    expect(await insert('opportunity_events', opportunities, 'full-1')).toEqual({ inserted: 1, duplicates: 0 });
    expect(await insert('jobs', [job], 'full-job-1')).toEqual({ inserted: 1, duplicates: 0 });

    const event = opportunities[0]!;
    const [stored] = await rows(`SELECT * FROM ${db}.opportunity_events WHERE event_id = {id:String}`, { id: event.event_id });
    expectSameEvent(stored!, event as unknown as Record<string, unknown>);

    const [storedJob] = await rows(`SELECT * FROM ${db}.jobs WHERE event_id = {id:String}`, { id: job.event_id });
    expectSameEvent(storedJob!, job as unknown as Record<string, unknown>);
  });

  it('explodes engagement_history into engagements inside ClickHouse', async () => {
    const { opportunities } = flattenWebhook(fixture('completed-full-history'), RECEIVED_AT);
    const event = opportunities[0]!;
    const engagements = await rows<Record<string, unknown>>(
      `SELECT * FROM ${db}.engagements FINAL WHERE event_id = {id:String} ORDER BY idx`,
      { id: event.event_id },
    );
    expect(engagements).toHaveLength(2);
    event.engagement_history.forEach((entry, idx) => {
      const { event_id, opportunity_id, job_id, client_record_id, idx: i, received_at, ...rest } = engagements[idx]!;
      expect({ event_id, opportunity_id, job_id, client_record_id, i }).toEqual({
        event_id: event.event_id,
        opportunity_id: event.opportunity_id,
        job_id: event.job_id,
        client_record_id: event.client_record_id,
        i: idx,
      });
      expect(Date.parse(received_at as string)).toBe(Date.parse(event.received_at));
      expectSameEvent(rest, entry as unknown as Record<string, unknown>);
    });
  });

  it('stores the failed fixture as a jobs row with its error fields', async () => {
    const { job, opportunities } = flattenWebhook(fixture('failed'), RECEIVED_AT);
    expect(opportunities).toHaveLength(0);
    await insert('jobs', [job], 'failed-1');
    const [stored] = await rows<JobEvent>(`SELECT * FROM ${db}.jobs WHERE job_id = {job:String}`, { job: job.job_id });
    expect(stored).toMatchObject({
      status: 'failed',
      error_code: 'PROCESSING_ERROR',
      error_message: 'Failed to process contacts',
      error_details: 'Additional error context',
      result_count: 0,
      opportunity_count: 0,
    });
    expectSameEvent(stored as unknown as Record<string, unknown>, job as unknown as Record<string, unknown>);
  });

  it('keeps one row per event_id when the same events arrive twice (same token, another token, replay)', async () => {
    const { job, opportunities } = flattenWebhook(makeWebhook({ opportunities: 30, jobId: 'job_dup', engagements: 1 }), RECEIVED_AT);
    expect(await insert('opportunity_events', opportunities, 'dup-a')).toEqual({ inserted: 30, duplicates: 0 });
    expect(await insert('opportunity_events', opportunities, 'dup-a')).toEqual({ inserted: 0, duplicates: 30 });
    expect(await insert('opportunity_events', opportunities, 'dup-b')).toEqual({ inserted: 0, duplicates: 30 });
    // A replayed webhook: same event_ids, received later, partly overlapping a new batch.
    const replay = flattenWebhook(makeWebhook({ opportunities: 40, jobId: 'job_dup', engagements: 1 }), new Date('2026-12-05T00:00:00Z'));
    expect(await insert('opportunity_events', replay.opportunities, 'dup-c')).toEqual({ inserted: 10, duplicates: 30 });
    await insert('jobs', [job], 'dup-job');
    await insert('jobs', [job], 'dup-job-2');

    expect(await count('opportunity_events', "job_id = 'job_dup'")).toBe(40);
    expect(await count('engagements', "job_id = 'job_dup'")).toBe(40);
    expect(await count('jobs', "job_id = 'job_dup'")).toBe(1);
  });

  it('a retried identical insert is a no-op through the dedup token even without the event_id check', async () => {
    const { opportunities } = flattenWebhook(makeWebhook({ opportunities: 5, jobId: 'job_token' }), RECEIVED_AT);
    const body = opportunities.map((o) => JSON.stringify(o)).join('\n');
    const { RAW_JSON_INPUT_SETTINGS } = await import('./writer.js');
    const { Readable } = await import('node:stream');
    for (let i = 0; i < 2; i++) {
      const r = await ch.handle.client.exec({
        query: `INSERT INTO ${db}.opportunity_events FORMAT JSONEachRow`,
        values: Readable.from([Buffer.from(body)]),
        clickhouse_settings: { ...RAW_JSON_INPUT_SETTINGS, insert_deduplication_token: 'raw-token', deduplicate_blocks_in_dependent_materialized_views: 1 },
      });
      r.stream.resume();
    }
    expect(await count('opportunity_events', "job_id = 'job_token'")).toBe(5);
    expect(await count('opportunities', "job_id = 'job_token'")).toBe(5);
  });

  it('round-trips custom: object, string, number, boolean, array and null', async () => {
    const base = flattenWebhook(fixture('completed-full-history'), RECEIVED_AT).opportunities[0]!;
    const customs: unknown[] = [{ nested: { deep: [1, 'x', null] }, 'a"b': 'q' }, 'abc', 12.5, true, [1, { b: null }], null, '{"looks":"like json"}'];
    const events = customs.map((custom, i) => ({ ...base, event_id: i.toString(16).padStart(32, 'c'), job_id: 'job_custom', custom }));
    await insert('opportunity_events', events, 'custom-1');
    const stored = await rows<{ event_id: string; custom: string | null }>(
      `SELECT event_id, custom FROM ${db}.opportunity_events WHERE job_id = 'job_custom' ORDER BY event_id`,
    );
    expect(stored).toHaveLength(customs.length);
    for (const [i, custom] of customs.entries()) {
      const got = stored.find((r) => r.event_id === events[i]!.event_id)!;
      if (custom === null) expect(got.custom).toBeNull();
      else expect(JSON.parse(got.custom!)).toEqual(custom);
    }
    expect(stored.find((r) => r.event_id === events[1]!.event_id)!.custom).toBe('"abc"');
  });

  it('accepts a date or a date-time with offset, and skips an unknown (future additive) field', async () => {
    const base = flattenWebhook(fixture('completed-full-history'), RECEIVED_AT).opportunities[0]!;
    const event = {
      ...base,
      event_id: 'd'.repeat(32),
      job_id: 'job_dates',
      webhook_timestamp: '2025-03-15T16:30:00+02:00',
      engagement_last_date: '2025-03-15T10:11:12.345Z',
      future_field: { added: 'in v1.1' },
    };
    await insert('opportunity_events', [event], 'dates-1');
    const [stored] = await rows<Record<string, string>>(
      `SELECT webhook_timestamp, engagement_last_date FROM ${db}.opportunity_events WHERE event_id = {id:String}`,
      { id: event.event_id },
    );
    expect(stored).toEqual({ webhook_timestamp: '2025-03-15T14:30:00.000Z', engagement_last_date: '2025-03-15T10:11:12.345Z' });
  });

  it('rejects a poison row as not retriable bad data', async () => {
    const base = flattenWebhook(fixture('completed-full-history'), RECEIVED_AT).opportunities[0]!;
    const bad = { ...base, event_id: 'e'.repeat(32), job_id: 'job_bad', total_overlap_months: 'many' };
    const err = await insert('opportunity_events', [bad as unknown as OpportunityEvent], 'bad-1').catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ClickHouseWriteError', retriable: false, code: 'CH_BAD_DATA' });
    expect(await count('opportunity_events', "job_id = 'job_bad'")).toBe(0);
  });

  it('analytics views return the expected numbers for a generated dataset', async () => {
    // A database of its own, so the other tests' rows don't mix into the aggregates.
    const vdb = `${db}_views`;
    await migrate(ch.handle.client, vdb);
    const vwriter = new ClickHouseWriter(ch.handle.client, { database: vdb });
    const { opportunities } = flattenWebhook(makeWebhook({ opportunities: 200, engagements: 2, jobId: 'job_views' }), RECEIVED_AT);
    const lines = opportunities.map((o) => ({ eventId: o.event_id, line: JSON.stringify(o) }));
    await vwriter.insert({ table: 'opportunity_events', rows: lines, dedupToken: 'views-1' });
    // Sent again by a replay: nothing may count twice.
    await vwriter.insert({ table: 'opportunity_events', rows: lines, dedupToken: 'views-2' });
    const view = async <T,>(name: string) => rows<T>(`SELECT * FROM ${vdb}.${name}`);

    const targets = opportunities.filter((o) => o.is_target_company);
    const byCompany = new Map<string, OpportunityEvent[]>();
    for (const o of targets) byCompany.set(o.company_name!, [...(byCompany.get(o.company_name!) ?? []), o]);
    const companies = await view<Record<string, unknown>>('v_target_company_summary');
    expect(companies).toHaveLength(byCompany.size);
    for (const c of companies) {
      const opps = byCompany.get(c['company_name'] as string)!;
      const best = opps.reduce((a, b) => (b.confidence_score! > a.confidence_score! ? b : a));
      expect(Number(c['opportunities'])).toBe(opps.length);
      expect(Number(c['distinct_clients'])).toBe(new Set(opps.map((o) => o.client_record_id)).size);
      expect(c['avg_confidence']).toBeCloseTo(opps.reduce((s, o) => s + o.confidence_score!, 0) / opps.length, 3);
      expect(c['max_confidence']).toBeCloseTo(best.confidence_score!, 3);
      expect(c['best_prospect_name']).toBe(best.prospect_name);
      expect(c['best_client_name']).toBe(best.client_name);
    }

    const clients = await view<Record<string, unknown>>('v_client_summary');
    expect(clients).toHaveLength(20);
    for (const c of clients) {
      const opps = opportunities.filter((o) => o.client_record_id === c['client_key']);
      expect(Number(c['opportunities'])).toBe(opps.length);
      expect(Number(c['target_company_opportunities'])).toBe(opps.filter((o) => o.is_target_company).length);
      expect(c['avg_confidence']).toBeCloseTo(opps.reduce((s, o) => s + o.confidence_score!, 0) / opps.length, 3);
      expect(c['client_owner_email']).toBe(opps[0]!.client_owner_email);
    }

    const counts = new Map<string, number>();
    const opps = new Map<string, Set<string>>();
    for (const o of opportunities) {
      for (const e of o.engagement_history) {
        const key = `${e.date}|${e.type}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
        opps.set(key, (opps.get(key) ?? new Set<string>()).add(o.opportunity_id));
      }
    }
    const daily = await rows<{ day: string; type: string; engagements: number; opportunities: number }>(
      `SELECT toString(day) AS day, type, engagements, opportunities FROM ${vdb}.v_engagement_daily`,
    );
    expect(daily.length).toBe(counts.size);
    for (const d of daily) {
      const key = `${d.day}|${d.type}`;
      expect(ENGAGEMENT_TYPES).toContain(d.type);
      expect(Number(d.engagements), key).toBe(counts.get(key));
      expect(Number(d.opportunities), key).toBe(opps.get(key)!.size);
    }
    if (ch.mode !== 'embedded') await ch.handle.client.command({ query: `DROP DATABASE IF EXISTS ${vdb}` });
  });

  it('inserts a 10k-row batch and reports the throughput', async () => {
    const { opportunities } = flattenWebhook(makeWebhook({ opportunities: 10_000, engagements: 2, jobId: 'job_bulk' }), RECEIVED_AT);
    const batch = opportunities.map((o) => ({ eventId: o.event_id, line: JSON.stringify(o) }));
    const started = performance.now();
    const outcome = await writer.insert({ table: 'opportunity_events', rows: batch, dedupToken: 'bulk-1' });
    const ms = performance.now() - started;
    expect(outcome).toEqual({ inserted: 10_000, duplicates: 0 });
    const again = performance.now();
    expect(await writer.insert({ table: 'opportunity_events', rows: batch, dedupToken: 'bulk-2' })).toEqual({ inserted: 0, duplicates: 10_000 });
    const dupMs = performance.now() - again;
    console.log(`[${ch.mode}] 10k-row insert: ${ms.toFixed(0)} ms (${Math.round(10_000 / (ms / 1000))} rows/s); all-duplicate batch: ${dupMs.toFixed(0)} ms`);
    expect(await count('opportunity_events', "job_id = 'job_bulk'")).toBe(10_000);
    expect(await count('engagements', "job_id = 'job_bulk'")).toBe(20_000);
  });
});
