import fc from 'fast-check';
import { ENGAGEMENT_TYPES, type ClustrWebhook } from '../webhook.js';

/**
 * fast-check arbitraries for valid webhooks (exported as `@clustr-pipeline/schema/testing`;
 * fast-check is needed only by whoever imports this module).
 */

const maybe = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | null | undefined> =>
  fc.oneof({ weight: 4, arbitrary: arb }, { weight: 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constant(undefined) });

/** Drops keys whose value is `undefined`, as JSON would. */
function defined<T extends Record<string, unknown>>(record: T): T {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined)) as T;
}

const text = fc.string({ maxLength: 24 });
const isoDate = fc
  .date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2030-12-31T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString().slice(0, 10));
const isoDateTime = fc
  .date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2030-12-31T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString());
const months = fc.integer({ min: 0, max: 600 });

export const jsonValueArbitrary: fc.Arbitrary<unknown> = fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown);

export const engagementEntryArbitrary = fc
  .record({
    type: fc.constantFrom(...ENGAGEMENT_TYPES),
    date: maybe(isoDate),
    text: maybe(text),
    link: maybe(text),
    source: maybe(fc.constantFrom('linkedin', 'twitter')),
  })
  .map(defined);

export const opportunityArbitrary = (id: fc.Arbitrary<string>) =>
  fc
    .record({
      opportunity_id: id,
      prospect: maybe(fc.record({ name: maybe(text), linkedin_url: maybe(text), job_title: maybe(text), company_name: maybe(text) }).map(defined)),
      company: maybe(fc.record({ name: maybe(text), domain: maybe(text), industry: maybe(text), employee_count: maybe(text) }).map(defined)),
      relationship: maybe(
        fc
          .record({
            confidence_score: maybe(fc.double({ min: 0, max: 100, noNaN: true })),
            total_overlap_months: maybe(months),
            shared_experience: maybe(
              fc
                .record({ company_name: maybe(text), overlap_months: maybe(months), client_role: maybe(text), prospect_role: maybe(text), is_current: maybe(fc.boolean()) })
                .map(defined),
            ),
          })
          .map(defined),
      ),
      is_target_company: maybe(fc.boolean()),
      engagement: maybe(
        fc
          .record({
            total_engagements: maybe(fc.nat({ max: 10_000 })),
            last_engagement_date: maybe(fc.oneof(isoDate, isoDateTime)),
            history: maybe(fc.array(engagementEntryArbitrary, { maxLength: 4 })),
          })
          .map(defined),
      ),
    })
    .map(defined);

const clientArbitrary = fc
  .record({
    name: maybe(text),
    first_name: maybe(text),
    last_name: maybe(text),
    linkedin_url: maybe(text),
    record_id: maybe(text),
    owner_email: maybe(text),
    job_title: maybe(text),
    company_name: maybe(text),
  })
  .map(defined);

/** Valid webhooks of either documented shape, with unique opportunity ids. */
export function webhookArbitrary(): fc.Arbitrary<ClustrWebhook> {
  let counter = 0;
  const uniqueId = fc.string({ minLength: 1, maxLength: 12 }).map((s) => `${s}#${counter++}`);
  return fc
    .record({
      status: fc.constantFrom('completed', 'failed'),
      job_id: fc.string({ minLength: 1, maxLength: 20 }),
      batch_id: maybe(text),
      summary: maybe(
        fc
          .record({ total_processed: maybe(fc.nat()), total_opportunities: maybe(fc.nat()), processing_time_seconds: maybe(fc.double({ min: 0, max: 1e6, noNaN: true })) })
          .map(defined),
      ),
      results: maybe(fc.array(fc.record({ client: maybe(clientArbitrary), opportunities: maybe(fc.array(opportunityArbitrary(uniqueId), { maxLength: 5 })) }).map(defined), { maxLength: 5 })),
      custom: maybe(jsonValueArbitrary),
      timestamp: maybe(isoDateTime),
      error: maybe(fc.record({ code: maybe(text), message: maybe(text), details: maybe(fc.oneof(text, jsonValueArbitrary)) }).map(defined)),
    })
    .map((w) => defined(w) as ClustrWebhook);
}
