import type { EngagementHistoryEntry, JobEvent, OpportunityEvent } from './events.js';
import { SCHEMA_VERSION } from './events.js';
import { jobEventId, opportunityEventId } from './ids.js';
import type { ClustrWebhook, Opportunity } from './webhook.js';

export interface FlattenedWebhook {
  job: JobEvent;
  opportunities: OpportunityEvent[];
}

/** `undefined` → `null`; everything else unchanged. Absent values become null, never invented. */
const orNull = <T>(value: T | null | undefined): T | null => (value === undefined ? null : value);

function errorDetails(details: unknown): string | null {
  if (details === undefined || details === null) return null;
  return typeof details === 'string' ? details : JSON.stringify(details);
}

function engagementHistory(opportunity: Opportunity): EngagementHistoryEntry[] {
  const history = opportunity.engagement?.history;
  if (!history) return [];
  return history.map((entry) => ({
    type: entry.type,
    date: orNull(entry.date),
    text: orNull(entry.text),
    link: orNull(entry.link),
    source: orNull(entry.source),
  }));
}

/**
 * Turns one validated webhook into one JobEvent and one OpportunityEvent per opportunity, in
 * payload order. Pure: the same payload and `receivedAt` always give the same events.
 */
export function flattenWebhook(payload: ClustrWebhook, receivedAt: Date): FlattenedWebhook {
  const receivedAtIso = receivedAt.toISOString();
  const jobId = payload.job_id;
  const batchId = orNull(payload.batch_id);
  const webhookTimestamp = orNull(payload.timestamp);
  const custom = orNull(payload.custom);
  const results = payload.results ?? [];

  const opportunities: OpportunityEvent[] = [];
  for (const result of results) {
    const client = result.client;
    for (const opportunity of result.opportunities ?? []) {
      const prospect = opportunity.prospect;
      const company = opportunity.company;
      const relationship = opportunity.relationship;
      const shared = relationship?.shared_experience;
      const engagement = opportunity.engagement;
      opportunities.push({
        event_id: opportunityEventId(jobId, opportunity.opportunity_id),
        schema_version: SCHEMA_VERSION,
        job_id: jobId,
        batch_id: batchId,
        webhook_timestamp: webhookTimestamp,
        received_at: receivedAtIso,
        client_name: orNull(client?.name),
        client_first_name: orNull(client?.first_name),
        client_last_name: orNull(client?.last_name),
        client_linkedin_url: orNull(client?.linkedin_url),
        client_record_id: orNull(client?.record_id),
        client_owner_email: orNull(client?.owner_email),
        client_job_title: orNull(client?.job_title),
        client_company_name: orNull(client?.company_name),
        opportunity_id: opportunity.opportunity_id,
        prospect_name: orNull(prospect?.name),
        prospect_linkedin_url: orNull(prospect?.linkedin_url),
        prospect_job_title: orNull(prospect?.job_title),
        prospect_company_name: orNull(prospect?.company_name),
        company_name: orNull(company?.name),
        company_domain: orNull(company?.domain),
        company_industry: orNull(company?.industry),
        company_employee_count: orNull(company?.employee_count),
        confidence_score: orNull(relationship?.confidence_score),
        total_overlap_months: orNull(relationship?.total_overlap_months),
        shared_company_name: orNull(shared?.company_name),
        shared_overlap_months: orNull(shared?.overlap_months),
        shared_client_role: orNull(shared?.client_role),
        shared_prospect_role: orNull(shared?.prospect_role),
        shared_is_current: orNull(shared?.is_current),
        is_target_company: orNull(opportunity.is_target_company),
        engagement_total: orNull(engagement?.total_engagements),
        engagement_last_date: orNull(engagement?.last_engagement_date),
        engagement_history: engagementHistory(opportunity),
        custom,
      });
    }
  }

  const job: JobEvent = {
    event_id: jobEventId(jobId, payload.status),
    schema_version: SCHEMA_VERSION,
    job_id: jobId,
    batch_id: batchId,
    status: payload.status,
    total_processed: orNull(payload.summary?.total_processed),
    total_opportunities: orNull(payload.summary?.total_opportunities),
    processing_time_seconds: orNull(payload.summary?.processing_time_seconds),
    result_count: results.length,
    opportunity_count: opportunities.length,
    error_code: orNull(payload.error?.code),
    error_message: orNull(payload.error?.message),
    error_details: errorDetails(payload.error?.details),
    custom,
    webhook_timestamp: webhookTimestamp,
    received_at: receivedAtIso,
  };

  return { job, opportunities };
}
