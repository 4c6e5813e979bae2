import { flattenWebhook, jobEventSchema, opportunityEventSchema, parseWebhook } from '@clustr-pipeline/schema';
import { webhookArbitrary } from '@clustr-pipeline/schema/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

/**
 * Property-based fuzzing of the pure half of the ingest: parseWebhook must never throw, and
 * whenever it accepts a body, flattenWebhook must not throw either and every event it produces
 * must validate against the published v1 event schemas (also after a JSON round trip, which is
 * what Kafka carries).
 */

const NUM_RUNS = 2_500;
const RECEIVED_AT = new Date('2026-01-02T03:04:05.678Z');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Hostile leaves: wrong types, edge numbers, odd strings (fast-check's jsonValue has no -0/huge). */
const hostileLeaf: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -0, -1, 1.5, 65_535, 65_536, 4_294_967_296, Number.MAX_SAFE_INTEGER, 1e308, -1e308, 5e-324),
  fc.constantFrom('', ' ', 'completed', 'failed', '2025-03-15', '2025-13-45', '2025-03-15T14:30:00Z', 'NaN', '__proto__', 'constructor', '\u0000', '\ud800', '🚀'),
  fc.string({ maxLength: 30 }),
  fc.double(),
  fc.integer(),
  fc.constant([]),
  fc.constant({}),
);

/** No lone UTF-16 surrogate (String.prototype.isWellFormed is ES2024, past this repo's TS lib). */
const isWellFormed = (s: string): boolean => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);

/** Every path (as key lists) inside a JSON tree. */
function paths(value: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (Array.isArray(value)) value.forEach((v, i) => paths(v, [...prefix, i], out));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) paths(v, [...prefix, k], out);
  return out;
}

type Mutation = { kind: 'drop' | 'replace' | 'retype' | 'wrap' | 'add'; pick: number; leaf: unknown; key: string };

/** Applies one mutation at the `pick`-th path of `tree` (a JSON-cloned webhook). */
function mutate(tree: Json, m: Mutation): unknown {
  const all = paths(tree);
  const path = all[m.pick % all.length]!;
  // (leaves are cloned: fc.constant({}) hands out one shared object, and sharing it could make a cycle)
  if (path.length === 0) return m.kind === 'drop' ? undefined : m.kind === 'wrap' ? [tree] : structuredClone(m.leaf);
  const parent = path.slice(0, -1).reduce<Json>((node, key) => (node as Record<string | number, Json>)[key]!, tree) as Record<string | number, unknown>;
  const key = path.at(-1)!;
  const current = parent[key];
  switch (m.kind) {
    case 'drop':
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key];
      break;
    case 'replace':
      parent[key] = structuredClone(m.leaf);
      break;
    case 'retype':
      // The same information in another JSON type: number ↔ string, object → array, etc.
      parent[key] =
        typeof current === 'number' ? String(current)
        : typeof current === 'string' ? (Number.isNaN(Number(current)) ? current.length : Number(current))
        : typeof current === 'boolean' ? String(current)
        : Array.isArray(current) ? Object.fromEntries(current.map((v, i) => [String(i), v]))
        : current !== null && typeof current === 'object' ? Object.values(current)
        : 'null';
      break;
    case 'wrap':
      parent[key] = [current];
      break;
    case 'add':
      if (current !== null && typeof current === 'object' && !Array.isArray(current)) (current as Record<string, unknown>)[m.key] = structuredClone(m.leaf);
      else parent[key] = { [m.key]: structuredClone(m.leaf) };
      break;
  }
  return tree;
}

const mutationArbitrary: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('drop', 'replace', 'retype', 'wrap', 'add'),
  pick: fc.nat(),
  leaf: hostileLeaf,
  key: fc.oneof(fc.constantFrom('opportunity_id', 'status', 'job_id', 'results', 'history', 'type', 'custom', 'constructor', 'toString'), fc.string({ maxLength: 8 })),
});

/** The parse → flatten → validate pipeline; returns what happened so properties can count it. */
function check(body: unknown): 'rejected' | 'accepted' {
  const parsed = parseWebhook(body);
  if (!parsed.ok) {
    expect(parsed.issues.length).toBeGreaterThan(0);
    for (const issue of parsed.issues) expect(typeof issue.path).toBe('string');
    return 'rejected';
  }
  const flat = flattenWebhook(parsed.webhook, RECEIVED_AT);
  const expectedOpportunities = (parsed.webhook.results ?? []).reduce((n, r) => n + (r.opportunities?.length ?? 0), 0);
  expect(flat.opportunities).toHaveLength(expectedOpportunities);
  const job = jobEventSchema.safeParse(flat.job);
  expect(job.success, JSON.stringify(job.error?.issues)).toBe(true);
  expect(jobEventSchema.safeParse(JSON.parse(JSON.stringify(flat.job))).success).toBe(true);
  for (const event of flat.opportunities) {
    const result = opportunityEventSchema.safeParse(event);
    expect(result.success, JSON.stringify(result.error?.issues)).toBe(true);
    expect(opportunityEventSchema.safeParse(JSON.parse(JSON.stringify(event))).success).toBe(true);
    expect(event.job_id).toBe(flat.job.job_id);
  }
  return 'accepted';
}

