import { RssSampler, sleep, webhook } from './common.js';
import { percentile } from './stats.js';
import { Poster, type RunningIngest, type RunningSink } from './services.js';

/**
 * End-to-end latency at a fixed (open-loop) rate: each webhook has its own job id; the time from
 * its 200 to all its rows being visible in the sink (count() WHERE job_id IN (…pending) through the
 * sink's ClickHouse HTTP interface, polled every `pollMs`, so figures carry up to pollMs of
 * resolution). Fails if a webhook's rows never all show up.
 */
export interface LatencyArgs {
  ingest: RunningIngest;
  sink: RunningSink;
  size: number;
  webhooksPerSec: number;
  durationMs: number;
  pollMs: number;
  settleTimeoutMs: number;
  tag: string;
}

export interface LatencyResult {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  webhooks: number;
  achievedPerSec: number;
  sinkPeakRssMb: number;
  /** Webhooks the ingest refused (non-200, e.g. 503 overloaded) by status: not lost, told to retry. */
  rejected: Record<string, number>;
}

export async function runLatency(a: LatencyArgs): Promise<LatencyResult> {
  const template = JSON.stringify(webhook(a.size, '__BENCH_JOB__'));
  const poster = new Poster(a.ingest.url, 256);
  const sampler = new RssSampler(a.sink.svc.pid!, 100);
  const acked = new Map<string, number>(); // job id → time of the 200
  const latencies: number[] = [];
  const errors: unknown[] = [];
  const rejected: Record<string, number> = {};
  const inflight = new Set<Promise<void>>();
  let sendingDone = false;

  const poller = (async () => {
    while (!sendingDone || acked.size > 0 || inflight.size > 0) {
      if (acked.size > 0) {
        const ids = [...acked.keys()];
        const text = await a.sink.query(
          `SELECT job_id, count() FROM clustr.opportunity_events WHERE job_id IN (${ids.map((id) => `'${id}'`).join(',')}) GROUP BY job_id FORMAT TSV`,
        );
        const now = performance.now();
        for (const line of text.split('\n')) {
          const [id, n] = line.split('\t');
          if (id && Number(n) >= a.size && acked.has(id)) {
            latencies.push(now - acked.get(id)!);
            acked.delete(id);
          }
        }
      }
      await sleep(a.pollMs);
    }
  })();

  const t0 = performance.now();
  const interval = 1000 / a.webhooksPerSec;
  let sent = 0;
  for (let i = 0; performance.now() - t0 < a.durationMs; i++) {
    const due = t0 + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const jobId = `lat_${a.tag}_${i}`;
    const p = poster
      .post('/webhooks/clustr', template.replaceAll('__BENCH_JOB__', jobId))
      .then((r) => {
        if (r.status === 200) acked.set(jobId, performance.now());
        else {
          const key = `${r.status} ${/"code":"([A-Z_]+)"/.exec(r.body)?.[1] ?? ""}`.trim();
          rejected[key] = (rejected[key] ?? 0) + 1;
        }
      })
      .catch((e: unknown) => void errors.push(e))
      .finally(() => inflight.delete(p));
    inflight.add(p);
    sent++;
  }
  const sendMs = performance.now() - t0;
  await Promise.all(inflight);
  sendingDone = true;
  const settleDeadline = performance.now() + a.settleTimeoutMs;
  while (acked.size > 0 && performance.now() < settleDeadline) await sleep(50);
  const missing = acked.size;
  acked.clear();
  await poller;
  poster.close();
  const { peakRssMb, hwmMb } = sampler.stop();
  if (errors.length > 0) throw new Error(`${errors.length} of ${sent} webhooks failed: ${String(errors[0])}`);
  if (latencies.length === 0) throw new Error(`none of ${sent} webhooks was accepted: ${JSON.stringify(rejected)}`);
  if (missing > 0) throw new Error(`${missing} of ${sent} webhooks never became fully visible within ${a.settleTimeoutMs} ms`);
  return {
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: Math.max(...latencies),
    webhooks: sent,
    achievedPerSec: (sent * 1000) / sendMs,
    sinkPeakRssMb: Math.max(peakRssMb, hwmMb),
    rejected,
  };
}
