import { z } from 'zod';
import { engagementTypeSchema, isoDateOrDateTime } from './webhook.js';

/**
 * The public event contract, version 1. Field names are the column names in ClickHouse.
 * Never change a v1 field: add a v2 schema and topic instead.
 */

export const SCHEMA_VERSION = 1 as const;

const nullableText = z.string().nullable();
const nullableCount = z.number().int().nonnegative().nullable();
/** 32 lowercase hex characters: the first half of a sha256. */
export const eventIdSchema = z.string().regex(/^[0-9a-f]{32}$/);

export const engagementHistoryEntrySchema = z.object({
  type: engagementTypeSchema,
  date: isoDateOrDateTime.nullable(),
  text: nullableText,
  link: nullableText,
  source: nullableText,
});
export type EngagementHistoryEntry = z.infer<typeof engagementHistoryEntrySchema>;

export const opportunityEventSchema = z.object({
  event_id: eventIdSchema,
  schema_version: z.literal(SCHEMA_VERSION),
  job_id: z.string().min(1),
  batch_id: nullableText,
  webhook_timestamp: z.iso.datetime({ offset: true }).nullable(),
  received_at: z.iso.datetime(),
  client_name: nullableText,
  client_first_name: nullableText,
  client_last_name: nullableText,
  client_linkedin_url: nullableText,
  client_record_id: nullableText,
  client_owner_email: nullableText,
  client_job_title: nullableText,
  client_company_name: nullableText,
  opportunity_id: z.string().min(1),
  prospect_name: nullableText,
  prospect_linkedin_url: nullableText,
  prospect_job_title: nullableText,
  prospect_company_name: nullableText,
  company_name: nullableText,
  company_domain: nullableText,
  company_industry: nullableText,
  company_employee_count: nullableText,
  confidence_score: z.number().finite().nullable(),
  total_overlap_months: nullableCount,
  shared_company_name: nullableText,
  shared_overlap_months: nullableCount,
  shared_client_role: nullableText,
  shared_prospect_role: nullableText,
  shared_is_current: z.boolean().nullable(),
  is_target_company: z.boolean().nullable(),
  engagement_total: nullableCount,
  engagement_last_date: isoDateOrDateTime.nullable(),
  engagement_history: z.array(engagementHistoryEntrySchema),
  /** The webhook's `custom`, unchanged (null when absent). */
  custom: z.unknown(),
});
export type OpportunityEvent = z.infer<typeof opportunityEventSchema>;

export const jobEventSchema = z.object({
  event_id: eventIdSchema,
  schema_version: z.literal(SCHEMA_VERSION),
  job_id: z.string().min(1),
  batch_id: nullableText,
  status: z.string().min(1),
  total_processed: nullableCount,
  total_opportunities: nullableCount,
  processing_time_seconds: z.number().finite().nonnegative().nullable(),
  /** Number of `results[]` entries (processed clients) in the webhook. */
  result_count: z.number().int().nonnegative(),
  /** Number of OpportunityEvents published for this webhook. */
  opportunity_count: z.number().int().nonnegative(),
  error_code: nullableText,
  error_message: nullableText,
  /** The error's `details`: the vendor's string, or JSON text when it sent another JSON value. */
  error_details: nullableText,
  custom: z.unknown(),
  webhook_timestamp: z.iso.datetime({ offset: true }).nullable(),
  received_at: z.iso.datetime(),
});
export type JobEvent = z.infer<typeof jobEventSchema>;
