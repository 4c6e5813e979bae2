-- One row per OpportunityEvent (topic clustr.opportunities.v1); column names = event field names.
-- The writer inserts each Kafka message's JSON unchanged (JSONEachRow) and checks event_id first,
-- so `SELECT count() FROM {database}.opportunity_events` is exact without FINAL.
-- ReplacingMergeTree on the same key is only a backstop for a duplicate that slipped past the check.
CREATE TABLE IF NOT EXISTS {database}.opportunity_events
(
    event_id                String,
    schema_version          UInt8,
    job_id                  String,
    batch_id                Nullable(String),
    webhook_timestamp       Nullable(DateTime64(3, 'UTC')),
    received_at             DateTime64(3, 'UTC'),
    client_name             Nullable(String),
    client_first_name       Nullable(String),
    client_last_name        Nullable(String),
    client_linkedin_url     Nullable(String),
    client_record_id        Nullable(String),
    client_owner_email      LowCardinality(Nullable(String)),
    client_job_title        LowCardinality(Nullable(String)),
    client_company_name     LowCardinality(Nullable(String)),
    opportunity_id          String,
    prospect_name           Nullable(String),
    prospect_linkedin_url   Nullable(String),
    prospect_job_title      LowCardinality(Nullable(String)),
    prospect_company_name   Nullable(String),
    company_name            Nullable(String),
    company_domain          Nullable(String),
    company_industry        LowCardinality(Nullable(String)),
    company_employee_count  LowCardinality(Nullable(String)),
    confidence_score        Nullable(Float32),
    total_overlap_months    Nullable(UInt16),
    shared_company_name     Nullable(String),
    shared_overlap_months   Nullable(UInt16),
    shared_client_role      LowCardinality(Nullable(String)),
    shared_prospect_role    LowCardinality(Nullable(String)),
    shared_is_current       Nullable(Bool),
    is_target_company       Nullable(Bool),
    engagement_total        Nullable(UInt32),
    -- "2025-03-15" (midnight UTC) or a date-time; both parse with date_time_input_format='best_effort'.
    engagement_last_date    Nullable(DateTime64(3, 'UTC')),
    engagement_history      Array(Tuple(
                                type   LowCardinality(String),
                                date   Nullable(DateTime64(3, 'UTC')),
                                text   Nullable(String),
                                link   Nullable(String),
                                source LowCardinality(Nullable(String)))),
    -- The webhook's `custom` as JSON text; NULL when it was null/absent.
    custom                  Nullable(String)
)
ENGINE = ReplacingMergeTree
-- NOTE: the event time the vendor stamped, so a replayed webhook lands in the same partition;
-- received_at only when the vendor sent no timestamp.
PARTITION BY toYYYYMM(ifNull(webhook_timestamp, received_at))
-- event_id = hash(job_id, opportunity_id): (job_id, event_id) is as unique as event_id and lets the
-- writer's duplicate check read only the granules of the batch's jobs.
ORDER BY (job_id, event_id)
SETTINGS non_replicated_deduplication_window = 1000;
