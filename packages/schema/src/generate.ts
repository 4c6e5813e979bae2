import type { ClustrWebhook } from './webhook.js';
import { ENGAGEMENT_TYPES } from './webhook.js';

export interface MakeWebhookOptions {
  /** Opportunities in the webhook. */
  opportunities: number;
  /** Opportunities per client (the last client may have fewer). @default 10 */
  perClient?: number;
  /** @default `job_gen_${opportunities}` */
  jobId?: string;
  /** Engagement history entries per opportunity. @default 0 */
  engagements?: number;
  /** @default { source: 'generated' } */
  custom?: unknown;
}

/**
 * A realistic, valid "completed" webhook of any size, deterministic for the same options.
 * Used by tests, the benchmark and the local demo; it does no I/O.
 */
export function makeWebhook(options: MakeWebhookOptions): ClustrWebhook {
  const { opportunities, perClient = 10, engagements = 0 } = options;
  const jobId = options.jobId ?? `job_gen_${opportunities}`;
  const results: NonNullable<ClustrWebhook['results']> = [];
  for (let start = 0; start < opportunities; start += perClient) {
    const c = results.length;
    const opps = [];
    for (let i = start; i < Math.min(start + perClient, opportunities); i++) {
      const history = [];
      for (let e = 0; e < engagements; e++) {
        history.push({
          type: ENGAGEMENT_TYPES[(i + e) % ENGAGEMENT_TYPES.length]!,
          date: `2025-0${1 + (e % 9)}-1${e % 10}`,
          text: e % 2 === 0 ? null : `Comment ${e} on post ${i}`,
          link: `https://linkedin.com/feed/update/${i}-${e}`,
          source: 'linkedin',
        });
      }
      opps.push({
        opportunity_id: `opp_${jobId}_${i}`,
        prospect: {
          name: `Prospect ${i}`,
          linkedin_url: `https://www.linkedin.com/in/prospect-${i}`,
          job_title: i % 3 === 0 ? 'CTO' : 'VP Engineering',
          company_name: `Target ${i % 97}`,
        },
        company: {
          name: `Target ${i % 97}`,
          domain: `target-${i % 97}.example`,
          industry: i % 2 === 0 ? 'Technology' : 'Finance',
          employee_count: '501-1000',
        },
        relationship: {
          confidence_score: 50 + (i % 50) + 0.5,
          total_overlap_months: 6 + (i % 60),
          shared_experience: {
            company_name: `Previous ${i % 31}`,
            overlap_months: 6 + (i % 60),
            client_role: 'Sales Director',
            prospect_role: 'Head of Engineering',
            is_current: i % 5 === 0,
          },
        },
        is_target_company: i % 4 !== 0,
        ...(engagements > 0
          ? { engagement: { total_engagements: engagements, last_engagement_date: '2025-03-15', history } }
          : {}),
      });
    }
    results.push({
      client: {
        name: `Client ${c}`,
        first_name: 'Client',
        last_name: String(c),
        linkedin_url: `https://www.linkedin.com/in/client-${c}`,
        record_id: `CRM_${c}`,
        owner_email: `owner${c % 7}@company.example`,
        job_title: 'VP of Sales',
        company_name: 'Acme Corp',
      },
      opportunities: opps,
    });
  }
  return {
    status: 'completed',
    job_id: jobId,
    batch_id: `batch_${jobId}`,
    summary: { total_processed: results.length, total_opportunities: opportunities, processing_time_seconds: 12.5 },
    results,
    custom: options.custom ?? { source: 'generated' },
    timestamp: '2025-03-15T14:30:00Z',
  };
}
