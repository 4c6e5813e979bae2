import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';
import type pino from 'pino';
import { assertIdentifier } from './clickhouse.js';

/** The SQL files shipped with the package (src/migrations, copied to dist/migrations by the build). */
export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

export interface Migration {
  /** From the file name `0001_name.sql`. */
  version: number;
  name: string;
  /** sha256 of the file as written (before `{database}` is replaced). */
  checksum: string;
  sql: string;
}

export interface MigrateResult {
  applied: string[];
  skipped: string[];
}

export class MigrationError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MigrationError';
  }
}

const FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = FILE.exec(file);
    if (!match) throw new MigrationError(`Migration file name must look like 0001_name.sql: ${file}`);
    const sql = await readFile(`${dir}/${file}`, 'utf8');
    migrations.push({
      version: Number(match[1]),
      name: file.replace(/\.sql$/, ''),
      checksum: createHash('sha256').update(sql).digest('hex'),
      sql,
    });
  }
  const versions = migrations.map((m) => m.version);
  if (new Set(versions).size !== versions.length) throw new MigrationError(`Duplicate migration versions in ${dir}`);
  return migrations;
}

/**
 * Splits a migration into statements on `;` at the end of a statement, ignoring `;` inside
 * quotes and `--` / `/* *\/` comments. Comments are dropped.
 */
export function splitStatements(sql: string): string[] {
  const statements: string[] = [];
  let current = '';
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    const next = sql[i + 1];
    if (ch === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? sql.length : end;
      continue;
    }
    if (ch === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end === -1 ? sql.length : end + 2;
      current += ' ';
      continue;
    }
    if (ch === "'" || ch === '"' || ch === '`') {
      let j = i + 1;
      while (j < sql.length && sql[j] !== ch) j += sql[j] === '\\' ? 2 : 1;
      current += sql.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (ch === ';') {
      if (current.trim()) statements.push(current.trim());
      current = '';
      i++;
      continue;
    }
    current += ch;
    i++;
  }
  if (current.trim()) statements.push(current.trim());
  return statements;
}

export function renderMigration(sql: string, database: string): string {
  return sql.replaceAll('{database}', assertIdentifier(database, 'database name'));
}

interface AppliedRow {
  version: number;
  name: string;
  checksum: string;
}

/**
 * Applies the pending migrations in version order and records each in
 * `${database}.schema_migrations`. Safe to run again (and concurrently with nothing: run it from
 * one process at start-up). An applied migration whose file changed is an error: write a new one.
 */
export async function migrate(
  client: ClickHouseClient,
  database: string,
  logger?: pino.Logger,
  migrations?: Migration[],
): Promise<MigrateResult> {
  const db = assertIdentifier(database, 'database name');
  const all = migrations ?? (await loadMigrations());
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${db}` });
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations
      (version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
      ENGINE = MergeTree ORDER BY version`,
  });
  const rows = await (
    await client.query({
      query: `SELECT version, name, checksum FROM ${db}.schema_migrations ORDER BY version`,
      format: 'JSONEachRow',
    })
  ).json<AppliedRow>();
  const applied = new Map(rows.map((r) => [Number(r.version), r]));

  const result: MigrateResult = { applied: [], skipped: [] };
  for (const migration of all) {
    const done = applied.get(migration.version);
    if (done) {
      if (done.checksum !== migration.checksum) {
        throw new MigrationError(
          `Migration ${migration.name} was applied with checksum ${done.checksum} but the file now has ` +
            `${migration.checksum}: never edit an applied migration, add a new one`,
        );
      }
      result.skipped.push(migration.name);
      continue;
    }
    // NOTE: ClickHouse DDL is not transactional; every statement is IF NOT EXISTS so a migration
    // that failed half-way can simply run again.
    for (const statement of splitStatements(renderMigration(migration.sql, db))) {
      try {
        await client.command({ query: statement });
      } catch (err) {
        throw new MigrationError(`Migration ${migration.name} failed: ${(err as Error).message}`, { cause: err });
      }
    }
    await client.insert({
      table: `${db}.schema_migrations`,
      values: [{ version: migration.version, name: migration.name, checksum: migration.checksum }],
      format: 'JSONEachRow',
    });
    logger?.info({ migration: migration.name }, 'ClickHouse migration applied');
    result.applied.push(migration.name);
  }
  return result;
}
