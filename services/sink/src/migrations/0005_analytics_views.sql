-- Dashboard views. They read the deduplicated latest state (opportunities FINAL), so a replayed or
-- repeated webhook never counts twice.

-- Per target company: how many warm paths, from how many clients, and the best one.
CREATE VIEW IF NOT EXISTS {database}.v_target_company_summary AS
SELECT
    company_name,
    any(company_domain) AS company_domain,
    any(company_industry) AS company_industry,
    count() AS opportunities,
    uniqExact(coalesce(client_record_id, client_linkedin_url, client_name)) AS distinct_clients,
    avg(confidence_score) AS avg_confidence,
    max(confidence_score) AS max_confidence,
    argMax(client_name, ifNull(confidence_score, -1)) AS best_client_name,
    argMax(client_record_id, ifNull(confidence_score, -1)) AS best_client_record_id,
    argMax(prospect_name, ifNull(confidence_score, -1)) AS best_prospect_name,
    argMax(prospect_linkedin_url, ifNull(confidence_score, -1)) AS best_prospect_linkedin_url,
    argMax(opportunity_id, ifNull(confidence_score, -1)) AS best_opportunity_id
FROM {database}.opportunities FINAL
WHERE is_target_company = true AND company_name IS NOT NULL
GROUP BY company_name;

-- Per client (and its owner): opportunities, how many are on target companies, average confidence.
CREATE VIEW IF NOT EXISTS {database}.v_client_summary AS
SELECT
    client_key,
    any(record_id) AS client_record_id,
    any(name) AS client_name,
    any(owner_email) AS client_owner_email,
    count() AS opportunities,
    countIf(is_target_company = true) AS target_company_opportunities,
    avg(confidence_score) AS avg_confidence,
    max(received_at) AS last_received_at
FROM
(
    SELECT
        coalesce(client_record_id, client_linkedin_url, client_name) AS client_key,
        client_record_id AS record_id,
        client_name AS name,
        client_owner_email AS owner_email,
        is_target_company,
        confidence_score,
        received_at
    FROM {database}.opportunities FINAL
)
WHERE client_key IS NOT NULL
GROUP BY client_key;

-- Per day and engagement type. Only the latest event of each opportunity counts: every webhook
-- carries the full history, so older events would count the same engagement again.
CREATE VIEW IF NOT EXISTS {database}.v_engagement_daily AS
SELECT
    toDate(date) AS day,
    type,
    count() AS engagements,
    uniqExact(opportunity_id) AS opportunities
FROM {database}.engagements FINAL
WHERE date IS NOT NULL
  AND event_id IN (SELECT event_id FROM {database}.opportunities FINAL)
GROUP BY day, type;
