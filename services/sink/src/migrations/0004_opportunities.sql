-- Latest state per opportunity_id. Query with FINAL (or use v_opportunities).
-- version = the vendor's webhook timestamp, else received_at; on a tie the row inserted last wins.
-- NOTE: not partitioned: ReplacingMergeTree only collapses rows within one partition.
CREATE TABLE IF NOT EXISTS {database}.opportunities
(
    opportunity_id          String,
    version                 DateTime64(3, 'UTC'),
    event_id                String,
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
    engagement_last_date    Nullable(DateTime64(3, 'UTC')),
    custom                  Nullable(String)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY opportunity_id
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.opportunities_mv TO {database}.opportunities AS
SELECT
    opportunity_id,
    ifNull(webhook_timestamp, received_at) AS version,
    event_id, job_id, batch_id, webhook_timestamp, received_at,
    client_name, client_first_name, client_last_name, client_linkedin_url, client_record_id,
    client_owner_email, client_job_title, client_company_name,
    prospect_name, prospect_linkedin_url, prospect_job_title, prospect_company_name,
    company_name, company_domain, company_industry, company_employee_count,
    confidence_score, total_overlap_months,
    shared_company_name, shared_overlap_months, shared_client_role, shared_prospect_role, shared_is_current,
    is_target_company, engagement_total, engagement_last_date, custom
FROM {database}.opportunity_events;

-- The deduplicated latest state, for tools that cannot add FINAL themselves.
CREATE VIEW IF NOT EXISTS {database}.v_opportunities AS
SELECT * FROM {database}.opportunities FINAL;
