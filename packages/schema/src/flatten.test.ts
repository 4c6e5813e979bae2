import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { jobEventSchema, opportunityEventSchema, type JobEvent, type OpportunityEvent } from './events.js';
import { flattenWebhook } from './flatten.js';
import { opportunityEventId, shortHash } from './ids.js';
import { parseWebhook } from './parse.js';
import { webhookArbitrary } from './testing/arbitraries.js';
import { completedSampleEvent } from './testing/samples.js';
import { webhookSchema, type ClustrWebhook } from './webhook.js';

const fixture = (name: string): unknown => JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8'));
const receivedAt = new Date('2026-12-04T10:00:00.123Z');

function parsed(name: string): ClustrWebhook {
  const result = parseWebhook(fixture(name));
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.webhook;
}

describe('flattenWebhook on the vendor samples', () => {
  it('turns the completed sample into one opportunity event with every value in its field', () => {
    const { job, opportunities } = flattenWebhook(parsed('completed.json'), receivedAt);
    expect(opportunities).toHaveLength(1);
    expect(opportunities[0]).toEqual(completedSampleEvent('2026-12-04T10:00:00.123Z'));
    expect(job).toMatchObject({
      event_id: shortHash('job_abc123/completed'),
      status: 'completed',
      total_processed: 2,
      total_opportunities: 15,
      processing_time_seconds: 45.2,
      result_count: 1,
      opportunity_count: 1,
      error_code: null,
      error_message: null,
      error_details: null,
    });
    expect(opportunityEventSchema.safeParse(opportunities[0]).success).toBe(true);
    expect(jobEventSchema.safeParse(job).success).toBe(true);
  });

  it('carries the full engagement history', () => {
    const { opportunities } = flattenWebhook(parsed('completed-full-history.json'), receivedAt);
    expect(opportunities[0]).toMatchObject({
      engagement_total: 3,
      engagement_last_date: '2025-03-15',
      engagement_history: [
        { type: 'PROSPECT_LIKED', date: '2025-03-15', text: null, link: 'https://linkedin.com/...', source: 'linkedin' },
        { type: 'PROSPECT_COMMENTED', date: '2025-02-10', text: 'Great insight!', link: 'https://linkedin.com/...', source: 'linkedin' },
      ],
      custom: { crm_batch_id: 'batch_001', triggered_by: 'daily-sync' },
    });
  });

  it('turns the failed sample into a job event with the error and no opportunities', () => {
    const { job, opportunities } = flattenWebhook(parsed('failed.json'), receivedAt);
    expect(opportunities).toEqual([]);
    expect(job).toEqual({
      event_id: shortHash('job_abc123/failed'),
      schema_version: 1,
      job_id: 'job_abc123',
      batch_id: 'batch_xyz789',
      status: 'failed',
      total_processed: 0,
      total_opportunities: 0,
      processing_time_seconds: 0,
      result_count: 0,
      opportunity_count: 0,
      error_code: 'PROCESSING_ERROR',
      error_message: 'Failed to process contacts',
      error_details: 'Additional error context',
      custom: null,
      webhook_timestamp: '2025-03-15T14:30:00Z',
      received_at: '2026-12-04T10:00:00.123Z',
    } satisfies JobEvent);
  });

  it('keeps non-string error details as JSON text', () => {
    const { job } = flattenWebhook({ status: 'failed', job_id: 'j', error: { details: { row: 3 } } }, receivedAt);
    expect(job.error_details).toBe('{"row":3}');
  });

  it('fills absent and null values with null, never inventing them', () => {
    const { job, opportunities } = flattenWebhook(
      { status: 'completed', job_id: 'j1', results: [{ client: null, opportunities: [{ opportunity_id: 'o1', relationship: { confidence_score: null } }] }] },
      receivedAt,
    );
    const event = opportunities[0]!;
    const nullFields = Object.entries(event).filter(([, v]) => v === null).map(([k]) => k);
    expect(nullFields).toHaveLength(Object.keys(event).length - 6);
    expect(event.engagement_history).toEqual([]);
    expect(job.batch_id).toBeNull();
    expect(job.custom).toBeNull();
  });

  it('has typed outputs', () => {
    expectTypeOf(flattenWebhook).returns.toEqualTypeOf<{ job: JobEvent; opportunities: OpportunityEvent[] }>();
    expectTypeOf<OpportunityEvent['confidence_score']>().toEqualTypeOf<number | null>();
    expectTypeOf<JobEvent['opportunity_count']>().toEqualTypeOf<number>();
  });
});

