import { ApiKey, KafkaErrorCode } from '@clustr-pipeline/devkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LONG, ReliabilityPipeline, isAccepted, pick, send, sleep, summarise, webhook } from './support.js';

/**
 * Kafka-side faults: the broker goes away, produce / fetch / offset-commit requests fail, and the
 * ingest is killed with a webhook on its disk spool. One pipeline for the file; every scenario
 * uses its own job ids and ends with the pipeline idle (all committed), so the next starts clean.
 */
describe('reliability: Kafka faults', () => {
  let rp: ReliabilityPipeline;

  beforeAll(async () => {
    rp = await ReliabilityPipeline.start();
  });
  afterAll(async () => {
    await rp?.stop();
  });

  it('broker down for a while during a stream: every webhook gets 200 or 202, nothing lost or doubled', async () => {
    const outageMs = pick(10_000, 30_000);
    const webhooks = Array.from({ length: pick(16, 80) }, () => webhook('broker_down', pick(150, 500)));
    let down = false;
    const outage = (async () => {
      await sleep(1_500);
      await rp.mock.setBrokerDown(1);
      down = true;
      await sleep(outageMs);
      await rp.mock.setBrokerUp(1);
      down = false;
    })();
    const sent = await send(rp, webhooks, { concurrency: 2, gapMs: pick(600, 700), retries: 0 });
    await outage;
    expect(down).toBe(false);
    const result = await rp.verify(sent, pick(90_000, 300_000));
    const spooled = sent.filter((s) => s.statuses.includes(202)).length;
    summarise({ scenario: 'broker_down', sent, faults: 1, result, extra: { outage_ms: outageMs, spooled } });
    // Every sender got 200 or 202 at once (no retry needed), and the outage really spooled some.
    for (const s of sent) expect([200, 202], s.jobId).toContain(s.statuses[0]);
    expect(spooled).toBeGreaterThan(0);
    expect(result.problems, rp.logs()).toEqual([]);
    expect(result.lost).toBe(0);
    expect(result.duplicated).toBe(0);
  }, pick(240_000, 900_000));

  it('produce errors (NOT_LEADER_FOR_PARTITION, REQUEST_TIMED_OUT) injected during a stream', async () => {
    const webhooks = Array.from({ length: pick(12, 60) }, () => webhook('produce_errors', pick(200, 500)));
    let faults = 0;
    const codes = [KafkaErrorCode.NOT_LEADER_FOR_PARTITION, KafkaErrorCode.REQUEST_TIMED_OUT];
    const sent = await send(rp, webhooks, {
      concurrency: 2,
      gapMs: 200,
      retries: 0,
      onSent: async (index) => {
        // Arm a burst before every other webhook: the next few produce requests fail.
        if (index % 2 === 0) {
          const count = 2 + (index % 3);
          await rp.mock.injectErrors(ApiKey.Produce, codes[index % 4 < 2 ? 0 : 1]!, count);
          faults += count;
        }
      },
    });
    const result = await rp.verify(sent);
    summarise({ scenario: 'produce_errors', sent, faults, result });
    for (const s of sent) expect([200, 202], s.jobId).toContain(s.statuses[0]);
    expect(result.problems, rp.logs()).toEqual([]);
    expect(result.lost).toBe(0);
    expect(result.duplicated).toBe(0);
  }, pick(240_000, 900_000));

  it('fetch and offset-commit errors injected while the sink consumes', async () => {
    const webhooks = Array.from({ length: pick(12, 60) }, () => webhook('consume_errors', pick(200, 500)));
    let faults = 0;
    const inject = async (apiKey: number, code: number, count: number) => {
      await rp.mock.injectErrors(apiKey, code, count);
      faults += count;
    };
    // NOTE: every failed Fetch makes kafkajs rejoin the group (~5 s on the mock broker) and three
    // timed-out Fetches in a row crash the consumer (kafkajs restarts it ~10 s later): the default
    // mode injects a few; the long mode many, including that crash.
    const plan: Array<[number, number, number] | undefined> = LONG
      ? Array.from({ length: 60 }, (_, i) =>
          i % 3 !== 0
            ? undefined
            : ([
                [ApiKey.Fetch, KafkaErrorCode.NOT_LEADER_FOR_PARTITION, 1],
                [ApiKey.OffsetCommit, KafkaErrorCode.REQUEST_TIMED_OUT, 3],
                [ApiKey.Fetch, KafkaErrorCode.REQUEST_TIMED_OUT, 3],
                [ApiKey.OffsetCommit, KafkaErrorCode.NOT_COORDINATOR, 3],
              ][(i / 3) % 4] as [number, number, number]),
        )
      : [
          [ApiKey.Fetch, KafkaErrorCode.NOT_LEADER_FOR_PARTITION, 1],
          undefined,
          [ApiKey.OffsetCommit, KafkaErrorCode.REQUEST_TIMED_OUT, 3],
          undefined,
          [ApiKey.Fetch, KafkaErrorCode.REQUEST_TIMED_OUT, 2],
          undefined,
          [ApiKey.OffsetCommit, KafkaErrorCode.NOT_COORDINATOR, 3],
          undefined,
          [ApiKey.OffsetCommit, KafkaErrorCode.REQUEST_TIMED_OUT, 3],
        ];
    const sent = await send(rp, webhooks, {
      concurrency: 2,
      gapMs: 300,
      retries: 0,
      onSent: async (index) => {
        const step = plan[index];
        if (step) await inject(...step);
      },
    });
    const result = await rp.verify(sent);
    summarise({ scenario: 'consume_errors', sent, faults, result });
    for (const s of sent) expect([200, 202], s.jobId).toContain(s.statuses[0]);
    expect(result.problems, rp.logs()).toEqual([]);
    expect(result.lost).toBe(0);
    expect(result.duplicated).toBe(0);
  }, pick(240_000, 900_000));

  it('ingest SIGKILLed right after spooling a webhook: a restart on the same spool drains it', async () => {
    const webhooks = Array.from({ length: pick(3, 10) }, () => webhook('ingest_kill', pick(300, 1_000)));
    await rp.mock.setBrokerDown(1);
    let sent;
    try {
      // Kafka is down: each webhook waits out KAFKA_ACK_TIMEOUT_MS (the first) or joins the backlog, then 202.
      sent = await send(rp, webhooks, { concurrency: 1, retries: 0 });
      for (const s of sent) expect(s.statuses, s.jobId).toEqual([202]);
      await rp.pipeline.ingest.kill();
    } finally {
      await rp.mock.setBrokerUp(1);
    }
    await rp.pipeline.startIngest();
    // The restarted ingest drains its spool.
    const deadline = Date.now() + 60_000;
    let spoolFiles = -1;
    while (Date.now() < deadline) {
      const ready = (await (await fetch(`${rp.pipeline.ingestUrl}/readyz`)).json()) as { spool?: { files?: number } };
      spoolFiles = ready.spool?.files ?? -1;
      if (spoolFiles === 0) break;
      await sleep(500);
    }
    expect(spoolFiles).toBe(0);
    const result = await rp.verify(sent);
    summarise({ scenario: 'ingest_sigkill_after_spool', sent, faults: 1, result, extra: { spooled: sent.filter(isAccepted).length } });
    expect(result.problems, rp.logs()).toEqual([]);
    expect(result.lost).toBe(0);
    expect(result.duplicated).toBe(0);
  }, pick(240_000, 900_000));
});
