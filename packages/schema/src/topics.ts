/** Public topic names (v1). A breaking change gets a new `.v2` topic, never an edit here. */
export const TOPICS = {
  opportunities: 'clustr.opportunities.v1',
  jobs: 'clustr.jobs.v1',
  dlq: 'clustr.dlq.v1',
} as const;
export type TopicRole = keyof typeof TOPICS;

/** CloudEvents `type` attribute per event kind. */
export const CE_TYPES = {
  opportunity: 'com.clustr.opportunity.v1',
  job: 'com.clustr.job.v1',
} as const;
export type EventKind = keyof typeof CE_TYPES;

/**
 * Headers on every dead-letter message. The value is the raw bytes that could not be processed.
 * `dlq_source_*` headers are set by the sink (the position of the poison message); the ingest
 * sets `dlq_reason`, `dlq_error` and `dlq_received_at` and carries the request id.
 */
export const DLQ_HEADERS = {
  reason: 'dlq_reason',
  error: 'dlq_error',
  stage: 'dlq_stage',
  receivedAt: 'dlq_received_at',
  requestId: 'dlq_request_id',
  sourceTopic: 'dlq_source_topic',
  sourcePartition: 'dlq_source_partition',
  sourceOffset: 'dlq_source_offset',
  contentType: 'content-type',
} as const;