describe('flattenWebhook properties', () => {
  it('emits exactly one event per opportunity, each a valid v1 event, in payload order', () => {
    fc.assert(
      fc.property(webhookArbitrary(), (webhook) => {
        const { job, opportunities } = flattenWebhook(webhook, receivedAt);
        const expected = (webhook.results ?? []).flatMap((r) => r.opportunities ?? []);
        expect(opportunities.map((o) => o.opportunity_id)).toEqual(expected.map((o) => o.opportunity_id));
        expect(job.opportunity_count).toBe(expected.length);
        expect(job.result_count).toBe((webhook.results ?? []).length);
        for (const event of opportunities) expect(opportunityEventSchema.safeParse(event).success).toBe(true);
        expect(jobEventSchema.safeParse(job).success).toBe(true);
      }),
    );
  });

  it('puts every input value in its field and passes custom through deep-equal', () => {
    fc.assert(
      fc.property(webhookArbitrary(), (webhook) => {
        const { opportunities } = flattenWebhook(webhook, receivedAt);
        let i = 0;
        for (const result of webhook.results ?? []) {
          for (const opp of result.opportunities ?? []) {
            const e = opportunities[i++]!;
            expect(e.client_name).toBe(result.client?.name ?? null);
            expect(e.client_record_id).toBe(result.client?.record_id ?? null);
            expect(e.client_owner_email).toBe(result.client?.owner_email ?? null);
            expect(e.prospect_name).toBe(opp.prospect?.name ?? null);
            expect(e.company_domain).toBe(opp.company?.domain ?? null);
            expect(e.company_employee_count).toBe(opp.company?.employee_count ?? null);
            expect(e.confidence_score).toBe(opp.relationship?.confidence_score ?? null);
            expect(e.total_overlap_months).toBe(opp.relationship?.total_overlap_months ?? null);
            expect(e.shared_company_name).toBe(opp.relationship?.shared_experience?.company_name ?? null);
            expect(e.shared_is_current).toBe(opp.relationship?.shared_experience?.is_current ?? null);
            expect(e.is_target_company).toBe(opp.is_target_company ?? null);
            expect(e.engagement_total).toBe(opp.engagement?.total_engagements ?? null);
            expect(e.engagement_history.map((h) => h.type)).toEqual((opp.engagement?.history ?? []).map((h) => h.type));
            expect(e.custom).toStrictEqual(webhook.custom ?? null);
          }
        }
      }),
    );
  });

  it('derives ids that are stable across runs and independent of receivedAt', () => {
    fc.assert(
      fc.property(webhookArbitrary(), fc.date({ noInvalidDate: true, min: new Date(0) }), (webhook, other) => {
        const a = flattenWebhook(webhook, receivedAt);
        const b = flattenWebhook(structuredClone(webhook), other);
        expect(b.opportunities.map((o) => o.event_id)).toEqual(a.opportunities.map((o) => o.event_id));
        expect(b.job.event_id).toBe(a.job.event_id);
      }),
    );
    // Pinned value: changing the id derivation is a breaking change for every subscriber.
    expect(opportunityEventId('job_abc123', 'opp_abc123')).toBe('6bca918958be0d5aeec967e78eddbc85');
  });

  it('accepts every generated payload and JSON round-trips it unchanged', () => {
    fc.assert(
      fc.property(webhookArbitrary(), (webhook) => {
        expect(webhookSchema.safeParse(JSON.parse(JSON.stringify(webhook))).success).toBe(true);
      }),
    );
  });
});
