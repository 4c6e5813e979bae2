import { cloudEventHeaders, DLQ_HEADERS, type FlattenedWebhook } from '@clustr-pipeline/schema';

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

export interface MessageSettings {
  ceSource: string;
  topics: { opportunities: string; jobs: string };
}

/**
 * Flattened events → Kafka batches: the opportunity events first, the job event last, so a
 * consumer that sees the job event can trust that every opportunity of the job was written.
 */
export function toMessageBatches(flat: FlattenedWebhook, settings: MessageSettings): MessageBatch[] {
  const { job, opportunities } = flat;
  const time = job.webhook_timestamp ?? job.received_at;
  const opportunityMessages = opportunities.map((event) => ({
    key: event.opportunity_id,
    value: JSON.stringify(event),
    headers: { ...cloudEventHeaders({ kind: 'opportunity', eventId: event.event_id, source: settings.ceSource, time, subject: event.opportunity_id }) },
  }));
  const jobMessage = {
    key: job.job_id,
    value: JSON.stringify(job),
    headers: { ...cloudEventHeaders({ kind: 'job', eventId: job.event_id, source: settings.ceSource, time, subject: job.job_id }) },
  };
  const batches: MessageBatch[] = [];
  if (opportunityMessages.length > 0) batches.push({ topic: settings.topics.opportunities, messages: opportunityMessages });
  batches.push({ topic: settings.topics.jobs, messages: [jobMessage] });
  return batches;
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
