import { opportunitySchema, parseWebhook, resultSchema, webhookSchema, type ClustrWebhook, type ParseResult } from '@clustr-pipeline/schema';
import { z } from 'zod';
import type { LargeJsonBody } from './large-body.js';
import { FLATTEN_SLICE, type LazyWebhook, type OpportunityList } from './messages.js';

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
 * NOTE: every check is the schema package's own zod schema: no second copy of the rules here.
 */
export function validateWebhook(body: unknown): ParseResult {
  if (envelopeSchema.safeParse(body).success && opportunitiesValid(body as ClustrWebhook)) return { ok: true, webhook: body as ClustrWebhook };
  return parseWebhook(body);
}

function opportunitiesValid(body: ClustrWebhook): boolean {
  for (const result of body.results ?? []) {
    for (const opportunity of result.opportunities ?? []) {
      if (!opportunitySchema.safeParse(opportunity).success) return false;
    }
  }
  return true;
}

/**
 * `validateWebhook` for a large body (see LargeJsonBody), with the same schemas: the envelope, then
 * every opportunity, parsed from its bytes a slice at a time and dropped once checked. Returns the
 * webhook with its opportunities produced on demand (parsed again while publishing), or undefined
 * when anything fails (the envelope, an opportunity, or parsing one): the caller then takes the
 * whole-body path, which reports exactly what is wrong.
 */
export function validateLargeBody(body: LargeJsonBody, sliceSize = FLATTEN_SLICE): LazyWebhook | undefined {
  if (!envelopeSchema.safeParse(body.envelope).success) return undefined;
  const webhook = body.envelope as ClustrWebhook;
  const results = webhook.results ?? [];
  // Results whose "opportunities" is null or absent have none (the envelope schema allows nothing else).
  const lists: OpportunityList[] = results.map((_, i) => body.opportunities(i) ?? []);
  try {
    for (const list of lists) {
      for (let start = 0; start < list.length; start += sliceSize) {
        for (const opportunity of list.slice(start, start + sliceSize)) {
          if (!opportunitySchema.safeParse(opportunity).success) return undefined;
        }
      }
    }
  } catch {
    // Not valid UTF-8 or JSON.
    return undefined;
  }
  return { webhook, opportunities: (i) => lists[i]! };
}
