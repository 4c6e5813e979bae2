import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { flattenWebhook, makeWebhook, parseWebhook, TOPICS } from '@clustr-pipeline/schema';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Delivery } from './delivery.js';
import { IngestError } from './errors.js';
import { createMetrics } from './metrics.js';
import { SpoolDrainer, spooledToStreams } from './spool-drainer.js';
import { toMessageBatches, type MessageStream } from './messages.js';
import { QUARANTINE_DIR, Spool, SpoolCorruptError, type SpooledWebhook } from './spool.js';
import { FakePublisher, fixtureText, tempDir, waitFor } from './testing/helpers.js';

const logger = pino({ level: 'silent' });
const messages = { ceSource: 'urn:test', topics: { opportunities: TOPICS.opportunities, jobs: TOPICS.jobs } };
const webhook = (jobId: string, receivedAt = new Date('2026-12-04T10:00:00.000Z')): SpooledWebhook => ({
  requestId: `req-${jobId}`,
  receivedAt,
  contentType: 'application/json',
  body: Buffer.from(fixtureText('completed').replace('job_abc123', jobId)),
});
const jobIds = (publisher: FakePublisher) => publisher.published.map((batches) => batches.at(-1)!.messages[0]!.key);

describe('spooledToStreams', () => {
  const materialise = (streams: MessageStream[]) => streams.map((s) => ({ topic: s.topic, messages: [...s.messages] }));

  it('rebuilds the same messages as the HTTP path: deterministic ids and the original received_at', () => {
    const spooled = webhook('job_1', new Date('2020-01-02T03:04:05.678Z'));
    const streams = spooledToStreams(spooled, messages);
    const [opportunities, jobs] = materialise(streams);
    const job = JSON.parse(String(jobs!.messages[0]!.value)) as { event_id: string; received_at: string };
    expect(job.received_at).toBe('2020-01-02T03:04:05.678Z');
    const parsed = parseWebhook(JSON.parse(spooled.body.toString()));
    if (!parsed.ok) throw new Error('fixture is invalid');
    expect([opportunities, jobs]).toEqual(toMessageBatches(flattenWebhook(parsed.webhook, spooled.receivedAt), messages));
    // Re-iterable: a retry after a failed publish yields the same messages again.
    expect(materialise(streams)).toEqual([opportunities, jobs]);
  });

  it('takes the large-body path for big bodies, with the same messages', () => {
    const body = Buffer.from(JSON.stringify(makeWebhook({ opportunities: 600, engagements: 1, jobId: 'job_large' })));
    const spooled: SpooledWebhook = { requestId: 'req-large', receivedAt: new Date('2026-12-04T10:00:00.000Z'), contentType: 'application/json', body };
    const usual = materialise(spooledToStreams(spooled, messages));
    const large = materialise(spooledToStreams(spooled, messages, 0));
    expect(usual[0]!.messages).toHaveLength(600);
    expect(large).toEqual(usual);
  });

  it('refuses a body that no longer parses or validates', () => {
    const spooled = (text: string): SpooledWebhook => ({ requestId: 'r', receivedAt: new Date(), contentType: 'application/json', body: Buffer.from(text) });
    expect(() => spooledToStreams(spooled('{"status":'), messages)).toThrow(SpoolCorruptError);
    expect(() => spooledToStreams(spooled('{"status":"completed"}'), messages)).toThrow(SpoolCorruptError);
    expect(() => spooledToStreams(spooled('{"status":'), messages, 0)).toThrow(SpoolCorruptError);
  });
});

