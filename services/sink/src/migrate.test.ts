import { describe, expect, it } from 'vitest';
import { loadMigrations, renderMigration, splitStatements } from './migrate.js';

describe('splitStatements', () => {
  it('splits on ; outside quotes and comments', () => {
    const sql = `-- a comment; with a semicolon
CREATE TABLE a (x String DEFAULT 'a;b') ENGINE = Memory; /* block; */
SELECT "we;ird", \`id;\` FROM a;
-- trailing comment`;
    expect(splitStatements(sql)).toEqual([
      "CREATE TABLE a (x String DEFAULT 'a;b') ENGINE = Memory",
      'SELECT "we;ird", `id;` FROM a',
    ]);
  });
});

describe('renderMigration', () => {
  it('replaces {database} with a validated identifier', () => {
    expect(renderMigration('CREATE TABLE {database}.t', 'clustr')).toBe('CREATE TABLE clustr.t');
    expect(() => renderMigration('x', 'a.b')).toThrow(/Invalid/);
    expect(() => renderMigration('x', "x'; DROP")).toThrow(/Invalid/);
  });
});

describe('the shipped migrations', () => {
  it('are numbered 1..n without gaps and every statement is re-runnable', async () => {
    const migrations = await loadMigrations();
    expect(migrations.map((m) => m.version)).toEqual(migrations.map((_, i) => i + 1));
    for (const m of migrations) {
      expect(m.checksum).toMatch(/^[0-9a-f]{64}$/);
      for (const statement of splitStatements(m.sql)) expect(statement).toMatch(/^CREATE (TABLE|VIEW|MATERIALIZED VIEW) IF NOT EXISTS \{database\}\./);
    }
  });
});
