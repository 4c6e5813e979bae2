import type { OpportunityEvent } from '../events.js';
import { shortHash } from '../ids.js';

/**
 * The one OpportunityEvent that `fixtures/completed.json` (the vendor's documented sample) must
 * flatten into, every field written out by hand: the reference the flattener's unit tests and
 * the services' integration tests compare against. `receivedAt` is the only value not in the sample.
 */
export function completedSampleEvent(receivedAt: string): OpportunityEvent {
  return {
    event_id: shortHash('job_abc123/opp_abc123'),
    schema_version: 1,
    job_id: 'job_abc123',
    batch_id: 'batch_xyz789',
    webhook_timestamp: '2025-03-15T14:30:00Z',
    received_at: receivedAt,
    client_name: 'John Doe',
    client_first_name: 'John',
    client_last_name: 'Doe',
    client_linkedin_url: 'https://www.linkedin.com/in/john-doe',
    client_record_id: 'CRM_12345',
    client_owner_email: 'alice@company.com',
    client_job_title: 'VP of Sales',
    client_company_name: 'Acme Corp',
    opportunity_id: 'opp_abc123',
    prospect_name: 'Jane Smith',
    prospect_linkedin_url: 'https://www.linkedin.com/in/jane-smith',
    prospect_job_title: 'CTO',
    prospect_company_name: 'Target Inc',
    company_name: 'Target Inc',
    company_domain: 'target-inc.com',
    company_industry: 'Technology',
    company_employee_count: '501-1000',
    confidence_score: 85.5,
    total_overlap_months: 24,
    shared_company_name: 'Previous Corp',
    shared_overlap_months: 24,
    shared_client_role: 'Sales Director',
    shared_prospect_role: 'Head of Engineering',
    shared_is_current: false,
    is_target_company: true,
    engagement_total: null,
    engagement_last_date: null,
    engagement_history: [],
    custom: { your_field: 'value' },
  };
}
