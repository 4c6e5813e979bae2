/**
 * The dev ClickHouse server (development/tests only): chDB in its own process behind the
 * readwrite HTTP interface, driven by @clickhouse/client like test/reliability does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDevClickHouseServer, type DevClickHouseServer } from './dev-server.js';

describe('dev ClickHouse server (chDB behind a writable HTTP interface)', () => {
  let dir: string;
  let server: DevClickHouseServer;
  let client: ClickHouseClient;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sink-dev-ch-'));
    server = await startDevClickHouseServer({ path: join(dir, 'data'), port: 0 });
    client = createClient({ url: server.url, request_timeout: 60_000 });
  }, 120_000);
  afterAll(async () => {
    await client?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers ping and runs DDL, inserts and parameterised queries', async () => {
    expect((await client.ping()).success).toBe(true);
    await client.command({ query: 'CREATE DATABASE IF NOT EXISTS devkit' });
    await client.command({
      query: `CREATE TABLE IF NOT EXISTS devkit.t (id String, v UInt32) ENGINE = MergeTree ORDER BY id
              SETTINGS non_replicated_deduplication_window = 100`,
    });
    await client.insert({ table: 'devkit.t', values: [{ id: "o'brien", v: 1 }, { id: 'tab\there', v: 1 }], format: 'JSONEachRow' });
    const query = async (sql: string, params: Record<string, unknown>) =>
      (await client.query({ query: sql, query_params: params, format: 'JSONEachRow' })).json<{ id: string; v: number }>();
    expect(await query('SELECT id, v FROM devkit.t WHERE id IN {ids:Array(String)} AND v = {v:UInt32}', { ids: ["o'brien", 'x'], v: 1 })).toEqual([
      { id: "o'brien", v: 1 },
    ]);
    expect(await query('SELECT id, v FROM devkit.t WHERE id = {id:String}', { id: 'tab\there' })).toEqual([{ id: 'tab\there', v: 1 }]);
    // No `database` parameter: `t` is looked up in `default`.
    await expect(client.query({ query: 'SELECT count() AS n FROM t', format: 'JSONEachRow' })).rejects.toMatchObject({ type: 'UNKNOWN_TABLE' });
    const scoped = createClient({ url: server.url, database: 'devkit' });
    expect(await (await scoped.query({ query: 'SELECT count() AS n FROM t', format: 'JSONEachRow' })).json()).toEqual([{ n: '2' }]);
    await scoped.close();
  }, 60_000);

  it('applies URL settings per query: insert_deduplication_token makes a retried insert a no-op', async () => {
    const send = async (token: string) => {
      const result = await client.exec({
        query: 'INSERT INTO devkit.t FORMAT JSONEachRow',
        values: Readable.from([Buffer.from('{"id":"a","v":2}\n{"id":"b","v":3}')]),
        clickhouse_settings: { insert_deduplicate: 1, insert_deduplication_token: token, input_format_skip_unknown_fields: 1 },
      });
      result.stream.resume();
    };
    await send('tok-1');
    await send('tok-1');
    const count = async () => Number((await (await client.query({ query: 'SELECT count() AS n FROM devkit.t WHERE v > 1', format: 'JSONEachRow' })).json<{ n: string }>())[0]!.n);
    expect(await count()).toBe(2);
    await send('tok-2');
    expect(await count()).toBe(4);
    // The token was a setting of those queries only, not of the server.
    const [setting] = await (await client.query({ query: "SELECT getSetting('insert_deduplication_token') AS s", format: 'JSONEachRow' })).json<{ s: string }>();
    expect(setting!.s).toBe('');
  }, 60_000);

  it('answers errors the way ClickHouse does (code, type, status)', async () => {
    await expect(client.query({ query: 'SELECT * FROM devkit.missing', format: 'JSONEachRow' })).rejects.toMatchObject({ type: 'UNKNOWN_TABLE', code: '60' });
    await expect(client.command({ query: 'SELEC 1' })).rejects.toMatchObject({ type: 'SYNTAX_ERROR' });
    const response = await fetch(`${server.url}/?query=${encodeURIComponent('SELECT * FROM devkit.missing')}`);
    expect(response.status).toBe(404);
    expect(response.headers.get('x-clickhouse-exception-code')).toBe('60');
  }, 60_000);
});
