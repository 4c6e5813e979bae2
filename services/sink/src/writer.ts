import { createHash } from 'node:crypto';
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';
import { assertIdentifier, insertTransportFor } from './clickhouse.js';
import type { InsertTransport } from './clickhouse.js';

export type { InsertTransport } from './clickhouse.js';

export type SinkTable = 'opportunity_events' | 'jobs';
export const SINK_TABLES: readonly SinkTable[] = ['opportunity_events', 'jobs'];

export interface InsertBatch {
  table: SinkTable;
  /** `line`: the event's JSON exactly as it arrived from Kafka (one object, no newline). */
  rows: Array<{ eventId: string; line: string }>;
  /** Identifies this exact batch: the same batch retried must carry the same token. */
  dedupToken: string;
}

export interface InsertOutcome {
  inserted: number;
  /** Rows not inserted because their event_id is already stored or repeats within the batch. */
  duplicates: number;
}

export type ClickHouseWriteErrorCode =
  | 'CH_UNAVAILABLE'
  | 'CH_TIMEOUT'
  | 'CH_OVERLOADED'
  | 'CH_BAD_DATA'
  | 'CH_SCHEMA'
  | 'CH_UNKNOWN';

export class ClickHouseWriteError extends Error {
  override readonly cause?: unknown;
  constructor(
    message: string,
    readonly code: ClickHouseWriteErrorCode,
    readonly retriable: boolean,
    options?: { cause?: unknown; clickhouseCode?: string; clickhouseType?: string },
  ) {
    super(message);
    this.name = 'ClickHouseWriteError';
    this.cause = options?.cause;
    this.clickhouseCode = options?.clickhouseCode;
    this.clickhouseType = options?.clickhouseType;
  }
  /** ClickHouse's numeric error code, when the server answered. */
  readonly clickhouseCode: string | undefined;
  /** ClickHouse's error name, e.g. CANNOT_PARSE_INPUT_ASSERTION_FAILED. */
  readonly clickhouseType: string | undefined;
}

const RETRIABLE_TYPES: Record<string, ClickHouseWriteErrorCode> = {
  TIMEOUT_EXCEEDED: 'CH_TIMEOUT',
  SOCKET_TIMEOUT: 'CH_TIMEOUT',
  NETWORK_ERROR: 'CH_UNAVAILABLE',
  ALL_CONNECTION_TRIES_FAILED: 'CH_UNAVAILABLE',
  KEEPER_EXCEPTION: 'CH_UNAVAILABLE',
  TABLE_IS_READ_ONLY: 'CH_UNAVAILABLE',
  ABORTED: 'CH_UNAVAILABLE',
  QUERY_WAS_CANCELLED: 'CH_UNAVAILABLE',
  TOO_MANY_PARTS: 'CH_OVERLOADED',
  MEMORY_LIMIT_EXCEEDED: 'CH_OVERLOADED',
  TOO_MANY_SIMULTANEOUS_QUERIES: 'CH_OVERLOADED',
  TOO_MANY_SIMULTANEOUS_INSERTS: 'CH_OVERLOADED' as ClickHouseWriteErrorCode,
  NOT_ENOUGH_SPACE: 'CH_OVERLOADED',
};

/** Errors about the rows themselves: retrying cannot help; bisect the batch to find the poison row. */
const BAD_DATA_TYPES = new Set([
  'TYPE_MISMATCH',
  'INCORRECT_DATA',
  'CANNOT_READ_ALL_DATA',
  'ATTEMPT_TO_READ_AFTER_EOF',
  'INCORRECT_NUMBER_OF_COLUMNS',
  'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE',
  'CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN',
  'TOO_LARGE_STRING_SIZE',
  'TOO_LARGE_ARRAY_SIZE',
  'ILLEGAL_COLUMN',
  'DECIMAL_OVERFLOW',
  'ARGUMENT_OUT_OF_BOUND',
  'CANNOT_CONVERT_TYPE',
  'UNKNOWN_ELEMENT_OF_ENUM',
  'CANNOT_SKIP_UNKNOWN_FIELD',
  'NOT_FOUND_COLUMN_IN_BLOCK',
  'SIZES_OF_ARRAYS_DONT_MATCH',
  'BAD_ARGUMENTS',
  'INCORRECT_JSON',
]);

