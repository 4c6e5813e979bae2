import { makeWebhook } from '@clustr-pipeline/schema';
import fc from 'fast-check';
import Fastify, { type FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { decodeUtf8Strict } from './json.js';
import { LargeJsonBody, type JsonParse, type ParsedBody } from './large-body.js';

// The body plugin's parser: fastify's secure JSON parser (rejects __proto__ / constructor.prototype).
const fastifyParser = Fastify().getDefaultJsonParser('error', 'error');
const parse: JsonParse = (text) => {
  let result: { error: Error | null; value: unknown } | undefined;
  fastifyParser({} as FastifyRequest, text, (error, value) => (result = { error, value }));
  if (result!.error) throw result!.error;
  return result!.value;
};
const noWhole = (): ParsedBody => {
  throw new Error('parseWhole called');
};

/** What the whole-body path parses, or undefined when it refuses the body. */
function parseWhole(body: Buffer): unknown {
  try {
    return parse(decodeUtf8Strict(body));
  } catch {
    return undefined;
  }
}

/** The body put back together from the large body: envelope + every opportunity, parsed from the spans. */
function assemble(large: LargeJsonBody, sliceSize = 3): unknown {
  const envelope = large.envelope as { results: Array<Record<string, unknown>> };
  return {
    ...envelope,
    results: envelope.results.map((result, i) => {
      const list = large.opportunities(i);
      if (!list) return result;
      const opportunities: unknown[] = [];
      for (let start = 0; start < list.length; start += sliceSize) opportunities.push(...list.slice(start, start + sliceSize));
      return { ...result, opportunities };
    }),
  };
}

describe('LargeJsonBody', () => {
  const webhook = makeWebhook({ opportunities: 25, perClient: 10, engagements: 2, jobId: 'j' });
  const text = JSON.stringify(webhook);

  it('holds the envelope, the count and the depth, and parses opportunities on demand, a slice at a time', () => {
    const large = LargeJsonBody.from(Buffer.from(text), parse, noWhole)!;
    expect(large).toBeDefined();
    expect(large.opportunityCount).toBe(25);
    expect(large.depth).toBe(8); // top, results, result, opportunities, opportunity, engagement, history, entry
    expect(large.envelope).toEqual({ ...webhook, results: webhook.results!.map((r) => ({ ...r, opportunities: [] })) });
    const list = large.opportunities(2)!;
    expect(list.length).toBe(5);
    expect(list.slice(1, 3)).toEqual(webhook.results![2]!.opportunities!.slice(1, 3));
    expect(list.slice(3, 100)).toEqual(webhook.results![2]!.opportunities!.slice(3));
    expect(list.slice(5, 10)).toEqual([]);
    expect(JSON.stringify(assemble(large))).toBe(text);
  });

  it('passes parseWhole through', () => {
    const parsed: ParsedBody = { body: { whole: true }, jsonTooDeep: false };
    expect(LargeJsonBody.from(Buffer.from(text), parse, () => parsed)!.parseWhole()).toBe(parsed);
  });

  it('has no list for a result whose opportunities are null or absent', () => {
    const large = LargeJsonBody.from(Buffer.from('{"results":[{"opportunities":null},{},{"opportunities":[]}]}'), parse, noWhole)!;
    expect(large.opportunities(0)).toBeUndefined();
    expect(large.opportunities(1)).toBeUndefined();
    expect(large.opportunities(2)!.length).toBe(0);
  });

  it('is not built when the envelope does not parse (invalid JSON or UTF-8, poisoned keys)', () => {
    for (const body of [
      '{"results":[{"opportunities":[{}]}],"a":tru}',
      '{"__proto__":{"x":1},"results":[{"opportunities":[{}]}]}',
      '{"constructor":{"prototype":{"x":1}},"results":[]}',
      '{"results":[{"client":{"name":"\u0001"},"opportunities":[{}]}]}',
    ]) {
      expect(LargeJsonBody.from(Buffer.from(body), parse, noWhole)).toBeUndefined();
    }
    const latin1 = Buffer.concat([Buffer.from('{"x":"'), Buffer.from([0xe9]), Buffer.from('","results":[]}')]);
    expect(LargeJsonBody.from(latin1, parse, noWhole)).toBeUndefined();
  });

  it('throws from slice when opportunity bytes are not valid JSON or UTF-8, or poisoned', () => {
    for (const body of [
      Buffer.from('{"results":[{"opportunities":[{"a":1},{"a":tru}]}]}'),
      Buffer.from('{"results":[{"opportunities":[{"a":1},{"__proto__":{"x":1}}]}]}'),
      Buffer.concat([Buffer.from('{"results":[{"opportunities":[{"a":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}]}]}')]),
    ]) {
      const large = LargeJsonBody.from(body, parse, noWhole)!;
      expect(large).toBeDefined();
      expect(() => large.opportunities(0)!.slice(0, 2)).toThrow();
    }
  });

  it('never accepts what the whole-body parser refuses, and never parses differently (fuzzed bytes)', () => {
    const base = Buffer.from(JSON.stringify(makeWebhook({ opportunities: 5, perClient: 2, engagements: 1, jobId: 'j', custom: { results: [1], s: 'a"]}' } })));
    const snippets = ['{', '}', '[', ']', '"', ',', ':', '\\', ' ', '1', 'e', 'u', '\\u0069', '\\"', '"opportunities":[{}],', '"results":[],', '"opportunities":null,', '{"a":[1,{"b":"]"}]}', '"__proto__":{},', 'é'];
    const edit = fc.tuple(fc.nat(), fc.constantFrom('insert', 'delete', 'replace'), fc.oneof(fc.constantFrom(...snippets).map((s) => Buffer.from(s)), fc.integer({ min: 0, max: 255 }).map((b) => Buffer.from([b]))));
    let assembled = 0;
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 3 }), (edits) => {
        let body = base;
        for (const [at, op, bytes] of edits) {
          const p = at % (body.length + 1);
          const tail = body.subarray(op === 'insert' ? p : Math.min(body.length, p + (op === 'delete' ? 1 + (at % 7) : bytes.length)));
          body = Buffer.concat([body.subarray(0, p), op === 'delete' ? Buffer.alloc(0) : bytes, tail]);
        }
        const large = LargeJsonBody.from(body, parse, noWhole);
        if (!large) return;
        let result: unknown;
        try {
          result = assemble(large);
        } catch {
          return; // the caller falls back to the whole body
        }
        assembled++;
        const whole = parseWhole(body);
        expect(whole).toBeDefined();
        expect(JSON.stringify(result)).toBe(JSON.stringify(whole));
      }),
      { numRuns: 3_000 },
    );
    // Most single edits land in string contents: the property is not vacuous.
    expect(assembled).toBeGreaterThan(300);
  });
});
