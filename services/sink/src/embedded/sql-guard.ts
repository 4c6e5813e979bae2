import { HttpQueryError } from './http-errors.js';

/** First keyword of a statement the read-only HTTP interface runs. Everything else is refused. */
const READ_STATEMENTS = new Set(['SELECT', 'WITH', 'SHOW', 'DESCRIBE', 'DESC', 'EXISTS', 'EXPLAIN']);

/**
 * Checks the canonical text ClickHouse's own parser produced (`formatQuerySingleLine`), which is
 * exactly one statement: its parser rejects `SELECT 1; DROP TABLE x` ("Multi-statements are not
 * allowed"), so the statement kind cannot be smuggled past this check by a second statement,
 * comments or odd whitespace. Returns the text to execute.
 *
 * NOTE: this is the second line of defence; the session itself runs with readonly=1, which the
 * engine enforces for writes, DDL, SET and table functions (file, url, s3, remote …).
 */
export function assertReadStatement(canonical: string): string {
  const text = canonical.trim();
  // `(SELECT 1) UNION ALL (SELECT 2)` formats without the parentheses, but stay tolerant.
  const keyword = /^\(*\s*([A-Za-z]+)/.exec(text)?.[1]?.toUpperCase();
  if (keyword === undefined || !READ_STATEMENTS.has(keyword)) {
    throw new HttpQueryError(
      164,
      'READONLY',
      `Cannot execute query in readonly mode: only ${[...READ_STATEMENTS].join(', ')} statements are allowed on this port`,
    );
  }
  // TRICKY: chDB is clickhouse-local, where INTO OUTFILE is executed (a server's HTTP interface
  // refuses it) and readonly does not stop it. A string literal containing these words is refused
  // too; that is the safe side.
  if (/\bINTO\s+OUTFILE\b/i.test(text)) {
    throw new HttpQueryError(164, 'READONLY', 'Cannot execute query in readonly mode: INTO OUTFILE is not allowed on this port');
  }
  return text;
}

/** The output format named by a trailing `FORMAT x` clause of a canonical single-line query. */
export function formatClause(canonical: string): string | undefined {
  return /\sFORMAT\s+([A-Za-z0-9_]+)(?:\s+SETTINGS\s[^']*)?$/.exec(canonical)?.[1];
}

/**
 * The output format named by a trailing `FORMAT x` clause of raw SQL as sent (readwrite mode, which
 * does not canonicalise: case-insensitive, a trailing `;` or whitespace allowed).
 */
export function trailingFormatClause(sql: string): string | undefined {
  return /\sFORMAT\s+([A-Za-z0-9_]+)\s*(?:SETTINGS\s[^']*)?;?\s*$/i.exec(sql)?.[1];
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isIdentifier(value: string): boolean {
  return IDENTIFIER.test(value);
}