/** The deployment is wrong (missing table, permissions, bad setting): not retriable, not the data's fault. */
const SCHEMA_TYPES = new Set([
  'UNKNOWN_TABLE',
  'UNKNOWN_DATABASE',
  'NO_SUCH_COLUMN_IN_TABLE',
  'THERE_IS_NO_COLUMN',
  'UNKNOWN_IDENTIFIER',
  'UNKNOWN_SETTING',
  'READONLY',
  'ACCESS_DENIED',
  'NOT_ENOUGH_PRIVILEGES',
  'AUTHENTICATION_FAILED',
  'REQUIRED_PASSWORD',
  'SYNTAX_ERROR',
  'UNKNOWN_FORMAT',
]);

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'ERR_STREAM_PREMATURE_CLOSE',
  'CHDB_CLOSED',
  'CHDB_CONNECTION',
]);

function errorChain(err: unknown): unknown[] {
  const chain: unknown[] = [];
  let current: unknown = err;
  while (current !== undefined && current !== null && chain.length < 5 && !chain.includes(current)) {
    chain.push(current);
    current = (current as { cause?: unknown }).cause;
  }
  return chain;
}

/**
 * Classifies a failure of a ClickHouse call: retriable (network, timeouts, 5xx-ish overload)
 * or not (bad data → bisect the batch; schema/permissions → fix the deployment).
 * Unknown server errors are retriable: a transient fault must not send good data to the DLQ;
 * the caller caps the retries.
 */
export function classifyClickHouseError(err: unknown): ClickHouseWriteError {
  if (err instanceof ClickHouseWriteError) return err;
  const message = err instanceof Error ? err.message : String(err);
  for (const e of errorChain(err)) {
    const o = e as { code?: unknown; type?: unknown; name?: unknown; message?: unknown };
    const type = typeof o.type === 'string' ? o.type : undefined;
    const code = typeof o.code === 'string' || typeof o.code === 'number' ? String(o.code) : undefined;
    if (type) {
      const details = { cause: err, clickhouseType: type, ...(code ? { clickhouseCode: code } : {}) };
      const retriable = RETRIABLE_TYPES[type];
      if (retriable) return new ClickHouseWriteError(message, retriable, true, details);
      if (type.startsWith('CANNOT_PARSE') || BAD_DATA_TYPES.has(type)) {
        return new ClickHouseWriteError(message, 'CH_BAD_DATA', false, details);
      }
      if (SCHEMA_TYPES.has(type)) return new ClickHouseWriteError(message, 'CH_SCHEMA', false, details);
      return new ClickHouseWriteError(message, 'CH_UNKNOWN', true, details);
    }
    if (code && NETWORK_CODES.has(code)) return new ClickHouseWriteError(message, 'CH_UNAVAILABLE', true, { cause: err });
    if (code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT' || code === 'CHDB_TIMEOUT') {
      return new ClickHouseWriteError(message, 'CH_TIMEOUT', true, { cause: err });
    }
  }
  if (/timeout|timed out/i.test(message)) return new ClickHouseWriteError(message, 'CH_TIMEOUT', true, { cause: err });
  if (/socket hang up|ECONNREFUSED|ECONNRESET|connection (refused|reset|closed)|is closed/i.test(message)) {
    return new ClickHouseWriteError(message, 'CH_UNAVAILABLE', true, { cause: err });
  }
  if (/\b5\d\d\b|Service Unavailable|Bad Gateway|Gateway Timeout/i.test(message)) {
    return new ClickHouseWriteError(message, 'CH_UNAVAILABLE', true, { cause: err });
  }
  return new ClickHouseWriteError(message, 'CH_UNKNOWN', true, { cause: err });
}

/**
 * Settings that make the raw event JSON parse into the columns (ClickHouse 23.8+):
 * - objects (`custom`) are kept as their JSON text in a String column;
 * - "2025-03-15", "…T14:30:00Z" and offsets all parse into DateTime64;
 * - engagement_history objects fill the named tuples;
 * - a field this version doesn't know (an additive v1 change) is skipped, not an error.
 */
export const RAW_JSON_INPUT_SETTINGS: ClickHouseSettings = {
  input_format_json_read_objects_as_strings: 1,
  date_time_input_format: 'best_effort',
  input_format_json_named_tuples_as_objects: 1,
  input_format_json_defaults_for_missing_elements_in_named_tuple: 1,
  input_format_skip_unknown_fields: 1,
  input_format_import_nested_json: 0,
  // NOTE: a JSON-escaped lone surrogate ("\ud800") is valid JSON and the ingest accepts it; by
  // default ClickHouse refuses the whole row. With 0 the escape is kept as its literal text.
  input_format_json_throw_on_bad_escape_sequence: 0,
};

