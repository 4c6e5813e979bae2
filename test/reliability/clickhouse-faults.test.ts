import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReliabilityPipeline, pick, send, sleep, summarise, webhook } from './support.js';

/**
 * ClickHouse-side faults and sink crashes: ClickHouse unreachable, then answering 500, behind the
 * fault proxy; the sink SIGKILLed while it inserts a stream. One pipeline for the file.
 */
describe('reliability: ClickHouse faults and sink crashes', () => {
  let rp: ReliabilityPipeline;

  beforeAll(async () => {
    rp = await ReliabilityPipeline.start();
  });
  afterAll(async () => {
    await rp?.stop();
  });

  it(
    'ClickHouse unreachable, then answering 500: nothing committed while failing, everything stored after',
    async () => {
      const phaseMs = pick(8_000, 30_000);
      const perPhase = pick(5, 25);
      // Start idle, so that any commit during the outage would be a commit past what is stored.
      expect(await rp.waitForCommitted(30_000)).toEqual([]);
      const before = await rp.offsets();

      const sent = [];
      const samples: number[] = [];
      const watch = async (ms: number) => {
        const until = Date.now() + ms;
        while (Date.now() < until) {
          samples.push(ReliabilityPipeline.total((await rp.offsets()).committed));
          await sleep(500);
        }
      };
      rp.proxy.setMode('refuse');
      sent.push(...(await send(rp, Array.from({ length: perPhase }, () => webhook('ch_refuse', pick(200, 500))), { retries: 0 })));
      await watch(phaseMs);
      rp.proxy.setMode('http500');
      sent.push(...(await send(rp, Array.from({ length: perPhase }, () => webhook('ch_500', pick(200, 500))), { retries: 0 })));
      await watch(phaseMs);
      const during = await rp.offsets();
      const stats = rp.proxy.stats();
      rp.proxy.setMode('pass');

      const result = await rp.verify(sent);
      summarise({
        scenario: 'clickhouse_down_then_500',
        sent,
        faults: rp.proxy.faults(),
        result,
        extra: { refused: stats.refused, http500: stats.http500, outage_ms: 2 * phaseMs, committed_during_outage: Math.max(...samples) - ReliabilityPipeline.total(before.committed) },
      });
      for (const s of sent) expect(s.statuses, s.jobId).toEqual([200]);
      // The sink really hit both faults, and committed nothing while ClickHouse was failing.
      expect(stats.refused).toBeGreaterThan(0);
      expect(stats.http500).toBeGreaterThan(0);
      expect(ReliabilityPipeline.total(during.end)).toBeGreaterThan(ReliabilityPipeline.total(before.end));
      expect(Math.max(...samples)).toBe(ReliabilityPipeline.total(before.committed));
      expect(result.problems, rp.logs()).toEqual([]);
      expect(result.lost).toBe(0);
      expect(result.duplicated).toBe(0);
    },
    pick(240_000, 600_000),
  );

  it(
    'sink SIGKILLed while inserting a stream, then restarted: recovers, nothing lost or doubled',
    async () => {
      const kills = pick(1, 3);
      const webhooks = Array.from({ length: pick(10, 40) }, () => webhook('sink_kill', pick(500, 1_000)));
      const jobIds = webhooks.map((w) => w.job_id);
      const total = webhooks.length * pick(500, 1_000);
      let killed = 0;
      const storedAtKill: number[] = [];
      const crasher = (async () => {
        for (let k = 0; k < kills; k++) {
          // Wait until the sink is part-way through the stream (some rows stored, not all), then crash it.
          const threshold = Math.round((total * (k + 1)) / (kills + 2));
          const deadline = Date.now() + 120_000;
          let got = 0;
          while (Date.now() < deadline) {
            got = [...(await rp.perJob(jobIds)).values()].reduce((n, g) => n + g.events, 0);
            if (got >= threshold) break;
            await sleep(100);
          }
          await rp.pipeline.sink.kill();
          storedAtKill.push(got);
          killed++;
          await rp.pipeline.startSink();
        }
      })();
      const sent = await send(rp, webhooks, { concurrency: 2, gapMs: 200, retries: 0 });
      await crasher;
      const result = await rp.verify(sent);
      summarise({ scenario: 'sink_sigkill_mid_batch', sent, faults: killed, result, extra: { stored_at_kill: `${storedAtKill.join('+')}/${total}` } });
      expect(killed).toBe(kills);
      // Each crash landed part-way through the stream.
      for (const n of storedAtKill) expect(n).toBeLessThan(total);
      for (const s of sent) expect([200, 202], s.jobId).toContain(s.statuses[0]);
      expect(result.problems, rp.logs()).toEqual([]);
      expect(result.lost).toBe(0);
      expect(result.duplicated).toBe(0);
    },
    pick(240_000, 900_000),
  );
});
