import { makeWebhook } from '@clustr-pipeline/schema';
import { describe, expect, it } from 'vitest';
import { emptyOpportunityArrays, findOpportunitySpans, type OpportunitySpans } from './json-spans.js';
import { jsonDepthExceeds } from './json.js';

const bytes = (text: string) => Buffer.from(text, 'utf8');

/** The text of every element span, per result (null where the result has no opportunities array). */
function elements(body: Buffer, spans: OpportunitySpans): Array<string[] | null> {
  return spans.results.map((array) =>
    array === null ? null : Array.from({ length: array.count }, (_, k) => body.subarray(spans.starts[array.first + k]!, spans.ends[array.first + k]!).toString('utf8')),
  );
}

function scan(text: string): { spans: OpportunitySpans; elements: Array<string[] | null>; envelope: string } | undefined {
  const body = bytes(text);
  const spans = findOpportunitySpans(body);
  if (!spans) return undefined;
  return { spans, elements: elements(body, spans), envelope: emptyOpportunityArrays(body, spans).toString('utf8') };
}

/** Depth as jsonDepthExceeds counts it. */
function depthOf(text: string): number {
  let depth = 0;
  while (jsonDepthExceeds(bytes(text), depth)) depth++;
  return depth;
}

describe('findOpportunitySpans', () => {
  it('finds every opportunity of every result, and empties exactly those arrays', () => {
    const text = '{"status":"completed","results":[{"client":{"name":"A"},"opportunities":[{"opportunity_id":"a"}, {"opportunity_id":"b"}]},{"opportunities":[]},{"client":null},{"opportunities":null},{"opportunities":[ {"opportunity_id":"c"} ]}],"custom":{"results":[1]}}';
    const found = scan(text)!;
    expect(found.elements).toEqual([['{"opportunity_id":"a"}', '{"opportunity_id":"b"}'], [], null, null, ['{"opportunity_id":"c"}']]);
    expect(found.spans.count).toBe(3);
    expect(found.spans.depth).toBe(depthOf(text));
    expect(found.envelope).toBe('{"status":"completed","results":[{"client":{"name":"A"},"opportunities":[]},{"opportunities":[]},{"client":null},{"opportunities":null},{"opportunities":[]}],"custom":{"results":[1]}}');
  });

  it('agrees with JSON.parse on a generated webhook', () => {
    const webhook = makeWebhook({ opportunities: 95, perClient: 10, engagements: 2, custom: { results: [{ opportunities: [1] }] } });
    for (const text of [JSON.stringify(webhook), JSON.stringify(webhook, null, 2), JSON.stringify(webhook, null, '\t')]) {
      const found = scan(text)!;
      expect(found.spans.count).toBe(95);
      expect(found.elements.map((texts) => texts!.map((t) => JSON.parse(t) as unknown))).toEqual(webhook.results!.map((r) => r.opportunities));
      expect(JSON.parse(found.envelope)).toEqual({ ...webhook, results: webhook.results!.map((r) => ({ ...r, opportunities: [] })) });
      expect(found.spans.depth).toBe(depthOf(text));
    }
  });

  it('skips strings correctly: brackets, braces, quotes, escaped quotes and backslashes inside them', () => {
    const tricky = String.raw`{"opportunity_id":"x\"]},{\\","s":"[{\\\"","t":"}}]]\\","u":"\\\\\"}"}`;
    const text = `{"job_id":"a\\"]}","results":[{"client":{"name":"]}{[\\\\"},"opportunities":[${tricky},{"opportunity_id":"y"}]}]}`;
    expect(() => JSON.parse(text) as unknown).not.toThrow();
    const found = scan(text)!;
    expect(found.elements).toEqual([[tricky, '{"opportunity_id":"y"}']]);
    const whole = JSON.parse(text) as { results: Array<Record<string, unknown>> };
    expect(whole.results[0]!.client).toEqual({ name: ']}{[\\' });
    expect(JSON.parse(found.envelope)).toEqual({ ...whole, results: [{ ...whole.results[0], opportunities: [] }] });
  });

  it('handles multi-byte UTF-8, a leading BOM and whitespace everywhere', () => {
    const text = '\ufeff \n{ "status" : "ok😀" , "results" : [ { "client" : { "name" : "Zoë ✓" } , "opportunities" : [ { "opportunity_id" : "é" } ,\r\n\t{ "opportunity_id" : "日本" } ] } ] } \n';
    const found = scan(text)!;
    expect(found.elements).toEqual([['{ "opportunity_id" : "é" }', '{ "opportunity_id" : "日本" }']]);
    expect(found.envelope.startsWith('\ufeff')).toBe(true);
    expect(JSON.parse(found.envelope.slice(1))).toEqual({ status: 'ok😀', results: [{ client: { name: 'Zoë ✓' }, opportunities: [] }] });
  });

  it('compares keys after unescaping', () => {
    const found = scan('{"r\\u0065sults":[{"opportunit\\u0069es":[{"opportunity_id":"a"}]},{"opportunities\\u0000":[{"x":1}]}]}')!;
    expect(found.elements).toEqual([['{"opportunity_id":"a"}'], null]);
    expect(found.envelope).toBe('{"r\\u0065sults":[{"opportunit\\u0069es":[]},{"opportunities\\u0000":[{"x":1}]}]}');
  });

  it('records nested arrays and objects inside opportunities as part of the element', () => {
    const opportunity = '{"opportunity_id":"a","engagement":{"history":[{"type":"PROSPECT_LIKED","tags":[[1,[2]],{"a":[]}]}]},"n":[[[]]]}';
    const text = `{"results":[{"opportunities":[${opportunity},{}]}]}`;
    const found = scan(text)!;
    expect(found.elements).toEqual([[opportunity, '{}']]);
    expect(found.spans.depth).toBe(depthOf(text));
  });

  it.each([
    ['a top-level array', '[{"results":[]}]'],
    ['a top-level string', '"results"'],
    ['no results key', '{"status":"completed","job_id":"j"}'],
    ['results null', '{"results":null}'],
    ['results an object', '{"results":{"opportunities":[]}}'],
    ['a duplicate results key', '{"results":[],"results":[{"opportunities":[{}]}]}'],
    ['a duplicate results key, escaped', '{"results":[],"resul\\u0074s":[]}'],
    ['a result that is not an object', '{"results":[null]}'],
    ['a result that is an array', '{"results":[[]]}'],
    ['a duplicate opportunities key', '{"results":[{"opportunities":[{}],"opportunities":[]}]}'],
    ['a duplicate opportunities key, one not an array', '{"results":[{"opportunities":null,"opportunities":[{}]}]}'],
    ['a duplicate opportunities key, escaped', '{"results":[{"opportunities":[],"\\u006fpportunities":[{}]}]}'],
    ['an opportunity that is not an object', '{"results":[{"opportunities":[{},1]}]}'],
    ['an opportunity that is an array', '{"results":[{"opportunities":[[]]}]}'],
    ['a missing comma between opportunities', '{"results":[{"opportunities":[{} {}]}]}'],
    ['garbage between opportunities', '{"results":[{"opportunities":[{},x{}]}]}'],
    ['a missing colon', '{"results" [{"opportunities":[]}]}'],
    ['an unterminated string', '{"results":[{"opportunities":[{"a":"]}]}'],
    ['an unterminated opportunity', '{"results":[{"opportunities":[{"a":[1]'],
    ['an unterminated object', '{"results":[]'],
    ['trailing bytes', '{"results":[]} {}'],
    ['a second BOM', '\ufeff\ufeff{"results":[]}'],
    ['a key that is not a string', '{results:[]}'],
    ['a broken escape in a key', '{"results\\x":[]}'],
    ['a stray quote in a number', '{"a":1"2","results":[]}'],
    ['an empty value', '{"a":,"results":[]}'],
    ['an empty body', ''],
  ])('is not applicable to %s', (_name, text) => {
    expect(findOpportunitySpans(bytes(text))).toBeUndefined();
  });

  it('leaves the validity of what it skips to the parser (the envelope or a span then fails to parse)', () => {
    const found = scan('{"a":tru,"results":[{"opportunities":[{"b":}]}]}')!;
    expect(found.envelope).toBe('{"a":tru,"results":[{"opportunities":[]}]}');
    expect(found.elements).toEqual([['{"b":}']]);
  });

  it('keeps invalid UTF-8 bytes where they are (in the span or the envelope)', () => {
    const body = Buffer.concat([bytes('{"x":"'), Buffer.from([0xc0, 0xaf]), bytes('","results":[{"opportunities":[{"a":"'), Buffer.from([0xe2, 0x82]), bytes('"}]}]}')]);
    const spans = findOpportunitySpans(body)!;
    expect(spans.count).toBe(1);
    expect([...body.subarray(spans.starts[0]!, spans.ends[0]!)]).toEqual([...bytes('{"a":"'), 0xe2, 0x82, ...bytes('"}')]);
    expect(emptyOpportunityArrays(body, spans).includes(Buffer.from([0xc0, 0xaf]))).toBe(true);
  });
});
