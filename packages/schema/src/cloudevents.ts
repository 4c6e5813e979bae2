import { CE_TYPES, type EventKind } from './topics.js';

/** CloudEvents 1.0 Kafka protocol binding, binary content mode: attributes as `ce_*` headers. */
export interface CloudEventHeaders {
  ce_specversion: '1.0';
  ce_id: string;
  ce_type: string;
  ce_source: string;
  ce_time: string;
  ce_subject: string;
  'content-type': 'application/json';
  [header: string]: string;
}

export interface CloudEventAttributes {
  kind: EventKind;
  eventId: string;
  /** URI-reference naming the producer, e.g. `urn:clustr-pipeline:ingest`. */
  source: string;
  /** When the event happened: the webhook's timestamp, else when we received it. */
  time: string;
  /** The entity the event is about: the opportunity id or the job id. */
  subject: string;
}

export function cloudEventHeaders(a: CloudEventAttributes): CloudEventHeaders {
  return {
    ce_specversion: '1.0',
    ce_id: a.eventId,
    ce_type: CE_TYPES[a.kind],
    ce_source: a.source,
    ce_time: a.time,
    ce_subject: a.subject,
    'content-type': 'application/json',
  };
}
