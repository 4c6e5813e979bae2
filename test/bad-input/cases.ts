import { gzipSync, deflateRawSync, deflateSync, createGzip, createDeflate } from 'node:zlib';
import { makeWebhook } from '@clustr-pipeline/schema';

/**
 * The hostile / broken requests of bad-input.test.ts, one row each, with what the ingest must answer.
 *
 * `outcome`:
 *  - `accepted`: 200, its opportunity events reach `clustr.opportunities.v1` (and ClickHouse);
 *  - `rejected`: refused, nothing is published anywhere (not on the opportunity topic, not on the DLQ);
 *  - `dlq`: 422, the raw decompressed body is on `clustr.dlq.v1` (key = the request id) with `dlq_reason`.
 */
export type Outcome = 'accepted' | 'rejected' | 'dlq';

export interface CaseContext {
  secret: string;
  /** The ingest's base URL (http://127.0.0.1:port). */
  url: string;
}

export interface HttpSpec {
  method?: string;
  /** Path + query; default /webhooks/clustr. */
  path?: string;
  /** Merged over the defaults (JSON content type, the right Bearer token, X-Request-Id); `null` removes one. */
  headers?: Record<string, string | null>;
  body?: Buffer;
  /** Send with Transfer-Encoding: chunked (no Content-Length). */
  chunked?: boolean;
}

/** What a raw-socket case observed. */
export interface RawResult {
  status: number | null;
  closed: boolean;
  elapsedMs: number;
}

export interface WebhookCase {
  id: string;
  group: 'json' | 'types' | 'size' | 'encoding' | 'utf8' | 'content-type' | 'auth' | 'slow';
  title: string;
  status: number;
  /** Expected `code` of the error body (INGEST_ERR_…). */
  code?: string;
  outcome: Outcome;
  /** Builds the request (called once, just before sending). */
  request?: (ctx: CaseContext) => HttpSpec | Promise<HttpSpec>;
  /** A raw TCP case (slow senders, malformed HTTP) instead of `request`. */
  raw?: 'slow-body' | 'slow-headers' | 'garbage';
  /** The bytes expected on the DLQ when they differ from the request body (compressed requests). */
  dlqBody?: (ctx: CaseContext) => Buffer;
  /** Broker-dependent: run only against the librdkafka mock. */
  onlyWithMockKafka?: boolean;
  /** Token values this case sends: they must never show up in any log line. */
  tokens?: (ctx: CaseContext) => string[];
}

// Webhook bodies are mutated freely here: they are plain JSON trees.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

export const jobIdFor = (id: string): string => `bi_${id.replace(/-/g, '_')}`;
export const requestIdFor = (id: string): string => `bi-${id}`;

/** A valid two-opportunity webhook whose job_id is unique to the case. */
export function validWebhook(id: string, opportunities = 2): Json {
  return JSON.parse(JSON.stringify(makeWebhook({ opportunities, jobId: jobIdFor(id), engagements: 1 }))) as Json;
}
const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const text = (value: string): Buffer => Buffer.from(value, 'utf8');
/** The valid webhook of `id` with `change` applied. */
const mutated = (id: string, change: (w: Json) => void): Buffer => {
  const w = validWebhook(id);
  change(w);
  return json(w);
};
const opp = (w: Json, i = 0): Json => w.results[0].opportunities[i];
const nested = (depth: number, inner = '1'): string => '['.repeat(depth) + inner + ']'.repeat(depth);
/** A valid webhook with `custom` replaced by raw JSON text. */
const withRawCustom = (id: string, customJson: string): Buffer => {
  const w = validWebhook(id);
  delete w.custom;
  const head = JSON.stringify(w).slice(0, -1);
  return text(`${head},"custom":${customJson}}`);
};
const MiB = 1024 * 1024;

/** gzip/deflate of `total` zero bytes, produced in 1 MiB steps (never holding the inflated data). */
async function compressZeros(total: number, kind: 'gzip' | 'deflate'): Promise<Buffer> {
  const stream = kind === 'gzip' ? createGzip({ level: 9 }) : createDeflate({ level: 9 });
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  const zeros = Buffer.alloc(MiB);
  for (let written = 0; written < total; written += MiB) {
    if (!stream.write(zeros)) await new Promise((r) => stream.once('drain', r));
  }
  stream.end();
  await done;
  return Buffer.concat(chunks);
}
let bombCache: Promise<{ gzip: Buffer; deflate: Buffer }> | undefined;
/** A 1 GiB-of-zeros gzip bomb (~1 MiB) and a 256 MiB deflate one, built once. */
export const bombs = () =>
  (bombCache ??= (async () => ({ gzip: await compressZeros(1024 * MiB, 'gzip'), deflate: await compressZeros(256 * MiB, 'deflate') }))());

