import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { countOpportunities, decodeUtf8Strict, jsonDepthExceeds, jsonTextDepthExceeds } from './json.js';

const bytes = (text: string) => Buffer.from(text, 'utf8');
const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('decodeUtf8Strict', () => {
  it('decodes valid UTF-8 and drops a leading BOM', () => {
    expect(decodeUtf8Strict(bytes('{"a":"é😀"}'))).toBe('{"a":"é😀"}');
    expect(decodeUtf8Strict(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes('{}')]))).toBe('{}');
  });
  it.each([
    ['a lone continuation byte', [0x7b, 0x80, 0x7d]],
    ['an overlong slash', [0xc0, 0xaf]],
    ['a truncated sequence', [0xe2, 0x82]],
    ['an encoded surrogate', [0xed, 0xa0, 0x80]],
    ['latin-1 é', [0x22, 0xe9, 0x22]],
  ])('throws on %s', (_name, data) => {
    expect(() => decodeUtf8Strict(Buffer.from(data))).toThrow(TypeError);
  });
});

describe('jsonDepthExceeds', () => {
  it('counts objects and arrays, not brackets inside strings', () => {
    expect(jsonDepthExceeds(bytes(nested(3)), 3)).toBe(false);
    expect(jsonDepthExceeds(bytes(nested(4)), 3)).toBe(true);
    expect(jsonDepthExceeds(bytes('{"a":{"b":[1,{"c":2}]}}'), 4)).toBe(false);
    expect(jsonDepthExceeds(bytes('{"a":{"b":[1,{"c":2}]}}'), 3)).toBe(true);
    expect(jsonDepthExceeds(bytes(`{"s":"${'['.repeat(100)}"}`), 2)).toBe(false);
    expect(jsonDepthExceeds(bytes(`{"s":"\\"${'{'.repeat(100)}"}`), 2)).toBe(false);
  });
  it('handles a million levels without recursion', () => {
    expect(jsonDepthExceeds(bytes(nested(1_000_000)), 64)).toBe(true);
  });
  it('agrees with the real depth of any JSON value', () => {
    const depthOf = (v: unknown): number =>
      typeof v === 'object' && v !== null ? 1 + Math.max(0, ...Object.values(v as object).map(depthOf)) : 0;
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.integer({ min: 0, max: 8 }), (value, limit) => {
        expect(jsonDepthExceeds(bytes(JSON.stringify(value)), limit)).toBe(depthOf(value) > limit);
      }),
    );
  });
});

describe('jsonTextDepthExceeds', () => {
  it('answers like jsonDepthExceeds, including escaped quotes and backslashes in strings', () => {
    const tricky = [{ s: '\\' }, { s: '\\"[[[[' }, { s: '\\\\', t: [[[[1]]]] }, { 'é😀': ['\u005b', '"{'] }].map((v) => JSON.stringify(v));
    for (const text of [nested(3), nested(4), '{"a":{"b":[1,{"c":2}]}}', `{"s":"${'['.repeat(100)}"}`, ...tricky]) {
      for (const limit of [0, 1, 2, 3, 4, 5]) expect([text, limit, jsonTextDepthExceeds(text, limit)]).toEqual([text, limit, jsonDepthExceeds(bytes(text), limit)]);
    }
    expect(jsonTextDepthExceeds(nested(1_000_000), 64)).toBe(true);
  });
  it('agrees with jsonDepthExceeds on any JSON text', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.integer({ min: 0, max: 8 }), (value, limit) => {
        const text = JSON.stringify(value);
        expect(jsonTextDepthExceeds(text, limit)).toBe(jsonDepthExceeds(bytes(text), limit));
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constantFrom('[', ']', '{', '}', '"', '\\', ':', ',', 'a', '1')), { maxLength: 40 }), fc.integer({ min: 0, max: 4 }), (parts, limit) => {
        const text = JSON.stringify({ k: parts.join(''), v: parts.filter((p) => p === '[').map(() => []) });
        expect(jsonTextDepthExceeds(text, limit)).toBe(jsonDepthExceeds(bytes(text), limit));
      }),
      { numRuns: 500 },
    );
  });
});

describe('countOpportunities', () => {
  it('sums opportunities over results and ignores malformed parts', () => {
    expect(countOpportunities({ results: [{ opportunities: [1, 2] }, { opportunities: [3] }, {}, null, { opportunities: 'x' }] })).toBe(3);
    expect(countOpportunities({})).toBe(0);
    expect(countOpportunities(null)).toBe(0);
    expect(countOpportunities([1])).toBe(0);
  });
});
