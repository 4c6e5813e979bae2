import { ENGAGEMENT_TYPES, isoDateOrDateTime, opportunitySchema, parseWebhook, resultSchema, webhookSchema, type ClustrWebhook, type ParseResult } from '@clustr-pipeline/schema';
import { z } from 'zod';

/** The webhook schema with each result's opportunities left unchecked (they are checked one by one). */
const envelopeSchema = webhookSchema.extend({
  results: z.array(resultSchema.extend({ opportunities: z.array(z.unknown()).nullish() })).nullish(),
});

/**
 * `parseWebhook(body)`, minus the copy. zod returns a new object tree for a valid body (for a
 * 100,000-opportunity webhook, ~60 MB next to the parsed body); none of the webhook schemas
 * transforms, coerces or defaults anything, so for a valid body that copy equals the body. This
 * validates the envelope, then every opportunity on its own (each copy is short-lived garbage),
 * and returns the body itself. Any failure re-runs `parseWebhook` on the whole body, so rejected
 * webhooks get exactly the issues (paths, order, limit) that `parseWebhook` reports.
 */
export function validateWebhook(body: unknown): ParseResult {
  if (envelopeSchema.safeParse(body).success && opportunitiesValid(body as ClustrWebhook)) return { ok: true, webhook: body as ClustrWebhook };
  return parseWebhook(body);
}

function opportunitiesValid(body: ClustrWebhook): boolean {
  for (const result of body.results ?? []) {
    for (const opportunity of result.opportunities ?? []) {
      if (!plainOpportunityValid(opportunity) && !opportunitySchema.safeParse(opportunity).success) return false;
    }
  }
  return true;
}

// --- A fast, SOUND pre-check of one opportunity -------------------------------------------------
// true ⇒ opportunitySchema accepts it (checked by a property test against zod). false only means
// "ask zod", so it may be stricter than the schema, never looser: anything unusual goes to zod.

type Fields = Record<string, unknown>;
const isRecord = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);
const optText = (v: unknown) => v == null || typeof v === 'string';
const optCount = (v: unknown, max: number) => v == null || (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max);
const optFinite = (v: unknown) => v == null || (typeof v === 'number' && Number.isFinite(v));
const optBoolean = (v: unknown) => v == null || typeof v === 'boolean';
const optDate = (v: unknown) => v == null || (typeof v === 'string' && isoDateOrDateTime.safeParse(v).success);
const engagementTypes: ReadonlySet<unknown> = new Set(ENGAGEMENT_TYPES);

function optTexts(v: unknown, keys: readonly string[]): boolean {
  if (v == null) return true;
  if (!isRecord(v)) return false;
  for (const key of keys) if (!optText(v[key])) return false;
  return true;
}

const PROSPECT = ['name', 'linkedin_url', 'job_title', 'company_name'] as const;
const COMPANY = ['name', 'domain', 'industry', 'employee_count'] as const;

function relationshipValid(v: unknown): boolean {
  if (v == null) return true;
  if (!isRecord(v) || !optFinite(v.confidence_score) || !optCount(v.total_overlap_months, 65_535)) return false;
  const shared = v.shared_experience;
  if (shared == null) return true;
  return (
    isRecord(shared) &&
    optText(shared.company_name) &&
    optCount(shared.overlap_months, 65_535) &&
    optText(shared.client_role) &&
    optText(shared.prospect_role) &&
    optBoolean(shared.is_current)
  );
}

function engagementValid(v: unknown): boolean {
  if (v == null) return true;
  if (!isRecord(v) || !optCount(v.total_engagements, 4_294_967_295) || !optDate(v.last_engagement_date)) return false;
  const history = v.history;
  if (history == null) return true;
  if (!Array.isArray(history)) return false;
  for (const entry of history as unknown[]) {
    if (!isRecord(entry) || !engagementTypes.has(entry.type) || !optDate(entry.date) || !optText(entry.text) || !optText(entry.link) || !optText(entry.source)) return false;
  }
  return true;
}

/** Sound fast path of `opportunitySchema.safeParse(v).success` (see above). */
export function plainOpportunityValid(v: unknown): boolean {
  return (
    isRecord(v) &&
    typeof v.opportunity_id === 'string' &&
    v.opportunity_id.length > 0 &&
    optTexts(v.prospect, PROSPECT) &&
    optTexts(v.company, COMPANY) &&
    relationshipValid(v.relationship) &&
    optBoolean(v.is_target_company) &&
    engagementValid(v.engagement)
  );
}
