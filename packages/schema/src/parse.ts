import type { z } from 'zod';
import { webhookSchema, type ClustrWebhook } from './webhook.js';

/** One schema violation, with a JSON-path-like location such as `results[0].opportunities[3].opportunity_id`. */
export interface SchemaIssue {
  path: string;
  message: string;
  code: string;
}

export type ParseResult =
  | { ok: true; webhook: ClustrWebhook }
  | { ok: false; issues: SchemaIssue[] };

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? String(segment) : `.${String(segment)}`;
  }
  return out === '' ? '(root)' : out;
}

export function toSchemaIssues(error: z.ZodError, limit = 50): SchemaIssue[] {
  return error.issues.slice(0, limit).map((issue) => ({
    path: formatPath(issue.path),
    message: issue.message,
    code: issue.code,
  }));
}

/** Validates an already JSON-parsed body against the webhook schema. Never throws. */
export function parseWebhook(body: unknown, issueLimit = 50): ParseResult {
  const result = webhookSchema.safeParse(body);
  return result.success ? { ok: true, webhook: result.data } : { ok: false, issues: toSchemaIssues(result.error, issueLimit) };
}
