import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { flattenWebhook, makeWebhook, parseWebhook, type ClustrWebhook, type OpportunityEvent } from '@clustr-pipeline/schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestPipeline } from '../harness/pipeline.js';
import { repoRoot } from '../harness/service.js';

const fixture = (name: string): ClustrWebhook => {
  const parsed = parseWebhook(JSON.parse(readFileSync(join(repoRoot, 'packages/schema/fixtures', name), 'utf8')));
  if (!parsed.ok) throw new Error(`fixture ${name} is invalid`);
  return parsed.webhook;
};

/** Normalises a value read back from ClickHouse so it compares with the event's JSON value. */
function normalise(field: keyof OpportunityEvent | string, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (field === 'custom' || field === 'error_details_json') return typeof value === 'string' ? JSON.parse(value) : value;
  if (field.endsWith('_timestamp') || field === 'received_at') return new Date(String(value).replace(' ', 'T') + (String(value).endsWith('Z') ? '' : 'Z')).getTime();
  if (field === 'engagement_last_date' || field === 'date') return String(value).slice(0, 10);
  return value;
}

describe('webhook → ingest → Kafka → sink → ClickHouse', () => {
  let pipeline: TestPipeline;

  beforeAll(async () => {
    pipeline = await TestPipeline.start({ partitions: { opportunities: 12 } });
  });
  afterAll(async () => {
    await pipeline?.stop();
  });

  it('lands every field of the documented sample in its column', async () => {
    const webhook = fixture('completed-full-history.json');
    const response = await pipeline.post(webhook);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'accepted', job_id: webhook.job_id, events: 2 });

    expect(await pipeline.waitForCount('opportunity_events', 1, 30_000, 'job_id = {j:String}', { j: webhook.job_id })).toBe(1);
    const [row] = await pipeline.query<Record<string, unknown>>(
      `SELECT * EXCEPT engagement_history FROM ${pipeline.database}.opportunity_events WHERE job_id = {j:String}`,
      { j: webhook.job_id },
    );
    const expected = flattenWebhook(webhook, new Date(String(row!.received_at))).opportunities[0]!;
    for (const [field, value] of Object.entries(expected)) {
      if (field === 'engagement_history') continue;
      expect.soft(normalise(field, row![field]), field).toEqual(normalise(field, value));
    }

    const engagements = await pipeline.query<Record<string, unknown>>(
      `SELECT type, toString(date) AS date, text, link, source, opportunity_id, job_id, client_record_id, event_id
       FROM ${pipeline.database}.engagements WHERE job_id = {j:String} ORDER BY date DESC`,
      { j: webhook.job_id },
    );
    // A calendar date is stored as midnight UTC in a DateTime64 column.
    expect(engagements.map((e) => ({ type: e.type, date: String(e.date).slice(0, 10), text: e.text, link: e.link, source: e.source }))).toEqual(
      expected.engagement_history,
    );
    for (const e of engagements) {
      expect(e).toMatchObject({ opportunity_id: 'opp_abc123', job_id: webhook.job_id, client_record_id: 'CRM_12345', event_id: expected.event_id });
    }
  });

  it('lands the failed sample in jobs with its error', async () => {
    const webhook = fixture('failed.json');
    expect((await pipeline.post(webhook)).status).toBe(200);
    expect(await pipeline.waitForCount('jobs', 1, 30_000, "job_id = {j:String} AND status = 'failed'", { j: webhook.job_id })).toBe(1);
    const [job] = await pipeline.query<Record<string, unknown>>(
      `SELECT * FROM ${pipeline.database}.jobs WHERE job_id = {j:String} AND status = 'failed'`,
      { j: webhook.job_id },
    );
    expect(job).toMatchObject({
      batch_id: 'batch_xyz789',
      error_code: 'PROCESSING_ERROR',
      error_message: 'Failed to process contacts',
      error_details: 'Additional error context',
      opportunity_count: 0,
      result_count: 0,
      total_processed: 0,
    });
  });

  it('keeps exactly one row per opportunity when the same webhook is sent twice', async () => {
    const webhook = makeWebhook({ opportunities: 3_000, engagements: 1, jobId: 'job_e2e_twice' });
    for (let i = 0; i < 2; i++) expect((await pipeline.post(webhook)).status).toBe(200);
    const where = 'job_id = {j:String}';
    expect(await pipeline.waitForCount('opportunity_events', 3_000, 30_000, where, { j: webhook.job_id })).toBe(3_000);
    // Give the second copy time to arrive, then check nothing doubled anywhere users query.
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await pipeline.count('opportunity_events', where, { j: webhook.job_id })).toBe(3_000);
    expect(await pipeline.count('engagements', where, { j: webhook.job_id })).toBe(3_000);
    expect(await pipeline.count('jobs', where, { j: webhook.job_id })).toBe(1);
    const [distinct] = await pipeline.query<{ n: string }>(
      `SELECT uniqExact(opportunity_id) AS n FROM ${pipeline.database}.opportunities FINAL WHERE job_id = {j:String}`,
      { j: webhook.job_id },
    );
    expect(Number(distinct!.n)).toBe(3_000);
  });

  it('loses and duplicates nothing when the sink restarts mid-stream', async () => {
    const webhooks = Array.from({ length: 6 }, (_, i) => makeWebhook({ opportunities: 1_000, jobId: `job_e2e_restart_${i}` }));
    const sends = webhooks.slice(0, 3).map((w) => pipeline.post(w));
    for (const r of await Promise.all(sends)) expect(r.status).toBe(200);
    await pipeline.sink.stop();
    await pipeline.startSink();
    for (const r of await Promise.all(webhooks.slice(3).map((w) => pipeline.post(w)))) expect(r.status).toBe(200);
    // And once more, all of them, as a replay.
    for (const r of await Promise.all(webhooks.map((w) => pipeline.post(w)))) expect(r.status).toBe(200);
    const where = "job_id LIKE 'job_e2e_restart_%'";
    expect(await pipeline.waitForCount('opportunity_events', 6_000, 60_000, where)).toBe(6_000);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await pipeline.count('opportunity_events', where)).toBe(6_000);
    expect(await pipeline.count('jobs', where)).toBe(6);
  });
});
