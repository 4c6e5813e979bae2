import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, webhook, webhookMessages } from './common.js';

/** The sink's own migrations (services/sink/src/migrations/*.sql): the exact table shapes. */
export function migrationStatements(database: string, which: 'full' | 'events' = 'full'): string[] {
  const dir = join(repoRoot, 'services', 'sink', 'src', 'migrations');
  const files = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  const selected = which === 'full' ? files : files.filter((f) => f.startsWith('0001'));
  const statements: string[] = [`CREATE DATABASE IF NOT EXISTS ${database}`];
  for (const f of selected) {
    const sql = readFileSync(join(dir, f), 'utf8').replace(/--[^\n]*/g, '').replaceAll('{database}', database);
    for (const s of sql.split(';')) if (s.trim()) statements.push(s.trim());
  }
  return statements;
}

/** Same as the sink's RAW_JSON_INPUT_SETTINGS (services/sink/src/writer.ts): settings the inserts need for the v1 JSON (dates as "2025-03-15" or ISO date-times). */
export const INSERT_SETTINGS = {
  input_format_json_read_objects_as_strings: 1,
  date_time_input_format: 'best_effort',
  input_format_json_named_tuples_as_objects: 1,
  input_format_json_defaults_for_missing_elements_in_named_tuple: 1,
  input_format_skip_unknown_fields: 1,
  input_format_import_nested_json: 0,
} as const;

/**
 * The same opportunity events as `fillTopic` (same generator, job ids and sizes), as JSONEachRow
 * batches of `batchRows` lines, built before any timing.
 */
export function eventBatches(count: number, batchRows: number, opts: { perWebhook?: number; prefix?: string } = {}): Buffer[] {
  const { perWebhook = 10_000, prefix = 'bench_fill' } = opts;
  const batches: Buffer[] = [];
  let lines: string[] = [];
  for (let sent = 0, w = 0; sent < count; w++) {
    const n = Math.min(perWebhook, count - sent);
    for (const m of webhookMessages(webhook(n, `${prefix}_${w}`)).opportunities) {
      lines.push(m.value);
      if (lines.length === batchRows) {
        batches.push(Buffer.from(`${lines.join('\n')}\n`));
        lines = [];
      }
    }
    sent += n;
  }
  if (lines.length > 0) batches.push(Buffer.from(`${lines.join('\n')}\n`));
  return batches;
}
