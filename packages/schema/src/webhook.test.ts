import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { flattenWebhook } from './flatten.js';
import { formatPath, parseWebhook } from './parse.js';
import { webhookArbitrary } from './testing/arbitraries.js';

const fixture = (name: string): Record<string, unknown> => JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8'));

describe('webhook schema', () => {
  it.each(['completed.json', 'failed.json', 'completed-full-history.json'])('accepts the vendor sample %s', (name) => {
    expect(parseWebhook(fixture(name)).ok).toBe(true);
  });

  it('accepts the bare minimum: status and job_id', () => {
    expect(parseWebhook({ status: 'completed', job_id: 'j' }).ok).toBe(true);
  });

  it('tolerates unknown fields at every level', () => {
    const body = fixture('completed-full-history.json');
    const r = (body.results as Array<Record<string, unknown>>)[0]!;
    const opp = (r.opportunities as Array<Record<string, unknown>>)[0]!;
    Object.assign(body, { new_top_level: { a: 1 } });
    Object.assign(r, { score_v2: 3 });
    Object.assign(opp, { ai_summary: 'x', relationship: { ...(opp.relationship as object), strength: 'high' } });
    expect(parseWebhook(body).ok).toBe(true);
  });

  it.each([
    [{ job_id: 'j' }, 'status'],
    [{ status: 'completed' }, 'job_id'],
    [{ status: 'completed', job_id: '' }, 'job_id'],
    [{ status: 'completed', job_id: 'j', results: [{ opportunities: [{}] }] }, 'results[0].opportunities[0].opportunity_id'],
    [{ status: 'completed', job_id: 'j', results: [{ opportunities: [{ opportunity_id: 'o', relationship: { confidence_score: '85' } }] }] }, 'results[0].opportunities[0].relationship.confidence_score'],
    [{ status: 'completed', job_id: 'j', results: [{ opportunities: [{ opportunity_id: 'o', relationship: { total_overlap_months: 70000 } }] }] }, 'results[0].opportunities[0].relationship.total_overlap_months'],
    [{ status: 'completed', job_id: 'j', results: [{ opportunities: [{ opportunity_id: 'o', engagement: { history: [{ type: 'WAVED' }] } }] }] }, 'results[0].opportunities[0].engagement.history[0].type'],
    [{ status: 'completed', job_id: 'j', timestamp: 'yesterday' }, 'timestamp'],
    [{ status: 'completed', job_id: 'j', results: {} }, 'results'],
    [{ status: 1, job_id: 'j' }, 'status'],
  ])('rejects %j naming the path %s', (body, path) => {
    const result = parseWebhook(body);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.issues.map((i) => i.path)).toContain(path);
  });

  it('rejects non-objects at the root', () => {
    for (const body of [null, [], 'x', 3, true]) {
      const result = parseWebhook(body);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.issues[0]!.path).toBe('(root)');
    }
  });

  it('formats paths like JSON paths', () => {
    expect(formatPath(['results', 0, 'opportunities', 12, 'opportunity_id'])).toBe('results[0].opportunities[12].opportunity_id');
    expect(formatPath([])).toBe('(root)');
  });

  it('never throws on arbitrary input, and flattening accepted input never throws', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.jsonValue(), webhookArbitrary()), (body) => {
        const result = parseWebhook(body);
        if (result.ok) flattenWebhook(result.webhook, new Date());
      }),
      { numRuns: 500 },
    );
  });

  it('does not let __proto__ keys change prototypes', () => {
    const body = JSON.parse('{"status":"completed","job_id":"j","__proto__":{"polluted":true},"custom":{"__proto__":{"x":1}}}');
    const result = parseWebhook(body);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    if (result.ok) {
      const { job } = flattenWebhook(result.webhook, new Date());
      expect(({} as Record<string, unknown>).x).toBeUndefined();
      expect(JSON.parse(JSON.stringify(job.custom))).toEqual(JSON.parse('{"__proto__":{"x":1}}'));
    }
  });
});
