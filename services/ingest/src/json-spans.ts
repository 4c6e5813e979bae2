/**
 * Finds, in the raw UTF-8 bytes of a webhook, where each opportunity is: one pass over the bytes,
 * no decoding, no parsing. Pure, no I/O.
 *
 * The shape it recognises is `{ …, "results": [ { …, "opportunities": [ {…}, {…} ], … }, … ], … }`.
 * Anything else (another top-level value, "results" missing or not an array of objects, a
 * duplicate "results" key, a duplicate "opportunities" key in a result, an element of an
 * opportunities array that is not an object, bytes between elements other than whitespace and
 * commas, trailing bytes) answers undefined: "not applicable", the caller parses the whole body.
 *
 * Keys are compared after JSON unescaping ("opportunit\u0069es" is "opportunities"). The scanner
 * checks the structure it walks, not the validity of what it skips (string contents, numbers,
 * literals, nested values): every byte it does not cut out stays in the envelope, and every byte
 * it cuts out is inside an element span, and both are parsed by a real JSON parser afterwards.
 */

import { decodeUtf8Strict } from './json.js';

/** Where one result's "opportunities" array is, and which elements (spans) it holds. */
export interface OpportunityArray {
  /** Offset of the array's `[`. */
  open: number;
  /** Offset of the array's `]`. */
  close: number;
  /** Index of its first element in `OpportunitySpans.starts` / `ends`. */
  first: number;
  /** Its number of elements. */
  count: number;
}

