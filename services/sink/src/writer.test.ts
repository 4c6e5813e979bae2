import type { ClickHouseClient } from '@clickhouse/client';
import { ClickHouseError } from '@clickhouse/client';
import { describe, expect, it } from 'vitest';
import { chdbRawInsertTransport } from './clickhouse.js';
import { ClickHouseWriteError, ClickHouseWriter, classifyClickHouseError, normaliseCustom } from './writer.js';

interface Call {
  kind: 'query' | 'exec';
  query: string;
  params?: Record<string, unknown>;
  settings?: Record<string, unknown>;
  body?: string;
}

/**
 * A fake client: `existing` event_ids are "in the table" (under job_1, or the job named
 * `job:id`); `failExec` makes the insert throw.
 */
function fakeClient(existing: string[] = [], failExec?: unknown) {
  const calls: Call[] = [];
  const stored = () => existing.map((e) => (e.includes(':') ? { job: e.split(':')[0]!, id: e.split(':')[1]! } : { job: 'job_1', id: e }));
  const client = {
    async query(p: { query: string; query_params?: Record<string, unknown> }) {
      calls.push({ kind: 'query', query: p.query, ...(p.query_params ? { params: p.query_params } : {}) });
      const jobs = p.query_params?.['jobs'] as string[] | undefined;
      const ids = p.query_params?.['ids'] as string[] | undefined;
      const hits = stored().filter((r) => (!jobs || jobs.includes(r.job)) && (!ids || ids.includes(r.id)));
      if (p.query.startsWith('SELECT DISTINCT job_id')) return { json: async () => [...new Set(hits.map((r) => r.job))].map((job_id) => ({ job_id })) };
      return { json: async () => hits.map((r) => ({ event_id: r.id })) };
    },
    async exec(p: { query: string; values: AsyncIterable<Buffer>; clickhouse_settings: Record<string, unknown> }) {
      let body = '';
      for await (const chunk of p.values) body += chunk.toString();
      calls.push({ kind: 'exec', query: p.query, settings: p.clickhouse_settings, body });
      if (failExec) throw failExec;
      const { Readable } = await import('node:stream');
      return { stream: Readable.from([]) };
    },
  };
  return { client: client as unknown as ClickHouseClient, calls };
}

const line = (id: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ event_id: id, job_id: 'job_1', opportunity_id: `o_${id}`, custom: { a: 1 }, ...extra });
const row = (id: string, extra?: Record<string, unknown>) => ({ eventId: id, line: line(id, extra) });

