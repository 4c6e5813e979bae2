/**
 * The embedded read-only ClickHouse HTTP interface, against real chDB (own process, own temp dir).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openClickHouse } from '../clickhouse.js';
import type { ClickHouseHandle } from '../clickhouse.js';

let dir: string;
let handle: ClickHouseHandle;
let base: string;
let http: ClickHouseClient;

const get = (query: Record<string, string>, path = '/') => fetch(`${base}${path}?${new URLSearchParams(query)}`);
const post = (body: string, query: Record<string, string> = {}) =>
  fetch(`${base}/?${new URLSearchParams(query)}`, { method: 'POST', body });

async function expectRefused(response: Response, code: number | RegExp = 164) {
  const text = await response.text();
  expect(response.status, text).not.toBe(200);
  if (typeof code === 'number') {
    expect(response.headers.get('x-clickhouse-exception-code')).toBe(String(code));
    expect(text).toMatch(new RegExp(`^Code: ${code}\\. DB::Exception: `));
  } else {
    expect(text).toMatch(code);
  }
  return text;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sink-chdb-http-'));
  handle = await openClickHouse({ database: 'clustr', embeddedPath: dir, httpPort: 0 });
  expect(handle.mode).toBe('embedded');
  expect(handle.httpUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  base = handle.httpUrl!;
  // Written through the sink's own (read-write) client: the same process, the same data.
  await handle.client.command({ query: 'CREATE DATABASE IF NOT EXISTS clustr' });
  await handle.client.command({
    query: 'CREATE TABLE clustr.t (id UInt32, name String, at DateTime64(3, \'UTC\')) ENGINE = MergeTree ORDER BY id',
  });
  await handle.client.insert({
    table: 'clustr.t',
    values: [
      { id: 1, name: 'alpha', at: '2025-03-15 14:30:00.000' },
      { id: 2, name: "o'brien", at: '2025-03-16 00:00:00.000' },
      { id: 3, name: 'gamma', at: '2025-03-17 00:00:00.000' },
    ],
    format: 'JSONEachRow',
  });
  http = createClient({ url: base });
});

afterAll(async () => {
  await http?.close();
  await handle?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('embedded ClickHouse HTTP interface', () => {
  it('answers /ping and a bare GET / with Ok.', async () => {
    for (const path of ['/ping', '/']) {
      const res = await fetch(`${base}${path}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('Ok.\n');
    }
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });

  it('runs ?query= over GET with the ClickHouse headers (TabSeparated by default)', async () => {
    const res = await get({ query: 'SELECT id, name FROM clustr.t ORDER BY id' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("1\talpha\n2\to\\'brien\n3\tgamma\n");
    expect(res.headers.get('x-clickhouse-format')).toBe('TabSeparated');
    expect(res.headers.get('x-clickhouse-query-id')).toBeTruthy();
    expect(JSON.parse(res.headers.get('x-clickhouse-summary')!)).toMatchObject({ read_rows: '3' });
    expect(res.headers.get('content-type')).toMatch(/^text\/tab-separated-values/);
  });

  it('takes the query from the POST body, after the query parameter', async () => {
    expect(await (await post('SELECT count() FROM clustr.t')).text()).toBe('3\n');
    expect(await (await post('WHERE id > 1', { query: 'SELECT count() FROM clustr.t' })).text()).toBe('2\n');
  });

  it('honours default_format, a FORMAT clause, database and param_ values', async () => {
    const json = await get({ query: 'SELECT id FROM t ORDER BY id', database: 'clustr', default_format: 'JSONEachRow' });
    expect(json.headers.get('x-clickhouse-format')).toBe('JSONEachRow');
    expect(await json.text()).toBe('{"id":1}\n{"id":2}\n{"id":3}\n');
    const csv = await get({ query: 'SELECT id, name FROM t WHERE id = 1 FORMAT CSV' });
    expect(csv.headers.get('x-clickhouse-format')).toBe('CSV');
    expect(await csv.text()).toBe('1,"alpha"\n');
    // The handle's database is the default one.
    expect(await (await get({ query: 'SELECT currentDatabase()' })).text()).toBe('clustr\n');
    const bound = await get({
      query: 'SELECT name FROM t WHERE name = {name:String} OR id IN {ids:Array(UInt32)} ORDER BY id',
      param_name: "o'brien",
      param_ids: '[3]',
    });
    expect(await bound.text()).toBe("o\\'brien\ngamma\n");
  });

  it('returns ClickHouse errors: Code: N body, exception header, non-200 status', async () => {
    const unknown = await get({ query: 'SELECT * FROM clustr.missing' });
    expect(unknown.status).toBe(404);
    await expectRefused(unknown, 60);
    const syntax = await get({ query: 'SELEC 1' });
    expect(syntax.status).toBe(400);
    await expectRefused(syntax, 62);
    const empty = await post('');
    expect(empty.status).toBe(400);
  });

  describe('is read-only', () => {
    it.each([
      ['INSERT', "INSERT INTO clustr.t VALUES (9, 'x', now())"],
      ['INSERT … FORMAT with data', 'INSERT INTO clustr.t FORMAT JSONEachRow {"id":9}'],
      ['CREATE', 'CREATE TABLE clustr.x (a UInt8) ENGINE = Memory'],
      ['DROP', 'DROP TABLE clustr.t'],
      ['TRUNCATE', 'TRUNCATE TABLE clustr.t'],
      ['ALTER', 'ALTER TABLE clustr.t DELETE WHERE 1'],
      ['OPTIMIZE', 'OPTIMIZE TABLE clustr.t FINAL'],
      ['SYSTEM', 'SYSTEM DROP MARK CACHE'],
      ['KILL', 'KILL QUERY WHERE 1'],
      ['SET', 'SET readonly = 0'],
      ['SETTINGS readonly=0', 'SELECT 1 SETTINGS readonly = 0'],
      ['multi-statement', 'SELECT 1; DROP TABLE clustr.t'],
      ['multi-statement in a comment trick', 'SELECT 1 /* ; */; DROP TABLE clustr.t'],
      ['file()', "SELECT * FROM file('/etc/passwd', 'LineAsString')"],
      ['url()', "SELECT * FROM url('http://127.0.0.1:1/x', 'LineAsString')"],
      ['s3()', "SELECT * FROM s3('http://127.0.0.1:1/bucket/x.csv', 'CSV')"],
      ['INSERT INTO FUNCTION', "INSERT INTO FUNCTION file('/tmp/x.csv', 'CSV') SELECT 1"],
      ['SELECT … INTO OUTFILE', "SELECT 1 INTO OUTFILE '/tmp/sink-outfile.csv'"],
    ])('refuses %s', async (_name, sql) => {
      const res = await post(sql);
      const text = await res.text();
      expect(res.status, text).not.toBe(200);
      expect(res.headers.get('x-clickhouse-exception-code')).not.toBeNull();
      expect(text).toMatch(/^Code: \d+\. DB::Exception: /);
      expect(await (await get({ query: 'SELECT count() FROM clustr.t' })).text()).toBe('3\n');
      expect(existsSync('/tmp/sink-outfile.csv')).toBe(false);
    });

    it('refuses readonly=0 as a URL parameter', async () => {
      await expectRefused(await get({ query: 'SELECT 1', readonly: '0' }), 164);
    });

    it('binds param_ values as typed values, never as SQL', async () => {
      const injected = await get({
        query: 'SELECT count() FROM clustr.t WHERE name = {name:String}',
        param_name: "x' OR 1=1; DROP TABLE clustr.t; --",
      });
      expect(await injected.text()).toBe('0\n');
      const arrayInjection = await get({
        query: 'SELECT count() FROM clustr.t WHERE id IN {ids:Array(UInt32)}',
        param_ids: '[1]) OR (1=1',
      });
      expect(arrayInjection.status).toBe(400);
      expect(await (await get({ query: 'SELECT count() FROM clustr.t' })).text()).toBe('3\n');
    });

    it('leaves the sink client read-write', async () => {
      await handle.client.command({ query: 'CREATE TABLE IF NOT EXISTS clustr.rw (a UInt8) ENGINE = Memory' });
      await handle.client.command({ query: 'DROP TABLE clustr.rw' });
    });
  });

  it('serves @clickhouse/client createClient({ url }) for JSONEachRow, JSON, CSV and query_params', async () => {
    expect(await http.ping()).toMatchObject({ success: true });
    const each = await http.query({
      query: 'SELECT id, name FROM clustr.t WHERE id >= {min:UInt32} AND name != {skip:String} ORDER BY id',
      format: 'JSONEachRow',
      query_params: { min: 2, skip: 'gamma' },
    });
    expect(await each.json()).toEqual([{ id: 2, name: "o'brien" }]);

    const json = await http.query({ query: 'SELECT count() AS n FROM clustr.t', format: 'JSON' });
    const body = await json.json<{ n: string | number }>();
    expect(body.data.map((r) => Number(r.n))).toEqual([3]);
    expect(body.rows).toBe(1);

    const csv = await http.query({ query: 'SELECT id FROM clustr.t ORDER BY id', format: 'CSV' });
    expect(await csv.text()).toBe('1\n2\n3\n');

    const arrays = await http.query({
      query: 'SELECT name FROM clustr.t WHERE name IN {names:Array(String)} ORDER BY id',
      format: 'JSONEachRow',
      query_params: { names: ["o'brien", 'alpha'] },
    });
    expect(await arrays.json()).toEqual([{ name: 'alpha' }, { name: "o'brien" }]);

    const streamed = await http.query({ query: 'SELECT number FROM numbers(5)', format: 'JSONEachRow' });
    const seen: unknown[] = [];
    for await (const batch of streamed.stream()) for (const row of batch) seen.push(row.json());
    expect(seen).toHaveLength(5);

    await expect(http.query({ query: 'SELECT * FROM clustr.nope', format: 'JSONEachRow' })).rejects.toMatchObject({
      code: '60',
      type: 'UNKNOWN_TABLE',
    });
    await expect(http.command({ query: 'DROP TABLE clustr.t' })).rejects.toMatchObject({ code: '164', type: 'READONLY' });
    await expect(
      http.insert({ table: 'clustr.t', values: [{ id: 9, name: 'x', at: '2025-01-01 00:00:00' }], format: 'JSONEachRow' }),
    ).rejects.toMatchObject({ type: 'READONLY' });
  });

  it('serves concurrent requests', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => get({ query: `SELECT ${i} + count() FROM clustr.t` }).then((r) => r.text())),
    );
    expect(results).toEqual(Array.from({ length: 20 }, (_, i) => `${i + 3}\n`));
  });
});
