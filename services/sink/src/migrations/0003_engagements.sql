-- One row per engagement_history entry, exploded inside ClickHouse when opportunity_events is inserted.
-- idx is the entry's 0-based position in engagement_history.
CREATE TABLE IF NOT EXISTS {database}.engagements
(
    event_id         String,
    opportunity_id   String,
    job_id           String,
    client_record_id Nullable(String),
    idx              UInt16,
    type             LowCardinality(String),
    date             Nullable(DateTime64(3, 'UTC')),
    text             Nullable(String),
    link             Nullable(String),
    source           LowCardinality(Nullable(String)),
    received_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (event_id, idx)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.engagements_mv TO {database}.engagements AS
SELECT
    event_id,
    opportunity_id,
    job_id,
    client_record_id,
    toUInt16(i - 1) AS idx,
    tupleElement(entry, 'type') AS type,
    tupleElement(entry, 'date') AS date,
    tupleElement(entry, 'text') AS text,
    tupleElement(entry, 'link') AS link,
    tupleElement(entry, 'source') AS source,
    received_at
FROM {database}.opportunity_events
ARRAY JOIN engagement_history AS entry, arrayEnumerate(engagement_history) AS i;