describe('ClickHouseWriter', () => {
  it('sends the Kafka lines unchanged as JSONEachRow with the dedup token', async () => {
    const { client, calls } = fakeClient();
    const writer = new ClickHouseWriter(client, { database: 'clustr' });
    const outcome = await writer.insert({ table: 'opportunity_events', rows: [row('a'), row('b')], dedupToken: 'p0:10-11' });
    expect(outcome).toEqual({ inserted: 2, duplicates: 0 });
    const exec = calls.find((c) => c.kind === 'exec')!;
    expect(exec.query).toBe('INSERT INTO clustr.opportunity_events FORMAT JSONEachRow');
    expect(exec.body).toBe(`${line('a')}\n${line('b')}`);
    expect(exec.settings).toMatchObject({
      insert_deduplication_token: 'p0:10-11',
      deduplicate_blocks_in_dependent_materialized_views: 1,
      input_format_json_read_objects_as_strings: 1,
      date_time_input_format: 'best_effort',
      input_format_skip_unknown_fields: 1,
    });
  });

  it('asks which event_ids exist with bound parameters and drops them and in-batch repeats', async () => {
    const { client, calls } = fakeClient(['b']);
    const writer = new ClickHouseWriter(client, { database: 'clustr' });
    const outcome = await writer.insert({ table: 'jobs', rows: [row('a'), row('b'), row('a'), row('c')], dedupToken: 't' });
    expect(outcome).toEqual({ inserted: 2, duplicates: 2 });
    const [probe, check] = calls.filter((c) => c.kind === 'query');
    expect(probe).toMatchObject({ query: 'SELECT DISTINCT job_id FROM clustr.jobs WHERE job_id IN {jobs:Array(String)}', params: { jobs: ['job_1'] } });
    expect(check!.query).toBe(
      'SELECT event_id FROM clustr.jobs WHERE job_id IN {jobs:Array(String)} AND event_id IN {ids:Array(String)}',
    );
    expect(check!.params).toEqual({ jobs: ['job_1'], ids: ['a', 'b', 'c'] });
    const exec = calls.find((c) => c.kind === 'exec')!;
    expect(exec.body).toBe(`${line('a')}\n${line('c')}`);
    // A subset of the batch gets its own token, derived from the ids it carries.
    expect(exec.settings?.['insert_deduplication_token']).toMatch(/^t:[0-9a-f]{16}$/);
  });

  it('does not insert at all when every row is already stored', async () => {
    const { client, calls } = fakeClient(['a', 'b']);
    const writer = new ClickHouseWriter(client, { database: 'clustr' });
    expect(await writer.insert({ table: 'jobs', rows: [row('a'), row('b')], dedupToken: 't' })).toEqual({
      inserted: 0,
      duplicates: 2,
    });
    expect(calls.filter((c) => c.kind === 'exec')).toHaveLength(0);
  });

  it('skips the event_id check when no job of the batch has a row yet', async () => {
    const { client, calls } = fakeClient(['other:x']);
    const writer = new ClickHouseWriter(client, { database: 'clustr' });
    expect(await writer.insert({ table: 'opportunity_events', rows: [row('a'), row('b')], dedupToken: 't' })).toEqual({ inserted: 2, duplicates: 0 });
    const queries = calls.filter((c) => c.kind === 'query');
    expect(queries).toHaveLength(1);
    expect(queries[0]!.query).toMatch(/^SELECT DISTINCT job_id /);
  });

  it('checks event_ids only for the rows of jobs that already exist', async () => {
    const { client, calls } = fakeClient(['job_2:b']);
    const writer = new ClickHouseWriter(client, { database: 'clustr' });
    const rows = [row('a'), row('b', { job_id: 'job_2' }), row('c', { job_id: 'job_3' })];
    expect(await writer.insert({ table: 'opportunity_events', rows, dedupToken: 't' })).toEqual({ inserted: 2, duplicates: 1 });
    const check = calls.filter((c) => c.kind === 'query')[1]!;
    expect(check.params).toEqual({ jobs: ['job_2'], ids: ['b'] });
    expect(calls.find((c) => c.kind === 'exec')!.body).toBe(`${line('a')}\n${line('c', { job_id: 'job_3' })}`);
  });

  it('skips the job probe for a job it has already written (one query per batch of a long job)', async () => {
    const { client, calls } = fakeClient();
    const writer = new ClickHouseWriter(client, { database: 'clustr' });
    await writer.insert({ table: 'opportunity_events', rows: [row('a')], dedupToken: 't1' });
    calls.length = 0;
    expect(await writer.insert({ table: 'opportunity_events', rows: [row('b')], dedupToken: 't2' })).toEqual({ inserted: 1, duplicates: 0 });
    const queries = calls.filter((c) => c.kind === 'query');
    expect(queries).toHaveLength(1);
    expect(queries[0]).toMatchObject({ query: expect.stringMatching(/^SELECT event_id /) as unknown, params: { jobs: ['job_1'], ids: ['b'] } });
  });

  it('falls back to the event_id-only check when a line has no readable job_id', async () => {
    const { client, calls } = fakeClient(['b']);
    const writer = new ClickHouseWriter(client, { database: 'clustr' });
    const noJob = { eventId: 'b', line: JSON.stringify({ event_id: 'b', custom: null }) };
    expect(await writer.insert({ table: 'jobs', rows: [row('a'), noJob], dedupToken: 't' })).toEqual({ inserted: 1, duplicates: 1 });
    const queries = calls.filter((c) => c.kind === 'query');
    expect(queries).toHaveLength(1);
    expect(queries[0]).toMatchObject({ query: 'SELECT event_id FROM clustr.jobs WHERE event_id IN {ids:Array(String)}', params: { ids: ['a', 'b'] } });
  });

  it('classifies an insert failure', async () => {
    const parse = new ClickHouseError({ message: 'Cannot parse input', code: '27', type: 'CANNOT_PARSE_INPUT_ASSERTION_FAILED' });
    const writer = new ClickHouseWriter(fakeClient([], parse).client, { database: 'clustr' });
    const err = await writer.insert({ table: 'jobs', rows: [row('a')], dedupToken: 't' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClickHouseWriteError);
    expect(err).toMatchObject({ code: 'CH_BAD_DATA', retriable: false, clickhouseType: 'CANNOT_PARSE_INPUT_ASSERTION_FAILED' });
  });

  it('serialises concurrent batches that share event_ids (check-then-insert stays race-free)', async () => {
    const stored: string[] = [];
    const { client } = fakeClient(stored);
    const origExec = client.exec.bind(client);
    (client as unknown as { exec: typeof client.exec }).exec = (async (p: Parameters<typeof client.exec>[0]) => {
      await new Promise((r) => setTimeout(r, 20));
      const result = await origExec(p);
      stored.push('a', 'b');
      return result;
    }) as typeof client.exec;
    const writer = new ClickHouseWriter(client, { database: 'clustr' });
    const [first, second] = await Promise.all([
      writer.insert({ table: 'opportunity_events', rows: [row('a'), row('b')], dedupToken: 'x' }),
      writer.insert({ table: 'opportunity_events', rows: [row('b'), row('a')], dedupToken: 'y' }),
    ]);
    expect(first).toEqual({ inserted: 2, duplicates: 0 });
    expect(second).toEqual({ inserted: 0, duplicates: 2 });
  });

  it('inserts through an explicit transport with per-insert settings', async () => {
    const { client, calls } = fakeClient();
    const sent: Array<{ table: string; body: string; settings: Record<string, string | number> }> = [];
    const transport = { kind: 'chdb-raw' as const, insertJsonEachRow: async (table: string, body: Buffer, settings: Record<string, string | number>) => void sent.push({ table, body: body.toString(), settings }) };
    const writer = new ClickHouseWriter(client, { database: 'clustr', transport });
    expect(await writer.insert({ table: 'opportunity_events', rows: [row('a'), row('b')], dedupToken: 'tok' })).toEqual({ inserted: 2, duplicates: 0 });
    expect(calls.filter((c) => c.kind === 'exec')).toHaveLength(0);
    expect(sent).toEqual([
      {
        table: 'clustr.opportunity_events',
        body: `${line('a')}\n${line('b')}`,
        settings: expect.objectContaining({ insert_deduplication_token: 'tok', insert_deduplicate: 1, deduplicate_blocks_in_dependent_materialized_views: 1, input_format_skip_unknown_fields: 1 }) as unknown,
      },
    ]);
  });

  it('rejects an invalid database name', () => {
    expect(() => new ClickHouseWriter(fakeClient().client, { database: 'x; DROP' })).toThrow(/Invalid/);
  });
});

describe('normaliseCustom', () => {
  it('leaves objects and null untouched (fast path)', () => {
    for (const custom of [{ a: 1 }, null]) {
      const l = JSON.stringify({ event_id: 'e', custom });
      expect(normaliseCustom(l)).toBe(l);
    }
    const nested = JSON.stringify({ event_id: 'e', custom: { custom: 'x' } });
    expect(normaliseCustom(nested)).toBe(nested);
  });

  it('turns a scalar or array custom into its JSON text', () => {
    for (const custom of ['abc', 12.5, true, [1, { b: null }], '{"not":"an object"}']) {
      const out = JSON.parse(normaliseCustom(JSON.stringify({ event_id: 'e', custom }))) as { custom: string };
      expect(out.custom).toBe(JSON.stringify(custom));
    }
  });
});

describe('classifyClickHouseError', () => {
  const ch = (type: string, code = '0') => new ClickHouseError({ message: type, code, type });
  const net = (code: string) => Object.assign(new Error(`connect ${code}`), { code });

  it.each([
    [net('ECONNREFUSED'), 'CH_UNAVAILABLE', true],
    [net('ECONNRESET'), 'CH_UNAVAILABLE', true],
    [net('ETIMEDOUT'), 'CH_TIMEOUT', true],
    [new Error('Timeout error.'), 'CH_TIMEOUT', true],
    [new Error('socket hang up'), 'CH_UNAVAILABLE', true],
    [new Error('Unexpected response 503 Service Unavailable'), 'CH_UNAVAILABLE', true],
    [ch('TOO_MANY_PARTS', '252'), 'CH_OVERLOADED', true],
    [ch('MEMORY_LIMIT_EXCEEDED', '241'), 'CH_OVERLOADED', true],
    [ch('TIMEOUT_EXCEEDED', '159'), 'CH_TIMEOUT', true],
    [ch('CANNOT_PARSE_INPUT_ASSERTION_FAILED', '27'), 'CH_BAD_DATA', false],
    [ch('CANNOT_PARSE_DATETIME', '41'), 'CH_BAD_DATA', false],
    [ch('TYPE_MISMATCH', '53'), 'CH_BAD_DATA', false],
    [ch('INCORRECT_DATA', '117'), 'CH_BAD_DATA', false],
    [ch('UNKNOWN_TABLE', '60'), 'CH_SCHEMA', false],
    [ch('SOMETHING_NEW', '999'), 'CH_UNKNOWN', true],
  ] as const)('%s → %s', (err, code, retriable) => {
    const classified = classifyClickHouseError(err);
    expect(classified).toBeInstanceOf(ClickHouseWriteError);
    expect(classified.code).toBe(code);
    expect(classified.retriable).toBe(retriable);
    expect(classified.cause).toBe(err);
  });

  it('looks through a cause chain', () => {
    const wrapped = new Error('insert failed', { cause: ch('CANNOT_PARSE_DATE', '38') });
    expect(classifyClickHouseError(wrapped).code).toBe('CH_BAD_DATA');
  });
});

describe('chdbRawInsertTransport', () => {
  it('passes the settings with the insert (its own SETTINGS clause), not as session state', async () => {
    const seen: unknown[] = [];
    const t = chdbRawInsertTransport({ rawInsert: async (p) => void seen.push(p) });
    await t.insertJsonEachRow('clustr.jobs', Buffer.from('{}'), { insert_deduplication_token: 'x' });
    expect(seen).toEqual([{ table: 'clustr.jobs', values: Buffer.from('{}'), format: 'JSONEachRow', settings: { insert_deduplication_token: 'x' } }]);
  });

  it('reshapes an engine error so a poison row classifies as bad data and a closed engine as retriable', async () => {
    const parseFail = Object.assign(new Error('Code: 27. DB::Exception: Cannot parse input: expected \'"\' before: \'x\': (at row 1)\n: While executing ParallelParsingBlockInputFormat. (CANNOT_PARSE_INPUT_ASSERTION_FAILED) (version 26.7.2.1)'), { code: 'CHDB_INSERT', clickhouseCode: 27 });
    const writer = (err: Error) =>
      new ClickHouseWriter(fakeClient().client, { database: 'clustr', transport: chdbRawInsertTransport({ rawInsert: () => Promise.reject(err) }) });
    const bad = await writer(parseFail).insert({ table: 'jobs', rows: [row('a')], dedupToken: 't' }).catch((e: unknown) => e);
    expect(bad).toMatchObject({ code: 'CH_BAD_DATA', retriable: false, clickhouseType: 'CANNOT_PARSE_INPUT_ASSERTION_FAILED' });
    const closed = await writer(Object.assign(new Error('Session is closed'), { code: 'CHDB_CLOSED' }))
      .insert({ table: 'jobs', rows: [row('a')], dedupToken: 't' })
      .catch((e: unknown) => e);
    expect(closed).toMatchObject({ code: 'CH_UNAVAILABLE', retriable: true });
  });
});
