import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, webhook, webhookMessages } from './common.js';
import { RAW_JSON_INPUT_SETTINGS } from '@clustr-pipeline/sink';

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

/** The sink's own input settings, so the raw paths parse the v1 JSON exactly as the sink does. */
export const INSERT_SETTINGS = RAW_JSON_INPUT_SETTINGS as Record<string, string | number>;

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