const SCHEMA = { status: 422, code: 'INGEST_ERR_SCHEMA', outcome: 'dlq' } as const;
const BAD_JSON = { status: 400, code: 'INGEST_ERR_INVALID_JSON', outcome: 'rejected' } as const;
const BAD_UTF8 = { status: 400, code: 'INGEST_ERR_INVALID_UTF8', outcome: 'rejected' } as const;
const UNAUTHORIZED = { status: 401, code: 'INGEST_ERR_UNAUTHORIZED', outcome: 'rejected' } as const;
const MEDIA = { status: 415, code: 'INGEST_ERR_UNSUPPORTED_MEDIA_TYPE', outcome: 'rejected' } as const;
const TOO_LARGE = { status: 413, code: 'INGEST_ERR_BODY_TOO_LARGE', outcome: 'rejected' } as const;
const OK = { status: 200, outcome: 'accepted' } as const;

/** Schema-breaking mutation of a valid webhook → 422 + DLQ. */
const schemaCase = (id: string, title: string, change: (w: Json) => void): WebhookCase => ({
  id,
  group: 'types',
  title,
  ...SCHEMA,
  request: () => ({ body: mutated(id, change) }),
});

export const MAX_OPPORTUNITIES = 1000;

export const webhookCases: WebhookCase[] = [
  // ── malformed JSON ─────────────────────────────────────────────────────────────────────────
  { id: 'truncated', group: 'json', title: 'truncated JSON', ...BAD_JSON, request: () => ({ body: json(validWebhook('truncated')).subarray(0, -17) }) },
  { id: 'malformed', group: 'json', title: 'doubled comma', ...BAD_JSON, request: () => ({ body: text('{"status":"completed",,"job_id":"bi_malformed"}') }) },
  { id: 'empty-body', group: 'json', title: 'empty body (Content-Length: 0)', ...BAD_JSON, request: () => ({ body: Buffer.alloc(0) }) },
  { id: 'whitespace-body', group: 'json', title: 'whitespace only', ...BAD_JSON, request: () => ({ body: text(' \r\n\t ') }) },
  { id: 'trailing-garbage', group: 'json', title: 'valid JSON then garbage', ...BAD_JSON, request: () => ({ body: Buffer.concat([json(validWebhook('trailing-garbage')), text('}{x')]) }) },
  { id: 'comment', group: 'json', title: 'a // comment', ...BAD_JSON, request: () => ({ body: text('{"status":"completed", // hi\n"job_id":"bi_comment"}') }) },
  { id: 'single-quotes', group: 'json', title: "single-quoted strings", ...BAD_JSON, request: () => ({ body: text("{'status':'completed','job_id':'bi_single_quotes'}") }) },
  { id: 'nan-literal', group: 'json', title: 'NaN literal', ...BAD_JSON, request: () => ({ body: text(json(validWebhook('nan-literal')).toString().replace('"confidence_score":50.5', '"confidence_score":NaN')) }) },
  { id: 'infinity-literal', group: 'json', title: 'Infinity literal', ...BAD_JSON, request: () => ({ body: text(json(validWebhook('infinity-literal')).toString().replace('"confidence_score":50.5', '"confidence_score":-Infinity')) }) },
  // Lenient but harmless: the UTF-8 decoder drops one BOM and fastify's JSON parser the next.
  { id: 'double-bom', group: 'json', title: 'two BOMs (each layer strips one)', ...OK, request: () => ({ body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf]), json(validWebhook('double-bom'))]) }) },
  { id: 'bom', group: 'json', title: 'a leading UTF-8 BOM is fine', ...OK, request: () => ({ body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), json(validWebhook('bom'))]) }) },
  { id: 'json-null', group: 'json', title: 'the JSON value null', ...SCHEMA, request: () => ({ body: text('null') }) },
  { id: 'json-array', group: 'json', title: 'a top-level array', ...SCHEMA, request: () => ({ body: text('[{"status":"completed","job_id":"bi_json_array"}]') }) },
  { id: 'json-string', group: 'json', title: 'a top-level string', ...SCHEMA, request: () => ({ body: text('"completed"') }) },
  { id: 'json-number', group: 'json', title: 'a top-level huge number', ...SCHEMA, request: () => ({ body: text('1e400') }) },
  { id: 'dup-key-valid', group: 'json', title: 'duplicate job_id keys: the last one wins', ...OK, request: () => ({ body: text(json(validWebhook('dup-key-valid')).toString().replace('{"status"', '{"job_id":12,"status"')) }) },
  { id: 'dup-key-invalid', group: 'json', title: 'duplicate status keys, the last one invalid', ...SCHEMA, request: () => ({ body: text(json(validWebhook('dup-key-invalid')).toString().replace('"job_id"', '"status":false,"job_id"')) }) },
  { id: 'proto-top', group: 'json', title: '__proto__ key at the top', ...BAD_JSON, request: () => ({ body: text(json(validWebhook('proto-top')).toString().replace('{"status"', '{"__proto__":{"polluted":"yes"},"status"')) }) },
  { id: 'proto-nested', group: 'json', title: '__proto__ inside an opportunity', ...BAD_JSON, request: () => ({ body: text(json(validWebhook('proto-nested')).toString().replace('"opportunity_id"', '"__proto__":{"isAdmin":true},"opportunity_id"')) }) },
  { id: 'proto-escaped', group: 'json', title: '\\u005f_proto__ (escaped) in custom', ...BAD_JSON, request: () => ({ body: withRawCustom('proto-escaped', '{"\\u005f_proto__":{"polluted":"yes"}}') }) },
  { id: 'constructor-prototype', group: 'json', title: 'constructor.prototype in custom', ...BAD_JSON, request: () => ({ body: withRawCustom('constructor-prototype', '{"constructor":{"prototype":{"polluted":"yes"}}}') }) },
  { id: 'constructor-plain', group: 'json', title: 'plain constructor/toString keys are data', ...OK, request: () => ({ body: withRawCustom('constructor-plain', '{"constructor":"x","toString":1,"hasOwnProperty":null}') }) },

  // ── wrong types at every level ─────────────────────────────────────────────────────────────
  schemaCase('status-number', 'status is a number', (w) => (w.status = 1)),
  schemaCase('status-empty', 'status is ""', (w) => (w.status = '')),
  schemaCase('status-too-long', 'status of 65 characters', (w) => (w.status = 'x'.repeat(65))),
  schemaCase('job-id-number', 'job_id is a number', (w) => (w.job_id = 42)),
  schemaCase('job-id-missing', 'job_id missing', (w) => delete w.job_id),
  schemaCase('job-id-object', 'job_id is an object', (w) => (w.job_id = { id: 'bi_x' })),
  schemaCase('batch-id-number', 'batch_id is a number', (w) => (w.batch_id = 7)),
  schemaCase('results-object', 'results is an object', (w) => (w.results = { 0: w.results[0] })),
  schemaCase('result-string', 'results[0] is a string', (w) => (w.results[0] = 'client')),
  schemaCase('client-string', 'client is a string', (w) => (w.results[0].client = 'John')),
  schemaCase('client-name-number', 'client.name is a number', (w) => (w.results[0].client.name = 123)),
  schemaCase('opportunities-object', 'opportunities is an object', (w) => (w.results[0].opportunities = { a: 1 })),
  schemaCase('opportunity-null', 'an opportunity is null', (w) => (w.results[0].opportunities[1] = null)),
  schemaCase('opportunity-id-number', 'opportunity_id is a number', (w) => (opp(w).opportunity_id = 12345)),
  schemaCase('opportunity-id-empty', 'opportunity_id is ""', (w) => (opp(w).opportunity_id = '')),
  schemaCase('opportunity-id-missing', 'opportunity_id missing', (w) => delete opp(w).opportunity_id),
  schemaCase('prospect-array', 'prospect is an array', (w) => (opp(w).prospect = ['Jane'])),
  schemaCase('prospect-name-bool', 'prospect.name is a boolean', (w) => (opp(w).prospect.name = true)),
  schemaCase('relationship-string', 'relationship is a string', (w) => (opp(w).relationship = 'close')),
  schemaCase('confidence-string', 'confidence_score as a string "85.5"', (w) => (opp(w).relationship.confidence_score = '85.5')),
  schemaCase('months-string', 'total_overlap_months as a string "24"', (w) => (opp(w).relationship.total_overlap_months = '24')),
  schemaCase('months-negative', 'overlap_months -1', (w) => (opp(w).relationship.shared_experience.overlap_months = -1)),
  schemaCase('months-fraction', 'total_overlap_months 12.5', (w) => (opp(w).relationship.total_overlap_months = 12.5)),
  schemaCase('months-huge', 'total_overlap_months 1e20', (w) => (opp(w).relationship.total_overlap_months = 1e20)),
  schemaCase('is-target-string', 'is_target_company "true"', (w) => (opp(w).is_target_company = 'true')),
  schemaCase('is-current-number', 'is_current 1', (w) => (opp(w).relationship.shared_experience.is_current = 1)),
  schemaCase('engagement-type-unknown', 'engagement history entry of an unknown type', (w) => (opp(w).engagement.history[0].type = 'PROSPECT_HACKED')),
  schemaCase('engagement-entry-string', 'engagement history entry is a string', (w) => (opp(w).engagement.history[0] = 'liked')),
  schemaCase('engagement-date-invalid', 'engagement date 2025-13-45', (w) => (opp(w).engagement.history[0].date = '2025-13-45')),
  schemaCase('total-engagements-negative', 'total_engagements -5', (w) => (opp(w).engagement.total_engagements = -5)),
  schemaCase('timestamp-text', 'timestamp "yesterday"', (w) => (w.timestamp = 'yesterday')),
  schemaCase('summary-string', 'summary is a string', (w) => (w.summary = 'done')),
  schemaCase('processing-time-negative', 'processing_time_seconds -1', (w) => (w.summary.processing_time_seconds = -1)),
  {
    id: 'confidence-1e400',
    group: 'types',
    title: 'confidence_score 1e400 (parses to Infinity)',
    ...SCHEMA,
    request: () => ({ body: text(json(validWebhook('confidence-1e400')).toString().replace('"confidence_score":50.5', '"confidence_score":1e400')) }),
  },
  { id: 'custom-anything', group: 'types', title: 'custom is any JSON value', ...OK, request: () => ({ body: mutated('custom-anything', (w) => (w.custom = [1, 'a', null, { x: [true, 1.5e300] }])) }) },
  { id: 'extra-fields', group: 'types', title: 'unknown extra fields everywhere', ...OK, request: () => ({ body: mutated('extra-fields', (w) => { w.new_field = 1; opp(w).score_v2 = { a: 1 }; w.results[0].client.x = [] }) }) },
  { id: 'nulls', group: 'types', title: 'every optional field null', ...OK, request: () => ({ body: json({ status: 'completed', job_id: jobIdFor('nulls'), batch_id: null, summary: null, custom: null, timestamp: null, error: null, results: [{ client: null, opportunities: [{ opportunity_id: 'opp_bi_nulls', prospect: null, company: null, relationship: null, is_target_company: null, engagement: null }] }] }) }) },
  { id: 'unicode-data', group: 'types', title: 'NUL, emoji, RTL override and CJK in names', ...OK, request: () => ({ body: mutated('unicode-data', (w) => { opp(w).prospect.name = 'Jo\u0000sé 🚀 \u202Eevil'; w.results[0].client.name = '山田太郎' }) }) },
  { id: 'big-valid-string', group: 'types', title: 'a 512 KiB string in prospect.name (valid)', ...OK, request: () => ({ body: mutated('big-valid-string', (w) => (opp(w).prospect.name = 'A'.repeat(512 * 1024))) }) },
  { id: 'big-invalid-string', group: 'types', title: 'a 512 KiB string as confidence_score', ...SCHEMA, request: () => ({ body: mutated('big-invalid-string', (w) => (opp(w).relationship.confidence_score = '9'.repeat(512 * 1024))) }) },
  {
    id: 'mib-invalid-string',
    group: 'types',
    title: 'a 1 MiB string as confidence_score (the mock broker takes the 1 MiB dead letter)',
    ...SCHEMA,
    // A real broker's default message.max.bytes (1 MB) refuses this dead letter: 503 INGEST_ERR_DLQ_UNAVAILABLE (documented).
    onlyWithMockKafka: true,
    request: () => ({ body: mutated('mib-invalid-string', (w) => (opp(w).relationship.confidence_score = '9'.repeat(MiB))) }),
  },

  // ── sizes and nesting ──────────────────────────────────────────────────────────────────────
  { id: 'too-deep-dlq', group: 'size', title: 'custom nested 100 000 deep', status: 422, code: 'INGEST_ERR_JSON_TOO_DEEP', outcome: 'dlq', request: () => ({ body: withRawCustom('too-deep-dlq', nested(100_000)) }) },
  { id: 'too-deep-65', group: 'size', title: 'nesting one past MAX_JSON_DEPTH', status: 422, code: 'INGEST_ERR_JSON_TOO_DEEP', outcome: 'dlq', request: () => ({ body: withRawCustom('too-deep-65', nested(64)) }) },
  { id: 'deep-ok', group: 'size', title: 'nesting at MAX_JSON_DEPTH is fine', ...OK, request: () => ({ body: withRawCustom('deep-ok', nested(63)) }) },
  { id: 'too-deep-huge', group: 'size', title: '1 000 000 levels (2 MB): 422, too big to dead-letter', status: 422, code: 'INGEST_ERR_JSON_TOO_DEEP', outcome: 'rejected', request: () => ({ body: withRawCustom('too-deep-huge', nested(1_000_000)) }) },
  {
    id: 'million-opportunities',
    group: 'size',
    title: 'a million tiny opportunities',
    status: 413,
    code: 'INGEST_ERR_TOO_MANY_OPPORTUNITIES',
    outcome: 'rejected',
    request: () => ({ body: text(`{"status":"completed","job_id":"bi_million","results":[{"opportunities":[${Array(1_000_000).fill('{}').join(',')}]}]}`) }),
  },
  { id: 'max-opportunities-plus-one', group: 'size', title: 'MAX_OPPORTUNITIES + 1 valid opportunities', status: 413, code: 'INGEST_ERR_TOO_MANY_OPPORTUNITIES', outcome: 'rejected', request: () => ({ body: json(validWebhook('max-opportunities-plus-one', MAX_OPPORTUNITIES + 1)) }) },
  { id: 'max-opportunities', group: 'size', title: 'exactly MAX_OPPORTUNITIES opportunities', ...OK, request: () => ({ body: json(validWebhook('max-opportunities', MAX_OPPORTUNITIES)) }) },
  { id: 'over-limit', group: 'size', title: '9 MiB body (limit 8 MiB), Content-Length', ...TOO_LARGE, request: () => ({ body: withRawCustom('over-limit', JSON.stringify('x'.repeat(9 * MiB))) }) },
  { id: 'over-limit-chunked', group: 'size', title: '9 MiB body, chunked (no Content-Length)', ...TOO_LARGE, request: () => ({ body: withRawCustom('over-limit-chunked', JSON.stringify('x'.repeat(9 * MiB))), chunked: true }) },

  // ── content encodings ──────────────────────────────────────────────────────────────────────
  { id: 'gzip-valid', group: 'encoding', title: 'gzip body', ...OK, request: () => ({ body: gzipSync(json(validWebhook('gzip-valid'))), headers: { 'content-encoding': 'gzip' } }) },
  { id: 'deflate-raw-valid', group: 'encoding', title: 'raw deflate body', ...OK, request: () => ({ body: deflateRawSync(json(validWebhook('deflate-raw-valid'))), headers: { 'content-encoding': 'deflate' } }) },
  {
    id: 'gzip-schema-invalid',
    group: 'encoding',
    title: 'gzip body breaking the schema: the DLQ gets the decompressed bytes',
    ...SCHEMA,
    request: () => ({ body: gzipSync(mutated('gzip-schema-invalid', (w) => (w.status = null))), headers: { 'content-encoding': 'x-gzip' } }),
    dlqBody: () => mutated('gzip-schema-invalid', (w) => (w.status = null)),
  },
  { id: 'gzip-bomb', group: 'encoding', title: 'gzip bomb: 1 GiB of zeros', ...TOO_LARGE, request: async () => ({ body: (await bombs()).gzip, headers: { 'content-encoding': 'gzip' } }) },
  { id: 'deflate-bomb', group: 'encoding', title: 'deflate bomb: 256 MiB of zeros', ...TOO_LARGE, request: async () => ({ body: (await bombs()).deflate, headers: { 'content-encoding': 'deflate' } }) },
  {
    id: 'gzip-corrupt',
    group: 'encoding',
    title: 'gzip with corrupted bytes',
    status: 400,
    code: 'INGEST_ERR_BAD_ENCODING',
    outcome: 'rejected',
    request: () => {
      const gz = gzipSync(json(validWebhook('gzip-corrupt')));
      for (let i = 20; i < gz.length - 10; i += 7) gz[i] = gz[i]! ^ 0x5a;
      return { body: gz, headers: { 'content-encoding': 'gzip' } };
    },
  },
  { id: 'gzip-truncated', group: 'encoding', title: 'truncated gzip', status: 400, code: 'INGEST_ERR_BAD_ENCODING', outcome: 'rejected', request: () => ({ body: gzipSync(json(validWebhook('gzip-truncated'))).subarray(0, 60), headers: { 'content-encoding': 'gzip' } }) },
  { id: 'gzip-label-plain', group: 'encoding', title: 'Content-Encoding: gzip on plain JSON', status: 400, code: 'INGEST_ERR_BAD_ENCODING', outcome: 'rejected', request: () => ({ body: json(validWebhook('gzip-label-plain')), headers: { 'content-encoding': 'gzip' } }) },
  { id: 'deflate-label-gzip', group: 'encoding', title: 'Content-Encoding: deflate on gzip data', status: 400, code: 'INGEST_ERR_BAD_ENCODING', outcome: 'rejected', request: () => ({ body: gzipSync(json(validWebhook('deflate-label-gzip'))), headers: { 'content-encoding': 'deflate' } }) },
  { id: 'encoding-br', group: 'encoding', title: 'Content-Encoding: br', status: 415, code: 'INGEST_ERR_UNSUPPORTED_ENCODING', outcome: 'rejected', request: () => ({ body: json(validWebhook('encoding-br')), headers: { 'content-encoding': 'br' } }) },
  { id: 'encoding-double', group: 'encoding', title: 'Content-Encoding: gzip, gzip', status: 415, code: 'INGEST_ERR_UNSUPPORTED_ENCODING', outcome: 'rejected', request: () => ({ body: gzipSync(gzipSync(json(validWebhook('encoding-double')))), headers: { 'content-encoding': 'gzip, gzip' } }) },
  { id: 'deflate-zlib-valid', group: 'encoding', title: 'zlib deflate body', ...OK, request: () => ({ body: deflateSync(json(validWebhook('deflate-zlib-valid'))), headers: { 'content-encoding': 'deflate' } }) },

  // ── UTF-8 ──────────────────────────────────────────────────────────────────────────────────
  { id: 'utf8-ff', group: 'utf8', title: 'byte 0xFF inside a string', ...BAD_UTF8, request: () => ({ body: Buffer.from(json(validWebhook('utf8-ff')).toString().replace('Prospect 0', 'Prospect \u0001'), 'latin1').map((b) => (b === 1 ? 0xff : b)) as Buffer }) },
  { id: 'utf8-overlong', group: 'utf8', title: 'overlong "/" (C0 AF)', ...BAD_UTF8, request: () => ({ body: Buffer.concat([text('{"status":"completed","job_id":"bi_'), Buffer.from([0xc0, 0xaf]), text('"}')]) }) },
  { id: 'utf8-surrogate', group: 'utf8', title: 'UTF-8-encoded lone surrogate (ED A0 80)', ...BAD_UTF8, request: () => ({ body: Buffer.concat([text('{"status":"completed","job_id":"bi_'), Buffer.from([0xed, 0xa0, 0x80]), text('"}')]) }) },
  { id: 'utf8-truncated', group: 'utf8', title: 'multi-byte sequence cut short', ...BAD_UTF8, request: () => ({ body: Buffer.concat([text('{"status":"completed","job_id":"bi_'), Buffer.from([0xe2, 0x82]), text('"}')]) }) },
  { id: 'utf16-body', group: 'utf8', title: 'a UTF-16LE body', ...BAD_UTF8, request: () => ({ body: Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(JSON.stringify(validWebhook('utf16-body')), 'utf16le')]) }) },

  // ── content types ──────────────────────────────────────────────────────────────────────────
  { id: 'ct-missing', group: 'content-type', title: 'no Content-Type', ...MEDIA, request: () => ({ body: json(validWebhook('ct-missing')), headers: { 'content-type': null } }) },
  { id: 'ct-text', group: 'content-type', title: 'text/plain', ...MEDIA, request: () => ({ body: json(validWebhook('ct-text')), headers: { 'content-type': 'text/plain' } }) },
  { id: 'ct-form', group: 'content-type', title: 'application/x-www-form-urlencoded', ...MEDIA, request: () => ({ body: json(validWebhook('ct-form')), headers: { 'content-type': 'application/x-www-form-urlencoded' } }) },
  { id: 'ct-utf16', group: 'content-type', title: 'application/json; charset=utf-16', ...MEDIA, request: () => ({ body: json(validWebhook('ct-utf16')), headers: { 'content-type': 'application/json; charset=utf-16' } }) },
  { id: 'ct-jsonish', group: 'content-type', title: 'application/jsonx', ...MEDIA, request: () => ({ body: json(validWebhook('ct-jsonish')), headers: { 'content-type': 'application/jsonx' } }) },
  { id: 'ct-charset-ok', group: 'content-type', title: 'Application/JSON; charset="UTF-8"', ...OK, request: () => ({ body: json(validWebhook('ct-charset-ok')), headers: { 'content-type': 'Application/JSON; charset="UTF-8"' } }) },

  // ── authentication ─────────────────────────────────────────────────────────────────────────
  { id: 'auth-missing', group: 'auth', title: 'no token', ...UNAUTHORIZED, request: () => ({ body: json(validWebhook('auth-missing')), headers: { authorization: null } }) },
  { id: 'auth-wrong', group: 'auth', title: 'wrong token', ...UNAUTHORIZED, tokens: () => ['wrong-token-9f8e7d6c5b4a'], request: () => ({ body: json(validWebhook('auth-wrong')), headers: { authorization: 'Bearer wrong-token-9f8e7d6c5b4a' } }) },
  { id: 'auth-one-off', group: 'auth', title: 'secret with its last character changed', ...UNAUTHORIZED, tokens: (c) => [oneOff(c.secret)], request: (c) => ({ body: json(validWebhook('auth-one-off')), headers: { authorization: `Bearer ${oneOff(c.secret)}` } }) },
  { id: 'auth-case', group: 'auth', title: 'secret in upper case', ...UNAUTHORIZED, tokens: (c) => [c.secret.toUpperCase()], request: (c) => ({ body: json(validWebhook('auth-case')), headers: { authorization: `Bearer ${c.secret.toUpperCase()}` } }) },
  { id: 'auth-prefix', group: 'auth', title: 'a prefix of the secret', ...UNAUTHORIZED, request: (c) => ({ body: json(validWebhook('auth-prefix')), headers: { authorization: `Bearer ${c.secret.slice(0, -1)}` } }) },
  { id: 'auth-suffix', group: 'auth', title: 'the secret plus one character', ...UNAUTHORIZED, request: (c) => ({ body: json(validWebhook('auth-suffix')), headers: { authorization: `Bearer ${c.secret}x` } }) },
  { id: 'auth-empty-bearer', group: 'auth', title: 'Authorization: "Bearer "', ...UNAUTHORIZED, request: () => ({ body: json(validWebhook('auth-empty-bearer')), headers: { authorization: 'Bearer ' } }) },
  { id: 'auth-basic', group: 'auth', title: 'Basic scheme carrying the secret', ...UNAUTHORIZED, request: (c) => ({ body: json(validWebhook('auth-basic')), headers: { authorization: `Basic ${c.secret}` } }) },
  { id: 'auth-no-scheme', group: 'auth', title: 'Authorization: <secret> (no scheme)', ...UNAUTHORIZED, request: (c) => ({ body: json(validWebhook('auth-no-scheme')), headers: { authorization: c.secret } }) },
  { id: 'auth-wrong-header', group: 'auth', title: 'the secret in X-Api-Key', ...UNAUTHORIZED, request: (c) => ({ body: json(validWebhook('auth-wrong-header')), headers: { authorization: null, 'x-api-key': c.secret } }) },
  { id: 'auth-first-wins', group: 'auth', title: 'a wrong Bearer beats a right X-Webhook-Token', ...UNAUTHORIZED, tokens: () => ['wrong-bearer-1a2b3c4d5e'], request: (c) => ({ body: json(validWebhook('auth-first-wins')), headers: { authorization: 'Bearer wrong-bearer-1a2b3c4d5e', 'x-webhook-token': c.secret } }) },
  { id: 'auth-query-wrong', group: 'auth', title: 'wrong ?token=', ...UNAUTHORIZED, tokens: () => ['wrong-query-token-0z9y8x'], request: () => ({ path: '/webhooks/clustr?token=wrong-query-token-0z9y8x', body: json(validWebhook('auth-query-wrong')), headers: { authorization: null } }) },
  { id: 'auth-unauth-bomb', group: 'auth', title: 'unauthenticated gzip bomb: refused before reading', ...UNAUTHORIZED, request: async () => ({ body: (await bombs()).gzip, headers: { authorization: null, 'content-encoding': 'gzip' } }) },
  { id: 'auth-x-webhook-token', group: 'auth', title: 'right secret in X-Webhook-Token', ...OK, request: (c) => ({ body: json(validWebhook('auth-x-webhook-token')), headers: { authorization: null, 'x-webhook-token': c.secret } }) },
  { id: 'auth-query-token', group: 'auth', title: 'right secret in ?token=', ...OK, request: (c) => ({ path: `/webhooks/clustr?token=${encodeURIComponent(c.secret)}`, body: json(validWebhook('auth-query-token')), headers: { authorization: null } }) },
  { id: 'auth-bearer-lowercase', group: 'auth', title: 'lower-case "bearer" scheme', ...OK, request: (c) => ({ body: json(validWebhook('auth-bearer-lowercase')), headers: { authorization: `bearer ${c.secret}` } }) },
  { id: 'route-unknown', group: 'auth', title: 'POST to an unknown path', status: 404, code: 'INGEST_ERR_NOT_FOUND', outcome: 'rejected', request: () => ({ path: '/webhooks/clustr/../admin', body: json(validWebhook('route-unknown')) }) },
  { id: 'route-get', group: 'auth', title: 'GET /webhooks/clustr', status: 404, code: 'INGEST_ERR_NOT_FOUND', outcome: 'rejected', request: () => ({ method: 'GET' }) },

  // ── slow senders and broken HTTP (raw sockets) ─────────────────────────────────────────────
  { id: 'slow-body', group: 'slow', title: 'headers, then the body one byte every 400 ms', status: 408, outcome: 'rejected', raw: 'slow-body' },
  { id: 'slow-headers', group: 'slow', title: 'headers that never finish', status: 408, outcome: 'rejected', raw: 'slow-headers' },
  { id: 'garbage-http', group: 'slow', title: 'not HTTP at all', status: 400, outcome: 'rejected', raw: 'garbage' },
];

