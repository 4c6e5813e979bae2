import { createHash } from 'node:crypto';
import { jobEventSchema, opportunityEventSchema } from '@clustr-pipeline/schema';
import type { BufferedRow } from './batcher.js';
import { offsetRuns } from './batcher.js';
import type { DlqReason } from './errors.js';
import type { SinkTable } from './writer.js';

/**
 * Kafka message → table row. The cheap path: JSON.parse and validate against the v1 event schema,
 * then forward the ORIGINAL string as the JSONEachRow line (no re-serialisation).
 */

export type { SinkTable };

export interface TopicRoute {
  topic: string;
  table: SinkTable;
  validate(value: unknown): { ok: true; eventId: string } | { ok: false; error: string };
}

function validator(schema: typeof opportunityEventSchema | typeof jobEventSchema): TopicRoute['validate'] {
  return (value) => {
    const result = schema.safeParse(value);
    if (result.success) return { ok: true, eventId: result.data.event_id };
    const issues = result.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    return { ok: false, error: issues.join('; ') };
  };
}

export function topicRoutes(topics: { opportunities: string; jobs: string }): TopicRoute[] {
  return [
    { topic: topics.opportunities, table: 'opportunity_events', validate: validator(opportunityEventSchema) },
    { topic: topics.jobs, table: 'jobs', validate: validator(jobEventSchema) },
  ];
}

export type Decoded = { ok: true; eventId: string; line: string } | { ok: false; reason: DlqReason; error: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeMessage(route: TopicRoute, value: Buffer | null): Decoded {
  if (value === null || value.length === 0) return { ok: false, reason: 'SINK_DLQ_EMPTY_VALUE', error: 'message has no value' };
  let line: string;
  let parsed: unknown;
  try {
    line = utf8.decode(value);
    parsed = JSON.parse(line);
  } catch (err) {
    return { ok: false, reason: 'SINK_DLQ_INVALID_JSON', error: err instanceof Error ? err.message : String(err) };
  }
  const verdict = route.validate(parsed);
  if (!verdict.ok) return { ok: false, reason: 'SINK_DLQ_SCHEMA', error: verdict.error };
  // TRICKY: JSONEachRow is one object per line; a pretty-printed value would split across lines.
  if (line.includes('\n') || line.includes('\r')) line = JSON.stringify(parsed);
  return { ok: true, eventId: verdict.eventId, line };
}

/**
 * The insert_deduplication_token of a batch: a hash of its table and exact Kafka positions, so the
 * same rows retried (or re-read after a crash and batched the same way) get the same token.
 */
export function dedupToken(table: string, rows: readonly Pick<BufferedRow, 'topic' | 'partition' | 'offset'>[]): string {
  const parts = new Map<string, string[]>();
  for (const run of offsetRuns(rows)) {
    const key = `${run.topic}:${run.partition}`;
    const list = parts.get(key) ?? [];
    list.push(run.first === run.last ? `${run.first}` : `${run.first}-${run.last}`);
    parts.set(key, list);
  }
  const canonical = `${table}|${[...parts].map(([k, v]) => `${k}:${v.join(',')}`).join(';')}`;
  return `${table}-${createHash('sha256').update(canonical).digest('hex').slice(0, 40)}`;
}
