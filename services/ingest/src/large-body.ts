import type { Opportunity } from '@clustr-pipeline/schema';
import { emptyOpportunityArrays, findOpportunitySpans, type OpportunitySpans } from './json-spans.js';
import { decodeUtf8Strict } from './json.js';
import type { OpportunityList } from './messages.js';

/**
 * The large-body path: a webhook body of this many bytes (decompressed) or more is not decoded
 * and parsed as a whole; see LargeJsonBody.
 */
export const LARGE_BODY_BYTES = 8 * 1024 * 1024;

/** Parses JSON text with the body parser's rules (fastify's secure parser); throws when it is not valid JSON. */
export type JsonParse = (text: string) => unknown;

/** A whole body parsed the usual way (what the body parser gives small bodies). */
export interface ParsedBody {
  body: unknown;
  /** See `FastifyRequest.jsonTooDeep`. */
  jsonTooDeep: boolean | null;
}

/**
 * A large JSON body, held as its raw bytes, its envelope and the byte span of every opportunity,
 * so that neither its decoded text (as large as the body) nor its whole parsed tree (~3x the body)
 * ever exists. The body parser leaves one on `request.body` instead of the parsed body.
 *
 * - `envelope` is the body with every `results[].opportunities` array emptied, decoded strictly
 *   and parsed with the same parser as a whole body would be.
 * - `opportunities(i)` parses result i's opportunities from their bytes, a slice at a time, on
 *   demand (the same parser, strictly decoded); nothing parsed is retained.
 * - `parseWhole()` is the usual path: the caller takes it whenever anything about the body is not
 *   plainly valid, so that errors (400 invalid UTF-8/JSON, 422 issues, ...) are exactly the usual ones.
 *
 * Built only when the bytes have the expected shape and the envelope parses; the opportunity
 * spans are not parsed yet (a span that does not parse makes `opportunities(i).slice` throw).
 */
export class LargeJsonBody {
  readonly raw: Buffer;
  /** The body with every opportunities array emptied, parsed. */
  readonly envelope: unknown;
  readonly #spans: OpportunitySpans;
  readonly #parse: JsonParse;
  readonly #parseWhole: () => ParsedBody;

  private constructor(raw: Buffer, envelope: unknown, spans: OpportunitySpans, parse: JsonParse, parseWhole: () => ParsedBody) {
    this.raw = raw;
    this.envelope = envelope;
    this.#spans = spans;
    this.#parse = parse;
    this.#parseWhole = parseWhole;
  }

  /** The large body of `raw`, or undefined when the bytes do not have the expected shape or the envelope does not parse (then parse the whole body). */
  static from(raw: Buffer, parse: JsonParse, parseWhole: () => ParsedBody): LargeJsonBody | undefined {
    const spans = findOpportunitySpans(raw);
    if (!spans) return undefined;
    let envelope: unknown;
    try {
      envelope = parse(decodeUtf8Strict(emptyOpportunityArrays(raw, spans)));
    } catch {
      return undefined;
    }
    return envelopeMatches(envelope, spans) ? new LargeJsonBody(raw, envelope, spans, parse, parseWhole) : undefined;
  }

  /** Deepest nesting of objects/arrays in the body (as `jsonDepthExceeds` counts). */
  get depth(): number {
    return this.#spans.depth;
  }

  /** Opportunities over all results: the sum of `results[].opportunities[].length`, as `countOpportunities` counts. */
  get opportunityCount(): number {
    return this.#spans.count;
  }

  /** Result i's opportunities, parsed on demand; undefined when its "opportunities" is absent or not an array (see the envelope). */
  opportunities(resultIndex: number): OpportunityList | undefined {
    const array = this.#spans.results[resultIndex];
    if (!array) return undefined;
    const { starts, ends } = this.#spans;
    return new SpanOpportunities(this.raw, starts.subarray(array.first, array.first + array.count), ends.subarray(array.first, array.first + array.count), this.#parse);
  }

  /** The whole body, parsed the usual way; throws the usual errors (400 invalid UTF-8 / JSON). */
  parseWhole(): ParsedBody {
    return this.#parseWhole();
  }
}

/** The envelope has, where the scan found each opportunities array, an empty array. */
function envelopeMatches(envelope: unknown, spans: OpportunitySpans): boolean {
  if (!isObject(envelope)) return false;
  const results = envelope.results;
  if (!Array.isArray(results) || results.length !== spans.results.length) return false;
  return spans.results.every((array, i) => {
    if (array === null) return true;
    const result: unknown = results[i];
    return isObject(result) && Array.isArray(result.opportunities) && result.opportunities.length === 0;
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One result's opportunities, parsed from their bytes a slice at a time: the slice's bytes are contiguous (elements, commas, whitespace), so one parse of `[…]` per slice. */
class SpanOpportunities implements OpportunityList {
  readonly #raw: Buffer;
  readonly #starts: Float64Array;
  readonly #ends: Float64Array;
  readonly #parse: JsonParse;

  constructor(raw: Buffer, starts: Float64Array, ends: Float64Array, parse: JsonParse) {
    this.#raw = raw;
    this.#starts = starts;
    this.#ends = ends;
    this.#parse = parse;
  }

  get length(): number {
    return this.#starts.length;
  }

  /** Opportunities `start` (≥ 0) up to `end` (exclusive, clamped to the length). Throws when their bytes are not valid UTF-8 or JSON. */
  slice(start: number, end: number): Opportunity[] {
    const to = Math.min(end, this.length);
    if (start >= to) return [];
    const text = decodeUtf8Strict(this.#raw.subarray(this.#starts[start]!, this.#ends[to - 1]!));
    const parsed = this.#parse(`[${text}]`);
    if (!Array.isArray(parsed) || parsed.length !== to - start) throw new Error(`opportunities ${start}..${to} did not parse to ${to - start} elements`);
    return parsed as Opportunity[];
  }
}
