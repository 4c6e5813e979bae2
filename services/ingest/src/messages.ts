import { cloudEventHeaders, DLQ_HEADERS, flattenWebhook, type ClustrWebhook, type FlattenedWebhook, type JobEvent, type Opportunity, type OpportunityEvent } from '@clustr-pipeline/schema';

/** A Kafka message ready to send: what kafkajs `send` takes, with string headers. */
export interface OutgoingMessage {
  key: string;
  value: string | Buffer;
  headers: Record<string, string>;
}

/** Messages for one topic. Batches are published in order, each fully acknowledged before the next. */
export interface MessageBatch {
  topic: string;
  messages: OutgoingMessage[];
}

/**
 * What the publisher takes: messages for one topic, possibly produced lazily. `messages` must be
 * re-iterable (each iteration yields the same messages again): the spool drainer retries.
 * Every MessageBatch is a MessageStream.
 */
export interface MessageStream {
  topic: string;
  messages: Iterable<OutgoingMessage>;
}

export interface MessageSettings {
  ceSource: string;
  topics: { opportunities: string; jobs: string };
}

function opportunityMessage(event: OpportunityEvent, source: string, time: string): OutgoingMessage {
  return {
    key: event.opportunity_id,
    value: JSON.stringify(event),
    headers: cloudEventHeaders({ kind: 'opportunity', eventId: event.event_id, source, time, subject: event.opportunity_id }),
  };
}

function jobMessage(job: JobEvent, source: string, time: string): OutgoingMessage {
  return {
    key: job.job_id,
    value: JSON.stringify(job),
    headers: cloudEventHeaders({ kind: 'job', eventId: job.event_id, source, time, subject: job.job_id }),
  };
}

/**
 * Flattened events → Kafka batches: the opportunity events first, the job event last, so a
 * consumer that sees the job event can trust that every opportunity of the job was written.
 */
export function toMessageBatches(flat: FlattenedWebhook, settings: MessageSettings): MessageBatch[] {
  const { job, opportunities } = flat;
  const time = job.webhook_timestamp ?? job.received_at;
  const batches: MessageBatch[] = [];
  if (opportunities.length > 0) batches.push({ topic: settings.topics.opportunities, messages: opportunities.map((event) => opportunityMessage(event, settings.ceSource, time)) });
  batches.push({ topic: settings.topics.jobs, messages: [jobMessage(job, settings.ceSource, time)] });
  return batches;
}

/** Opportunities flattened (and serialised) at a time by webhookMessageStreams. */
export const FLATTEN_SLICE = 256;

export interface WebhookMessages {
  /** The same messages, in the same order, as `toMessageBatches(flattenWebhook(webhook, receivedAt))`. */
  batches: MessageStream[];
  job: JobEvent;
  /** Opportunity events + 1 job event. */
  events: number;
}

/**
 * The opportunities of one result, possibly produced on demand: `slice(start, end)` returns them
 * in order, like `Array.prototype.slice` (an array is an OpportunityList).
 */
export interface OpportunityList {
  readonly length: number;
  slice(start: number, end: number): Opportunity[];
}

/**
 * A validated webhook whose opportunities are produced on demand: `opportunities(i)` stands for
 * `webhook.results[i].opportunities`, which is ignored.
 */
export interface LazyWebhook {
  webhook: ClustrWebhook;
  opportunities(resultIndex: number): OpportunityList;
}

/**
 * Like `toMessageBatches(flattenWebhook(webhook, receivedAt), settings)`, but the opportunity
 * messages are flattened and serialised lazily, a slice at a time, while the publisher pulls
 * chunks: a 100,000-opportunity webhook never has all its events, values and headers in memory at
 * once, and the first produce request leaves before the last event is built.
 */
export function webhookMessageStreams(webhook: ClustrWebhook, receivedAt: Date, settings: MessageSettings, sliceSize = FLATTEN_SLICE): WebhookMessages {
  const results = webhook.results ?? [];
  return lazyWebhookMessageStreams({ webhook, opportunities: (i) => results[i]!.opportunities ?? [] }, receivedAt, settings, sliceSize);
}

/**
 * `webhookMessageStreams` for opportunities produced on demand (see LazyWebhook): each slice is
 * taken from its OpportunityList when the publisher pulls it, and dropped once serialised. The
 * streams are re-iterable; each iteration takes the slices again.
 *
 * Each slice goes through `flattenWebhook` itself (on the webhook restricted to one result and a
 * slice of its opportunities), so the events are the flattener's, byte for byte; an opportunity
 * event depends only on the webhook's top-level fields, its result's client and the opportunity.
 */
export function lazyWebhookMessageStreams(source: LazyWebhook, receivedAt: Date, settings: MessageSettings, sliceSize = FLATTEN_SLICE): WebhookMessages {
  const { webhook } = source;
  const results = webhook.results ?? [];
  let opportunityCount = 0;
  for (let i = 0; i < results.length; i++) opportunityCount += source.opportunities(i).length;
  // The job event of the same results without their opportunities, plus the real count.
  const flatJob = flattenWebhook({ ...webhook, results: results.map(() => ({})) }, receivedAt).job;
  const job: JobEvent = { ...flatJob, opportunity_count: opportunityCount };
  const time = job.webhook_timestamp ?? job.received_at;
  const ceSource = settings.ceSource;
  // Only what opportunity events are made of; `error` and `summary` feed the job event alone.
  const envelope: ClustrWebhook = { ...webhook, error: null, summary: null };
  const opportunityMessages: Iterable<OutgoingMessage> = {
    *[Symbol.iterator]() {
      for (let i = 0; i < results.length; i++) {
        const opportunities = source.opportunities(i);
        for (let start = 0; start < opportunities.length; start += sliceSize) {
          const slice = { ...results[i]!, opportunities: opportunities.slice(start, start + sliceSize) };
          for (const event of flattenWebhook({ ...envelope, results: [slice] }, receivedAt).opportunities) yield opportunityMessage(event, ceSource, time);
        }
      }
    },
  };
  const batches: MessageStream[] = [];
  if (opportunityCount > 0) batches.push({ topic: settings.topics.opportunities, messages: opportunityMessages });
  batches.push({ topic: settings.topics.jobs, messages: [jobMessage(job, ceSource, time)] });
  return { batches, job, events: opportunityCount + 1 };
}

/** Longest `dlq_error` header value, in characters: headers should stay small. */
export const DLQ_ERROR_MAX_CHARS = 4_096;

export interface DeadLetter {
  /** The raw (decompressed) request body, byte for byte. */
  body: Buffer;
  /** An error code, e.g. INGEST_ERR_SCHEMA. */
  reason: string;
  /** Details, usually the schema issues as JSON; truncated to DLQ_ERROR_MAX_CHARS. */
  error: string;
  receivedAt: Date;
  requestId: string;
  contentType: string;
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export function toDeadLetterBatch(letter: DeadLetter, topic: string): MessageBatch {
  return {
    topic,
    messages: [
      {
        key: letter.requestId,
        value: letter.body,
        headers: {
          [DLQ_HEADERS.reason]: letter.reason,
          [DLQ_HEADERS.error]: truncate(letter.error, DLQ_ERROR_MAX_CHARS),
          [DLQ_HEADERS.stage]: 'ingest',
          [DLQ_HEADERS.receivedAt]: letter.receivedAt.toISOString(),
          [DLQ_HEADERS.requestId]: letter.requestId,
          [DLQ_HEADERS.contentType]: letter.contentType,
        },
      },
    ],
  };
}

export function countMessages(batches: MessageBatch[]): number {
  return batches.reduce((n, b) => n + b.messages.length, 0);
}
