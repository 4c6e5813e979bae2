import { z } from 'zod';

/**
 * The Clustr webhook as the vendor documents it (shared/seed/clustr-webhook.md).
 *
 * Only `status`, `job_id` and each opportunity's `opportunity_id` are required; everything else
 * may be absent or null. Objects are loose: fields the vendor adds later are tolerated (and
 * ignored by the flattener) rather than failing a valid payload.
 */

const text = z.string();
const optionalText = text.nullish();
/** Whole, non-negative counts that fit the UInt16/UInt32 columns downstream. */
const count = (max: number) => z.number().int().nonnegative().max(max);
const finite = z.number().finite();

/** An ISO-8601 calendar date (`2025-03-15`) or date-time with offset (`2025-03-15T14:30:00Z`). */
export const isoDateOrDateTime = z.union([z.iso.date(), z.iso.datetime({ offset: true })]);

export const ENGAGEMENT_TYPES = [
  'PROSPECT_COMMENTED',
  'PROSPECT_LIKED',
  'PROSPECT_REACTED',
  'PROSPECT_RECOMMENDED',
  'CLIENT_COMMENTED',
  'CLIENT_LIKED',
  'CLIENT_RECOMMENDED',
] as const;
export const engagementTypeSchema = z.enum(ENGAGEMENT_TYPES);
export type EngagementType = z.infer<typeof engagementTypeSchema>;

export const engagementEntrySchema = z.looseObject({
  type: engagementTypeSchema,
  date: isoDateOrDateTime.nullish(),
  text: optionalText,
  link: optionalText,
  source: optionalText,
});
export type EngagementEntry = z.infer<typeof engagementEntrySchema>;

export const engagementSchema = z.looseObject({
  total_engagements: count(4_294_967_295).nullish(),
  last_engagement_date: isoDateOrDateTime.nullish(),
  history: z.array(engagementEntrySchema).nullish(),
});

export const clientSchema = z.looseObject({
  name: optionalText,
  first_name: optionalText,
  last_name: optionalText,
  linkedin_url: optionalText,
  record_id: optionalText,
  owner_email: optionalText,
  job_title: optionalText,
  company_name: optionalText,
});
export type Client = z.infer<typeof clientSchema>;

export const prospectSchema = z.looseObject({
  name: optionalText,
  linkedin_url: optionalText,
  job_title: optionalText,
  company_name: optionalText,
});

export const companySchema = z.looseObject({
  name: optionalText,
  domain: optionalText,
  industry: optionalText,
  /** A size band such as "501-1000", not a number. */
  employee_count: optionalText,
});

export const sharedExperienceSchema = z.looseObject({
  company_name: optionalText,
  overlap_months: count(65_535).nullish(),
  client_role: optionalText,
  prospect_role: optionalText,
  is_current: z.boolean().nullish(),
});

export const relationshipSchema = z.looseObject({
  confidence_score: finite.nullish(),
  total_overlap_months: count(65_535).nullish(),
  shared_experience: sharedExperienceSchema.nullish(),
});

export const opportunitySchema = z.looseObject({
  opportunity_id: text.min(1),
  prospect: prospectSchema.nullish(),
  company: companySchema.nullish(),
  relationship: relationshipSchema.nullish(),
  is_target_company: z.boolean().nullish(),
  engagement: engagementSchema.nullish(),
});
export type Opportunity = z.infer<typeof opportunitySchema>;

export const resultSchema = z.looseObject({
  client: clientSchema.nullish(),
  opportunities: z.array(opportunitySchema).nullish(),
});
export type Result = z.infer<typeof resultSchema>;

export const summarySchema = z.looseObject({
  total_processed: count(4_294_967_295).nullish(),
  total_opportunities: count(4_294_967_295).nullish(),
  processing_time_seconds: finite.nonnegative().nullish(),
});

export const webhookErrorSchema = z.looseObject({
  code: optionalText,
  message: optionalText,
  /** Documented as a string; any other JSON value is kept and carried as JSON text. */
  details: z.unknown().optional(),
});

/** Fields common to both documented shapes ("completed" and "failed"). */
export const webhookBaseSchema = z.looseObject({
  status: text.min(1).max(64),
  job_id: text.min(1),
  batch_id: optionalText,
  summary: summarySchema.nullish(),
  /** Passed through unchanged from the import request; any JSON value. */
  custom: z.unknown().optional(),
  timestamp: z.iso.datetime({ offset: true }).nullish(),
});

export const completedWebhookSchema = webhookBaseSchema.extend({
  status: z.literal('completed'),
  results: z.array(resultSchema).nullish(),
});
export type CompletedWebhook = z.infer<typeof completedWebhookSchema>;

export const failedWebhookSchema = webhookBaseSchema.extend({
  status: z.literal('failed'),
  error: webhookErrorSchema.nullish(),
  results: z.array(resultSchema).nullish(),
});
export type FailedWebhook = z.infer<typeof failedWebhookSchema>;

/**
 * Any webhook. `status` is checked as text rather than an enum so that a status the vendor adds
 * later (say "partial") is still accepted; both documented shapes are subsets of this one.
 */
export const webhookSchema = webhookBaseSchema.extend({
  results: z.array(resultSchema).nullish(),
  error: webhookErrorSchema.nullish(),
});
export type ClustrWebhook = z.infer<typeof webhookSchema>;
