-- One row per JobEvent (topic clustr.jobs.v1): the webhook's status, summary and error.
CREATE TABLE IF NOT EXISTS {database}.jobs
(
    event_id                String,
    schema_version          UInt8,
    job_id                  String,
    batch_id                Nullable(String),
    status                  LowCardinality(String),
    total_processed         Nullable(UInt32),
    total_opportunities     Nullable(UInt32),
    processing_time_seconds Nullable(Float64),
    result_count            UInt32,
    opportunity_count       UInt32,
    error_code              LowCardinality(Nullable(String)),
    error_message           Nullable(String),
    error_details           Nullable(String),
    custom                  Nullable(String),
    webhook_timestamp       Nullable(DateTime64(3, 'UTC')),
    received_at             DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ifNull(webhook_timestamp, received_at))
ORDER BY (job_id, event_id)
SETTINGS non_replicated_deduplication_window = 1000;