/** The top-level `custom` is not an object or null: it needs the slow path. */
const CUSTOM_NOT_OBJECT = /"custom"\s*:\s*(?![\s{]|null\b)/;
const JOB_ID = /"job_id"\s*:\s*"((?:[^"\\]|\\.)*)"/g;

/**
 * `custom` holds any JSON value. Objects go in as their raw text (fast path); null is NULL. A
 * string, number, boolean or array is rewritten here as its JSON text so `"abc"` is stored as
 * `"abc"`, not abc (JSONEachRow would unquote it). Only those rows are re-serialised.
 */
export function normaliseCustom(line: string): string {
  if (!CUSTOM_NOT_OBJECT.test(line)) return line;
  let event: Record<string, unknown>;
  try {
    event = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line; // ClickHouse will reject it with a parse error: the caller isolates the row.
  }
  const custom = event['custom'];
  if (custom === undefined || custom === null || (typeof custom === 'object' && !Array.isArray(custom))) return line;
  return JSON.stringify({ ...event, custom: JSON.stringify(custom) });
}

/**
 * All `"job_id":"…"` values in the line: the top-level one and any inside `custom`. A superset
 * only widens the duplicate check's scan; undefined means "could not tell" (scan by event_id only).
 */
function jobIdsOf(line: string): string[] | undefined {
  const ids: string[] = [];
  for (const match of line.matchAll(JOB_ID)) {
    try {
      ids.push(JSON.parse(`"${match[1]}"`) as string);
    } catch {
      return undefined;
    }
  }
  return ids.length > 0 ? ids : undefined;
}

/**
 * Idempotent writer: each event_id is stored once per table, so `count()` needs no FINAL.
 *
 * 1. Rows whose event_id repeats within the batch, or is already in the table, are dropped
 *    (parameterised SELECTs by job_id, then event_id: see `#existing`). A replayed webhook has the
 *    same event_ids under different offsets and dedup tokens, so the token alone can't catch it.
 * 2. The rest go in as JSONEachRow, the Kafka lines unchanged, with insert_deduplication_token:
 *    an identical retry after a lost acknowledgement is a no-op in ClickHouse (also for the MVs).
 *
 * NOTE: check-then-insert is race-free because the same opportunity (and job) always lands on the
 * same Kafka partition and so in one consumer; within this process, batches that share event_ids
 * are serialised here.
 */
export class ClickHouseWriter {
  readonly #client: ClickHouseClient;
  readonly #transport: InsertTransport;
  readonly #database: string;
  readonly #inFlight = new Map<string, Promise<unknown>>();
  /** `table|job_id` known to have rows (seen by the probe or inserted here): no probe needed. */
  readonly #knownJobs = new Set<string>();

  /**
   * `transport` defaults to the one `openClickHouse` chose for `client` (chDB's raw Buffer insert
   * in embedded mode, HTTP via the client otherwise).
   */
  constructor(client: ClickHouseClient, options: { database: string; transport?: InsertTransport }) {
    this.#client = client;
    this.#transport = options.transport ?? insertTransportFor(client);
    this.#database = assertIdentifier(options.database, 'database name');
  }

