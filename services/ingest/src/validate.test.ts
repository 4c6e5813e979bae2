import { flattenWebhook, makeWebhook, parseWebhook } from '@clustr-pipeline/schema';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fixture } from './testing/helpers.js';
import { validateWebhook } from './validate.js';

const receivedAt = new Date('2026-01-02T03:04:05.678Z');

describe('validateWebhook', () => {
  it('accepts what parseWebhook accepts, returns the body itself, and flattens to the same events', () => {
    for (const body of [fixture('completed'), fixture('failed'), makeWebhook({ opportunities: 321, jobId: 'j', engagements: 2, custom: { deep: [{ a: 1 }] } })]) {
      const copy = JSON.parse(JSON.stringify(body)) as unknown;
      const reference = parseWebhook(copy);
      const result = validateWebhook(copy);
      expect(result.ok).toBe(true);
      expect(reference.ok).toBe(true);
      if (!result.ok || !reference.ok) continue;
      expect(result.webhook).toBe(copy);
      expect(JSON.stringify(flattenWebhook(result.webhook, receivedAt))).toBe(JSON.stringify(flattenWebhook(reference.webhook, receivedAt)));
    }
  });

  it('rejects with exactly the issues of parseWebhook', () => {
    const bad = [
      { ...fixture('completed'), results: [{ opportunities: [{ opportunity_id: '' }, { opportunity_id: 'ok', relationship: { total_overlap_months: -1 } }] }] },
      { ...fixture('completed'), job_id: 5, results: [{ opportunities: [{}] }] },
      { ...fixture('completed'), results: [{ opportunities: 'nope' }] },
      { ...fixture('completed'), results: [{ client: 1, opportunities: [{ opportunity_id: 'x', engagement: { history: [{ type: 'NOPE' }] } }] }] },
      null,
      [],
      'x',
    ];
    for (const body of bad) {
      const reference = parseWebhook(body);
      expect(reference.ok).toBe(false);
      expect(validateWebhook(body)).toEqual(reference);
    }
  });

  it('agrees with parseWebhook on arbitrary mutations of a valid webhook', () => {
    const base = JSON.stringify(makeWebhook({ opportunities: 3, jobId: 'j', perClient: 2, engagements: 1 }));
    const leaf = fc.oneof(fc.constant(null), fc.boolean(), fc.integer({ min: -5, max: 70_000 }), fc.double(), fc.string(), fc.constant('2025-03-15'), fc.constant([]), fc.constant({}));
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(), fc.nat(), leaf), { minLength: 1, maxLength: 3 }), (edits) => {
        const body = JSON.parse(base) as Record<string, unknown>;
        for (const [a, b, value] of edits) {
          // Walk to a random container and overwrite one of its keys.
          let node: Record<string, unknown> = body;
          for (let depth = 0; depth < a % 6; depth++) {
            const children = Object.values(node).filter((v): v is Record<string, unknown> => typeof v === 'object' && v !== null);
            if (children.length === 0) break;
            node = children[(a + depth) % children.length]!;
          }
          const keys = Object.keys(node);
          if (keys.length > 0) node[keys[b % keys.length]!] = value;
        }
        const reference = parseWebhook(body);
        const result = validateWebhook(body);
        expect(result.ok).toBe(reference.ok);
        if (!reference.ok) expect(result).toEqual(reference);
      }),
      { numRuns: 400 },
    );
  });
});