describe('Delivery', () => {
  it('publishes directly when Kafka is fine and nothing is spooled', async () => {
    const publisher = new FakePublisher();
    const spool = await Spool.open({ dir: tempDir(), maxBytes: 1e9, logger });
    const delivery = new Delivery({ publisher, spool, logger });
    expect(await delivery.deliver(webhook('a'), spooledToStreams(webhook('a'), messages))).toBe('published');
    expect(spool.isEmpty()).toBe(true);
  });

  it('spools on a Kafka timeout, then spools everything behind it (arrival order)', async () => {
    const publisher = new FakePublisher();
    const spool = await Spool.open({ dir: tempDir(), maxBytes: 1e9, logger });
    const metrics = createMetrics({ defaultMetrics: false });
    const delivery = new Delivery({ publisher, spool, logger, metrics });
    publisher.failWith = new IngestError('INGEST_ERR_KAFKA_TIMEOUT');
    expect(await delivery.deliver(webhook('a'), [])).toBe('spooled');
    publisher.failWith = undefined;
    expect(await delivery.deliver(webhook('b'), [])).toBe('spooled');
    publisher.isReady = false;
    await spool.remove(spool.head()!);
    await spool.remove(spool.head()!);
    expect(await delivery.deliver(webhook('c'), [])).toBe('spooled');
    expect(publisher.published).toEqual([]);
    expect(await metrics.registry.getSingleMetricAsString('clustr_ingest_spooled_total')).toMatch(/reason="kafka_timeout"} 1[\s\S]*reason="backlog"} 1[\s\S]*reason="kafka_unavailable"} 1/);
  });

  it('without a spool, or for a non-retriable error, the error reaches the sender', async () => {
    const publisher = new FakePublisher();
    publisher.failWith = new Error('boom');
    await expect(new Delivery({ publisher, logger }).deliver(webhook('a'), [])).rejects.toMatchObject({ code: 'INGEST_ERR_KAFKA_UNAVAILABLE' });
    const spool = await Spool.open({ dir: tempDir(), maxBytes: 1e9, logger });
    publisher.failWith = new IngestError('INGEST_ERR_INTERNAL');
    await expect(new Delivery({ publisher, spool, logger }).deliver(webhook('a'), [])).rejects.toMatchObject({ code: 'INGEST_ERR_INTERNAL' });
  });
});

describe('SpoolDrainer', () => {
  it('publishes in arrival order once Kafka is ready, deletes each file after its ack, retries failures', async () => {
    const dir = tempDir();
    const publisher = new FakePublisher();
    publisher.isReady = false;
    const spool = await Spool.open({ dir, maxBytes: 1e9, logger });
    for (const id of ['j1', 'j2', 'j3']) await spool.append(webhook(id));
    const drainer = new SpoolDrainer({ spool, publisher, messages, logger, backoffMs: [10, 20], pollMs: 10 });
    drainer.start();
    try {
      await new Promise((r) => setTimeout(r, 50));
      expect(publisher.published).toEqual([]);
      publisher.failWith = new IngestError('INGEST_ERR_KAFKA_TIMEOUT');
      publisher.isReady = true;
      await new Promise((r) => setTimeout(r, 80));
      expect(spool.stats().files).toBe(3);
      publisher.failWith = undefined;
      await waitFor(() => spool.isEmpty(), 5_000, 'spool drained');
      expect(jobIds(publisher)).toEqual(['j1', 'j2', 'j3']);
      expect(readdirSync(dir)).toEqual([]);
      // Later appends wake it up at once.
      await spool.append(webhook('j4'));
      await waitFor(() => spool.isEmpty(), 5_000, 'j4 drained');
      expect(jobIds(publisher)).toEqual(['j1', 'j2', 'j3', 'j4']);
    } finally {
      await drainer.close();
    }
  });

  it('moves an unreadable file to rejected/ and carries on', async () => {
    const dir = tempDir();
    const publisher = new FakePublisher();
    const spool = await Spool.open({ dir, maxBytes: 1e9, logger });
    const bad = await spool.append(webhook('bad'));
    writeFileSync(join(dir, bad.name), 'not a spool file');
    await spool.append(webhook('good'));
    const drainer = new SpoolDrainer({ spool, publisher, messages, logger, pollMs: 10 });
    drainer.start();
    try {
      await waitFor(() => spool.isEmpty(), 5_000, 'spool drained');
      expect(jobIds(publisher)).toEqual(['good']);
      expect(readdirSync(join(dir, QUARANTINE_DIR))).toEqual([bad.name]);
    } finally {
      await drainer.close();
    }
  });
});