function oneOff(secret: string): string {
  const last = secret.at(-1)!;
  return secret.slice(0, -1) + (last === 'a' ? 'b' : 'a');
}

/** Attacks on the sink's embedded, read-only ClickHouse HTTP interface. */
export interface ClickHouseCase {
  id: string;
  title: string;
  /** Query string parameters (besides `query`, when given). */
  params?: Record<string, string>;
  /** In the `query` URL parameter (GET) instead of the body (POST). */
  viaGet?: boolean;
  sql: (ctx: { database: string; outfile: string; ingestUrl: string }) => string;
  /** 200 for the read query that must run (and find nothing); refused otherwise. */
  expect: 'refused' | 'ok-empty';
}

export const clickhouseCases: ClickHouseCase[] = [
  { id: 'ch-insert', title: 'INSERT', expect: 'refused', sql: ({ database }) => `INSERT INTO ${database}.jobs (job_id, status) VALUES ('bi_pwned', 'completed')` },
  { id: 'ch-insert-select', title: 'INSERT … SELECT', expect: 'refused', sql: ({ database }) => `INSERT INTO ${database}.opportunity_events SELECT * FROM ${database}.opportunity_events` },
  { id: 'ch-create', title: 'CREATE TABLE', expect: 'refused', sql: ({ database }) => `CREATE TABLE ${database}.bi_pwned (x UInt8) ENGINE = Memory` },
  { id: 'ch-create-db', title: 'CREATE DATABASE', expect: 'refused', sql: () => 'CREATE DATABASE bi_pwned' },
  { id: 'ch-drop', title: 'DROP TABLE', expect: 'refused', sql: ({ database }) => `DROP TABLE ${database}.jobs` },
  { id: 'ch-drop-db', title: 'DROP DATABASE', expect: 'refused', sql: ({ database }) => `DROP DATABASE ${database}` },
  { id: 'ch-alter-delete', title: 'ALTER TABLE … DELETE', expect: 'refused', sql: ({ database }) => `ALTER TABLE ${database}.jobs DELETE WHERE 1` },
  { id: 'ch-delete', title: 'lightweight DELETE', expect: 'refused', sql: ({ database }) => `DELETE FROM ${database}.opportunity_events WHERE 1` },
  { id: 'ch-truncate', title: 'TRUNCATE', expect: 'refused', sql: ({ database }) => `TRUNCATE TABLE ${database}.opportunity_events` },
  { id: 'ch-optimize', title: 'OPTIMIZE … FINAL', expect: 'refused', sql: ({ database }) => `OPTIMIZE TABLE ${database}.jobs FINAL` },
  { id: 'ch-rename', title: 'RENAME TABLE', expect: 'refused', sql: ({ database }) => `RENAME TABLE ${database}.jobs TO ${database}.jobs_old` },
  { id: 'ch-detach', title: 'DETACH TABLE', expect: 'refused', sql: ({ database }) => `DETACH TABLE ${database}.jobs` },
  { id: 'ch-system', title: 'SYSTEM STOP MERGES', expect: 'refused', sql: () => 'SYSTEM STOP MERGES' },
  { id: 'ch-system-shutdown', title: 'SYSTEM SHUTDOWN', expect: 'refused', sql: () => 'SYSTEM SHUTDOWN' },
  { id: 'ch-set', title: 'SET readonly = 0', expect: 'refused', sql: () => 'SET readonly = 0' },
  { id: 'ch-settings-readonly', title: 'SELECT … SETTINGS readonly = 0', expect: 'refused', sql: () => 'SELECT 1 SETTINGS readonly = 0' },
  { id: 'ch-url-readonly', title: '?readonly=0', expect: 'refused', params: { readonly: '0' }, sql: () => 'SELECT 1' },
  { id: 'ch-url-readonly-2', title: '?readonly=2', expect: 'refused', params: { readonly: '2' }, sql: () => 'SELECT 1' },
  { id: 'ch-multi', title: 'SELECT 1; DROP TABLE', expect: 'refused', sql: ({ database }) => `SELECT 1; DROP TABLE ${database}.jobs` },
  { id: 'ch-multi-get', title: 'GET ?query=SELECT 1; DROP …', expect: 'refused', viaGet: true, sql: ({ database }) => `SELECT 1; DROP TABLE ${database}.jobs` },
  { id: 'ch-comment-smuggle', title: '/* SELECT */ DROP TABLE', expect: 'refused', sql: ({ database }) => `/* SELECT */ DROP TABLE ${database}.jobs` },
  { id: 'ch-outfile', title: 'INTO OUTFILE', expect: 'refused', sql: ({ outfile }) => `SELECT 1 INTO OUTFILE '${outfile}'` },
  { id: 'ch-file', title: 'file() table function', expect: 'refused', sql: () => "SELECT * FROM file('/etc/passwd', 'LineAsString')" },
  { id: 'ch-url', title: 'url() table function (SSRF)', expect: 'refused', sql: ({ ingestUrl }) => `SELECT * FROM url('${ingestUrl}/healthz', 'LineAsString')` },
  { id: 'ch-insert-function', title: 'INSERT INTO FUNCTION file()', expect: 'refused', sql: ({ outfile }) => `INSERT INTO FUNCTION file('${outfile}', 'CSV') SELECT 1` },
  { id: 'ch-param-injection', title: "param_ value with a quote and a DROP", expect: 'ok-empty', params: { param_j: "x' OR 1=1; DROP TABLE jobs --" }, sql: ({ database }) => `SELECT count() AS n FROM ${database}.jobs WHERE job_id = {j:String} HAVING n > 0` },
  { id: 'ch-param-identifier', title: 'param_ Identifier carrying a second statement', expect: 'refused', params: { param_t: 'jobs; DROP TABLE jobs' }, sql: ({ database }) => `SELECT count() FROM ${database}.{t:Identifier}` },
];

/**
 * A JSON-escaped lone surrogate ("\ud800") is valid JSON and valid UTF-8: accepted, and the sink
 * inserts with input_format_json_throw_on_bad_escape_sequence=0 so ClickHouse keeps the row (found by
 * this suite: ClickHouse used to refuse it and the row was dead-lettered after a 200).
 */
export const loneSurrogateWebhook = (): Buffer =>
  mutated('lone-surrogate', (w) => {
    opp(w).prospect.job_title = '\ud800';
  });
