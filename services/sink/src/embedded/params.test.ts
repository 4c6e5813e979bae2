import { describe, expect, it } from 'vitest';
import { bindableParams, placeholderTypes, unescapeEscaped } from './params.js';
import { assertReadStatement, formatClause } from './sql-guard.js';
import { httpStatusFor, toHttpQueryError } from './http-errors.js';

describe('param_ values', () => {
  it('unescapes ClickHouse escaped text', () => {
    expect(unescapeEscaped("o\\'brien\\ta\\\\b\\x41\\n")).toBe("o'brien\ta\\bA\n");
    expect(unescapeEscaped('plain')).toBe('plain');
  });

  it('knows the declared types and keeps composite values as literals', () => {
    const sql = 'SELECT {name:String}, {ids:Array(String)}, {t:Nullable(Tuple(UInt8, String))}';
    expect([...placeholderTypes(sql)]).toEqual([['name', 'String'], ['ids', 'Array(String)'], ['t', 'Nullable(Tuple(UInt8, String))']]);
    expect(bindableParams(sql, { name: "o\\'b", ids: "['o\\'b','x']", t: "(1,'a')", extra: 'x' })).toEqual({
      name: "o'b",
      ids: "['o''b','x']",
      t: "(1,'a')",
      extra: 'x',
    });
  });
});

describe('sql guard', () => {
  it.each(['SELECT 1', 'WITH 1 AS x SELECT x', 'SHOW TABLES', 'DESCRIBE TABLE t', 'EXISTS TABLE t', 'EXPLAIN SELECT 1'])(
    'allows %s',
    (sql) => expect(assertReadStatement(sql)).toBe(sql),
  );
  it.each(['INSERT INTO t VALUES (1)', 'DROP TABLE t', 'SET readonly = 0', 'SYSTEM FLUSH LOGS', "SELECT 1 INTO OUTFILE 'x'", ''])(
    'refuses %s',
    (sql) => expect(() => assertReadStatement(sql)).toThrow(/readonly/),
  );
  it('reads the FORMAT clause', () => {
    expect(formatClause('SELECT 1 FORMAT JSONEachRow')).toBe('JSONEachRow');
    expect(formatClause('SELECT 1 FORMAT CSV SETTINGS max_threads = 1')).toBe('CSV');
    expect(formatClause('SELECT 1')).toBeUndefined();
  });
});

describe('errors', () => {
  it('parses chdb messages and maps statuses like ClickHouse', () => {
    const e = toHttpQueryError(new Error('Code: 60. DB::Exception: Unknown table x. (UNKNOWN_TABLE)'));
    expect(e).toMatchObject({ chCode: 60, chType: 'UNKNOWN_TABLE', message: 'Unknown table x.' });
    expect(httpStatusFor('UNKNOWN_TABLE')).toBe(404);
    expect(httpStatusFor('SYNTAX_ERROR')).toBe(400);
    expect(httpStatusFor('READONLY')).toBe(403);
    expect(httpStatusFor('CANNOT_PARSE_DATE')).toBe(400);
    expect(httpStatusFor('LOGICAL_ERROR')).toBe(500);
  });
});