  async insert(batch: InsertBatch): Promise<InsertOutcome> {
    if (!SINK_TABLES.includes(batch.table)) throw new Error(`Unknown sink table: ${String(batch.table)}`);
    const table = `${this.#database}.${batch.table}`;

    const unique = new Map<string, string>();
    for (const row of batch.rows) if (!unique.has(row.eventId)) unique.set(row.eventId, row.line);
    let duplicates = batch.rows.length - unique.size;
    if (unique.size === 0) return { inserted: 0, duplicates };

    const keys = [...unique.keys()].map((id) => `${batch.table}:${id}`);
    const release = await this.#claim(keys);
    try {
      const { existing, jobs } = await this.#existing(table, unique);
      for (const id of existing) {
        if (unique.delete(id)) duplicates++;
      }
      if (unique.size === 0) return { inserted: 0, duplicates };

      // TRICKY: the token names the rows actually sent. When some were dropped as already stored,
      // the set differs from the batch the caller named, so derive a token for exactly this set:
      // the same retry still maps to the same token, and a different subset never reuses it.
      const token =
        unique.size === batch.rows.length
          ? batch.dedupToken
          : `${batch.dedupToken}:${createHash('sha256').update([...unique.keys()].join(',')).digest('hex').slice(0, 16)}`;
      const body = Buffer.from([...unique.values()].map(normaliseCustom).join('\n'));
      try {
        await this.#transport.insertJsonEachRow(table, body, {
          ...(RAW_JSON_INPUT_SETTINGS as Record<string, string | number>),
          insert_deduplicate: 1,
          insert_deduplication_token: token,
          deduplicate_blocks_in_dependent_materialized_views: 1,
        });
      } catch (err) {
        throw classifyClickHouseError(err);
      }
      if (jobs) this.#noteJobs(table, jobs);
      return { inserted: unique.size, duplicates };
    } finally {
      release();
    }
  }

  /**
   * The batch's event_ids already stored. (job_id, event_id) is the sorting key, so the check goes
   * in two steps that both read only the named jobs' granules:
   * 1. `SELECT DISTINCT job_id … WHERE job_id IN {jobs}`: which of the batch's jobs have any row.
   *    Usually none (a new webhook): no duplicate is possible and the event_id check is skipped.
   * 2. Only for the rows of jobs that exist (a replay, or a job spread over several batches):
   *    `SELECT event_id … WHERE job_id IN {existing jobs} AND event_id IN {their ids}`.
   * Step 1 is skipped when every job of the batch is already known here to have rows (a job
   * spread over several batches, the backlog case): then it is the single query of step 2. The
   * memory only picks the path; both paths are exact under the same premise as the single query
   * they replace: a stored duplicate carries the job_id of the event that repeats it. Lines whose
   * job_id can't be read fall back to the event_id-only check of the whole batch.
   */
  async #existing(table: string, rows: Map<string, string>): Promise<{ existing: Set<string>; jobs?: Set<string> }> {
    const jobsByEvent = new Map<string, string[]>();
    const jobIds = new Set<string>();
    for (const [id, line] of rows) {
      const found = jobIdsOf(line);
      if (!found) {
        const existing = await this.#select(`SELECT event_id FROM ${table} WHERE event_id IN {ids:Array(String)}`, { ids: [...rows.keys()] });
        return { existing };
      }
      jobsByEvent.set(id, found);
      for (const job of found) jobIds.add(job);
    }
    let present: Set<string>;
    if ([...jobIds].every((job) => this.#knownJobs.has(`${table}|${job}`))) {
      // A job spread over several batches: we know it has rows, skip the probe (one round trip).
      present = jobIds;
    } else {
      present = new Set(
        (
          await this.#query<{ job_id: string }>(`SELECT DISTINCT job_id FROM ${table} WHERE job_id IN {jobs:Array(String)}`, {
            jobs: [...jobIds],
          })
        ).map((r) => r.job_id),
      );
      this.#noteJobs(table, present);
      if (present.size === 0) return { existing: new Set(), jobs: jobIds };
    }
    const ids: string[] = [];
    for (const [id, jobs] of jobsByEvent) if (jobs.some((job) => present.has(job))) ids.push(id);
    const existing = await this.#select(
      `SELECT event_id FROM ${table} WHERE job_id IN {jobs:Array(String)} AND event_id IN {ids:Array(String)}`,
      { jobs: [...present], ids },
    );
    return { existing, jobs: jobIds };
  }

  /** Remembers jobs that have rows (bounded: forgetting one only costs a probe). */
  #noteJobs(table: string, jobs: Iterable<string>): void {
    if (this.#knownJobs.size > 100_000) this.#knownJobs.clear();
    for (const job of jobs) this.#knownJobs.add(`${table}|${job}`);
  }

  async #select(query: string, params: Record<string, unknown>): Promise<Set<string>> {
    return new Set((await this.#query<{ event_id: string }>(query, params)).map((r) => r.event_id));
  }

  async #query<T>(query: string, params: Record<string, unknown>): Promise<T[]> {
    try {
      const result = await this.#client.query({ query, format: 'JSONEachRow', query_params: params });
      return await result.json<T>();
    } catch (err) {
      throw classifyClickHouseError(err);
    }
  }

  /** Waits for in-flight inserts that share any of `keys`, then holds them until released. */
  async #claim(keys: string[]): Promise<() => void> {
    for (;;) {
      const waits = new Set<Promise<unknown>>();
      for (const key of keys) {
        const pending = this.#inFlight.get(key);
        if (pending) waits.add(pending);
      }
      if (waits.size === 0) break;
      await Promise.allSettled(waits);
    }
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    for (const key of keys) this.#inFlight.set(key, done);
    return () => {
      for (const key of keys) if (this.#inFlight.get(key) === done) this.#inFlight.delete(key);
      release();
    };
  }
}
