import type { ClickHouseClient } from '@clickhouse/client';
import { ClickHouseError } from '@clickhouse/client';
import { describe, expect, it } from 'vitest';
import { ClickHouseWriteError, ClickHouseWriter, classifyClickHouseError, normaliseCustom } from './writer.js';

interface Call {
  kind: 'query' | 'exec';
  query: string;
  params?: Record<string, unknown>;
  settings?: Record<string, unknown>;
  body?: string;
}

/** A fake client: `existing` event_ids are "in the table"; `failExec` makes the insert throw. */
function fakeClient(existing: string[] = [], failExec?: unknown) {
  const calls: Call[] = [];
  const client = {
    async query(p: { query: string; query_params?: Record<string, unknown> }) {
      calls.push({ kind: 'query', query: p.query, ...(p.query_params ? { params: p.query_params } : {}) });
      const ids = (p.query_params?.['ids'] as string[]) ?? [];
      return { json: async () => ids.filter((id) => existing.includes(id)).map((event_id) => ({ event_id })) };
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
    const check = calls.find((c) => c.kind === 'query')!;
    expect(check.query).toBe(
      'SELECT event_id FROM clustr.jobs WHERE job_id IN {jobs:Array(String)} AND event_id IN {ids:Array(String)}',
    );
    expect(check.params).toEqual({ jobs: ['job_1'], ids: ['a', 'b', 'c'] });
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