describe('fuzz: parseWebhook + flattenWebhook', () => {
  it(`never throws on arbitrary JSON (${NUM_RUNS} runs)`, () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        check(value);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it(`never throws on JSON shaped like a webhook with hostile leaves (${NUM_RUNS} runs)`, () => {
    const orHostile = <T,>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> => fc.oneof({ arbitrary: valid, weight: 3 }, { arbitrary: hostileLeaf, weight: 1 });
    const opportunity = fc.dictionary(fc.constantFrom('opportunity_id', 'prospect', 'company', 'relationship', 'is_target_company', 'engagement', 'x'), fc.oneof(hostileLeaf, fc.dictionary(fc.string({ maxLength: 20 }), hostileLeaf, { maxKeys: 4 })));
    const shaped = fc.record(
      {
        status: orHostile(fc.constantFrom('completed', 'failed')),
        job_id: orHostile(fc.string({ minLength: 1, maxLength: 10 })),
        results: fc.oneof(hostileLeaf, fc.array(fc.record({ client: fc.oneof(hostileLeaf, fc.dictionary(fc.string({ maxLength: 10 }), hostileLeaf)), opportunities: fc.oneof(hostileLeaf, fc.array(opportunity, { maxLength: 4 })) }, { requiredKeys: [] }), { maxLength: 3 })),
        // Mostly well-formed (so that accepted bodies are common), sometimes hostile.
        summary: orHostile(fc.record({ total_processed: fc.nat(), total_opportunities: fc.nat() }, { requiredKeys: [] })),
        custom: orHostile(fc.dictionary(fc.string({ maxLength: 10 }), hostileLeaf, { maxKeys: 4 })),
        timestamp: orHostile(fc.date({ noInvalidDate: true, min: new Date('2000-01-01'), max: new Date('2099-12-31') }).map((d) => d.toISOString())),
        error: orHostile(fc.constant(null)),
      },
      { requiredKeys: [] },
    );
    let accepted = 0;
    fc.assert(
      fc.property(shaped, (value) => {
        if (check(value) === 'accepted') accepted++;
      }),
      { numRuns: NUM_RUNS },
    );
    console.log(`hostile-leaf webhooks accepted: ${accepted}/${NUM_RUNS}`);
    // Both outcomes must be exercised: ~9% (about 225) are accepted, so 125 cannot be missed by chance.
    expect(accepted).toBeGreaterThan(NUM_RUNS / 20);
  });

  it(`valid webhooks stay valid and flatten cleanly (${NUM_RUNS} runs)`, () => {
    fc.assert(
      fc.property(webhookArbitrary(), (webhook) => {
        expect(check(JSON.parse(JSON.stringify(webhook)))).toBe('accepted');
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it(`mutated valid webhooks (drop / replace / retype / wrap / add, 1–4 times) never break parse or flatten (${NUM_RUNS} runs)`, () => {
    const outcomes = { accepted: 0, rejected: 0 };
    fc.assert(
      fc.property(webhookArbitrary(), fc.array(mutationArbitrary, { minLength: 1, maxLength: 4 }), (webhook, mutations) => {
        let tree: unknown = JSON.parse(JSON.stringify(webhook)) as Json;
        for (const m of mutations) {
          if (tree === undefined) break;
          tree = mutate(tree as Json, m);
        }
        outcomes[check(tree)]++;
      }),
      { numRuns: NUM_RUNS },
    );
    // Both branches must really be exercised.
    expect(outcomes.accepted).toBeGreaterThan(NUM_RUNS / 20);
    expect(outcomes.rejected).toBeGreaterThan(NUM_RUNS / 20);
  });

  // Strings with lone surrogates (valid JSON such as "\ud800") are data like any other: the
  // flattener passes them through unchanged and the Kafka message round-trips them.
  it('passes strings with lone surrogates through unchanged', () => {
    fc.assert(
      fc.property(fc.tuple(fc.string({ maxLength: 8 }), fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff'), fc.string({ maxLength: 8 })).map((parts) => parts.join('')), (name) => {
        const parsed = parseWebhook({ status: 'completed', job_id: 'j', results: [{ opportunities: [{ opportunity_id: 'o', prospect: { name } }] }] });
        expect(parsed.ok).toBe(true);
        if (!parsed.ok) return;
        const event = flattenWebhook(parsed.webhook, RECEIVED_AT).opportunities[0]!;
        expect(isWellFormed(event.prospect_name!)).toBe(false);
        expect((JSON.parse(JSON.stringify(event)) as { prospect_name: string }).prospect_name).toBe(name);
      }),
      { numRuns: 500 },
    );
  });
});