export interface OpportunitySpans {
  /** One entry per element of "results", in order: its opportunities array, or null when it has no "opportunities" key or its value is not an array. */
  results: Array<OpportunityArray | null>;
  /** Element k (over all the arrays, in order) is the bytes `[starts[k], ends[k])`: an object, `{` to `}`. */
  starts: Float64Array;
  ends: Float64Array;
  /** Elements over all the arrays. */
  count: number;
  /** Deepest nesting of objects/arrays in the whole body, counted as `jsonDepthExceeds` counts. */
  depth: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** Bytes a number or literal (true/false/null) may consist of; anything else outside a string is structure or an error. */
const SCALAR = new Uint8Array(256);
for (const c of '0123456789+-.eEtruefalsn') SCALAR[c.charCodeAt(0)] = 1;

class NotApplicable extends Error {}
const notApplicable = new NotApplicable();

function fail(): never {
  throw notApplicable;
}

class Scanner {
  readonly #bytes: Uint8Array;
  readonly #results: Array<OpportunityArray | null> = [];
  #starts = new Float64Array(1024);
  #ends = new Float64Array(1024);
  #count = 0;
  #depth = 0;
  /** The array found by the last #opportunities call. */
  #array: OpportunityArray | null = null;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  scan(): OpportunitySpans {
    const b = this.#bytes;
    // A leading BOM is what the strict decoder drops.
    let p = b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0;
    p = this.#whitespace(p);
    if (b[p] !== OPEN_BRACE) fail();
    let sawResults = false;
    p = this.#object(p, 1, (keyStart, keyEnd, value) => {
      if (!this.#keyIs(keyStart, keyEnd, 'results')) return this.#skipValue(value, 1);
      if (sawResults || b[value] !== OPEN_BRACKET) fail();
      sawResults = true;
      return this.#resultsArray(value);
    });
    if (!sawResults || this.#whitespace(p) !== b.length) fail();
    return { results: this.#results, starts: this.#starts.subarray(0, this.#count), ends: this.#ends.subarray(0, this.#count), count: this.#count, depth: this.#depth };
  }

  /** The results array at `p` (depth 2): each element must be an object. Returns the offset after its `]`. */
  #resultsArray(p: number): number {
    const b = this.#bytes;
    this.#reach(2);
    p = this.#whitespace(p + 1);
    if (b[p] === CLOSE_BRACKET) return p + 1;
    for (;;) {
      if (b[p] !== OPEN_BRACE) fail();
      let found = false;
      let array: OpportunityArray | null = null;
      p = this.#object(p, 3, (keyStart, keyEnd, value) => {
        if (!this.#keyIs(keyStart, keyEnd, 'opportunities')) return this.#skipValue(value, 3);
        if (found) fail();
        found = true;
        if (b[value] !== OPEN_BRACKET) return this.#skipValue(value, 3);
        const end = this.#opportunities(value);
        array = this.#array;
        return end;
      });
      this.#results.push(array);
      p = this.#whitespace(p);
      if (b[p] === COMMA) p = this.#whitespace(p + 1);
      else if (b[p] === CLOSE_BRACKET) return p + 1;
      else fail();
    }
  }

  /** An opportunities array at `p` (depth 4): records each element's span. Returns the offset after its `]`. */
  #opportunities(p: number): number {
    const b = this.#bytes;
    this.#reach(4);
    const open = p;
    const first = this.#count;
    p = this.#whitespace(p + 1);
    if (b[p] !== CLOSE_BRACKET) {
      for (;;) {
        if (b[p] !== OPEN_BRACE) fail();
        const end = this.#skipContainer(p, 4);
        this.#push(p, end);
        p = this.#whitespace(end);
        if (b[p] === COMMA) p = this.#whitespace(p + 1);
        else if (b[p] === CLOSE_BRACKET) break;
        else fail();
      }
    }
    this.#array = { open, close: p, first, count: this.#count - first };
    return p + 1;
  }

  /**
   * The object at `p`, itself at nesting `depth`: for each member, `onValue(keyStart, keyEnd,
   * valueStart)` must return the offset after the value. Returns the offset after the `}`.
   */
  #object(p: number, depth: number, onValue: (keyStart: number, keyEnd: number, value: number) => number): number {
    const b = this.#bytes;
    this.#reach(depth);
    p = this.#whitespace(p + 1);
    if (b[p] === CLOSE_BRACE) return p + 1;
    for (;;) {
      if (b[p] !== QUOTE) fail();
      const keyEnd = this.#stringEnd(p);
      const colon = this.#whitespace(keyEnd);
      if (b[colon] !== COLON) fail();
      p = this.#whitespace(onValue(p, keyEnd, this.#whitespace(colon + 1)));
      if (b[p] === COMMA) p = this.#whitespace(p + 1);
      else if (b[p] === CLOSE_BRACE) return p + 1;
      else fail();
    }
  }

  /** Skips the value at `p`, which sits inside a container at nesting `depth`. Returns the offset after it. */
  #skipValue(p: number, depth: number): number {
    const b = this.#bytes;
    const c = b[p];
    if (c === OPEN_BRACE || c === OPEN_BRACKET) return this.#skipContainer(p, depth);
    if (c === QUOTE) return this.#stringEnd(p);
    // A number or literal: its validity is the parser's business, its extent is ours.
    const start = p;
    while (p < b.length && SCALAR[b[p]!] === 1) p++;
    if (p === start) fail();
    return p;
  }

  /**
   * Skips the object or array at `p` (inside a container at nesting `depth`), counting brackets
   * outside strings like `jsonDepthExceeds`. Returns the offset after its closing bracket.
   */
  #skipContainer(p: number, depth: number): number {
    const b = this.#bytes;
    const length = b.length;
    let level = depth;
    let deepest = this.#depth;
    for (; p < length; p++) {
      const c = b[p]!;
      if (c === QUOTE) {
        p = this.#stringEnd(p) - 1;
      } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
        if (++level > deepest) deepest = level;
      } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        if (--level === depth) {
          this.#depth = deepest;
          return p + 1;
        }
      }
    }
    return fail();
  }

  /** The string starting with the quote at `p`: returns the offset after its closing quote. */
  #stringEnd(p: number): number {
    const b = this.#bytes;
    for (;;) {
      const quote = b.indexOf(QUOTE, p + 1);
      if (quote === -1) fail();
      // Escaped when preceded by an odd number of backslashes (the opening quote stops the run).
      let backslash = quote - 1;
      while (b[backslash] === BACKSLASH) backslash--;
      if ((quote - backslash) % 2 === 1) return quote + 1;
      p = quote;
    }
  }

  /** Whether the key string `[start, end)` (quotes included) is `name` once unescaped. */
  #keyIs(start: number, end: number, name: string): boolean {
    const b = this.#bytes;
    let escaped = false;
    for (let i = start + 1; i < end - 1 && !escaped; i++) escaped = b[i] === BACKSLASH;
    if (escaped) {
      let key: unknown;
      try {
        key = JSON.parse(decodeUtf8Strict(b.subarray(start, end)));
      } catch {
        fail();
      }
      return key === name;
    }
    if (end - start - 2 !== name.length) return false;
    for (let i = 0; i < name.length; i++) if (b[start + 1 + i] !== name.charCodeAt(i)) return false;
    return true;
  }

  #whitespace(p: number): number {
    const b = this.#bytes;
    while (p < b.length && isWhitespace(b[p]!)) p++;
    return p;
  }

  #reach(depth: number): void {
    if (depth > this.#depth) this.#depth = depth;
  }

  #push(start: number, end: number): void {
    if (this.#count === this.#starts.length) {
      const starts = new Float64Array(this.#count * 2);
      const ends = new Float64Array(this.#count * 2);
      starts.set(this.#starts);
      ends.set(this.#ends);
      this.#starts = starts;
      this.#ends = ends;
    }
    this.#starts[this.#count] = start;
    this.#ends[this.#count] = end;
    this.#count++;
  }
}

/** Where every opportunity of the webhook in `bytes` is, or undefined when the body does not have the expected shape (see the module comment). */
export function findOpportunitySpans(bytes: Uint8Array): OpportunitySpans | undefined {
  try {
    return new Scanner(bytes).scan();
  } catch (error) {
    if (error instanceof NotApplicable) return undefined;
    throw error;
  }
}

/** The body with every opportunities array emptied (`[…]` → `[]`): everything else, byte for byte. */
export function emptyOpportunityArrays(bytes: Uint8Array, spans: OpportunitySpans): Buffer {
  const parts: Uint8Array[] = [];
  let from = 0;
  for (const array of spans.results) {
    if (array === null) continue;
    parts.push(bytes.subarray(from, array.open + 1));
    from = array.close;
  }
  parts.push(bytes.subarray(from));
  return Buffer.concat(parts);
}
