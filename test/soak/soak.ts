/**
 * Soak test: steady webhook traffic through the whole pipeline (Kafka, ingest, sink + ClickHouse as
 * separate processes) for a while; checks errors, latency, completeness and memory growth.
 *
 *   npm run soak -w test -- --seconds 60 --rate 20 --opportunities 100 [--warmup-seconds 60]
 *
 * NOTE: the same traffic runs for --warmup-seconds first (the ingest's V8 heap sizing and the sink's
 * ClickHouse thread pool take one-off steps there; see README.md); memory growth is judged on the
 * --seconds window after it. Errors, latency and completeness count every request, warm-up included.
 * Exits 1 when a check fails. Not part of `npm test`.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { makeWebhook } from '@clustr-pipeline/schema';
import { TestPipeline } from '../harness/pipeline.js';
import { rssBytes, sleep } from '../bad-input/helpers.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    'warmup-seconds': { type: 'string', default: '60' },
    rate: { type: 'string', default: '20' },
    opportunities: { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '16' },
    'drain-seconds': { type: 'string', default: '120' },
    'max-growth': { type: 'string', default: '10' },
  },
});
const seconds = Number(values.seconds);
const warmupSeconds = Number(values['warmup-seconds']);
if (!Number.isFinite(warmupSeconds) || warmupSeconds < 0) throw new Error('--warmup-seconds must be 0 or more');
const rate = Number(values.rate);
const perWebhook = Number(values.opportunities);
const maxConcurrency = Number(values.concurrency);
const drainSeconds = Number(values['drain-seconds']);
const maxGrowthPct = Number(values['max-growth']);
for (const [name, v] of Object.entries({ seconds, rate, opportunities: perWebhook, concurrency: maxConcurrency })) {
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
}

const SECRET = 'soak-secret-not-a-real-one';
const totalWebhooks = Math.round((warmupSeconds + seconds) * rate);
// ~1.2 KB per opportunity event; the mock broker keeps ~5 MB per partition: size the topic so that
// the whole run fits twice over (and never fewer than 64 partitions).
const opportunityBytes = totalWebhooks * perWebhook * 1_200;
const partitions = Math.max(64, Math.ceil((opportunityBytes * 2) / (5 * 1024 * 1024)));

const pct = (sorted: number[], p: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!);
const mib = (b: number | undefined) => (b === undefined ? NaN : b / 1024 / 1024);
const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** Where a service's resident memory is: anonymous vs file-backed (mapped code), and V8's heap. */
async function memoryBreakdown(pid: number | undefined, metricsUrl: string): Promise<string> {
  let status = '';
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return 'gone';
  }
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN) / 1024;
  let heap = NaN;
  try {
    const text = await (await fetch(metricsUrl)).text();
    heap = Number(/^(?:\w+_)?nodejs_heap_size_total_bytes (\S+)$/m.exec(text)?.[1] ?? NaN) / 1024 / 1024;
  } catch {
    // metrics unavailable: leave NaN
  }
  const threads = /^Threads:\s+(\d+)/m.exec(status)?.[1] ?? '?';
  return `anon=${kb('RssAnon').toFixed(0)}MiB file=${kb('RssFile').toFixed(0)}MiB v8_heap=${heap.toFixed(0)}MiB threads=${threads}`;
}

/** How far the sink is behind and what ClickHouse holds (active parts, memory), for the progress lines. */
async function storageState(pipeline: TestPipeline): Promise<string> {
  try {
    const [row] = await pipeline.query<{ stored: string; parts: string; memory: string }>(
      `SELECT (SELECT count() FROM ${pipeline.database}.opportunity_events WHERE startsWith(job_id, 'soak_')) AS stored,
              (SELECT count() FROM system.parts WHERE active AND database = {db:String}) AS parts,
              (SELECT formatReadableSize(value) FROM system.metrics WHERE metric = 'MemoryTracking') AS memory`,
      { db: pipeline.database },
    );
    return `stored=${row?.stored} parts=${row?.parts} ch_memory=${row?.memory}`;
  } catch (error) {
    return `storage=? (${(error as Error).message.slice(0, 80)})`;
  }
}

async function main(): Promise<number> {
  console.log(`soak: ${warmupSeconds} s warm-up + ${seconds} s at ${rate} webhooks/s × ${perWebhook} opportunities = ${totalWebhooks} webhooks, ${totalWebhooks * perWebhook} opportunities; ${partitions} partitions`);
  const pipeline = await TestPipeline.start({
    partitions: { opportunities: partitions, jobs: 6, dlq: 3 },
    ingestEnv: { WEBHOOK_SECRET: SECRET, RATE_LIMIT_PER_MINUTE: '0', LOG_LEVEL: 'warn' },
    sinkEnv: { LOG_LEVEL: 'warn' },
  });
  const checks: { name: string; ok: boolean; detail: string }[] = [];
  try {
    // Payloads are prepared up front so the generator does not compete with the services for CPU.
    const template = makeWebhook({ opportunities: perWebhook, engagements: 1, jobId: 'soak_template' });
    const body = (i: number) => JSON.stringify({ ...template, job_id: `soak_${i}`, results: template.results!.map((r) => ({ ...r, opportunities: r.opportunities!.map((o) => ({ ...o, opportunity_id: `${o.opportunity_id}_${i}` })) })) });

    const latencies: number[] = [];
    const errors: string[] = [];
    let sent = 0;
    let inFlight = 0;
    let behind = 0;
    const rss: { t: number; ingest?: number; sink?: number }[] = [];
    const started = Date.now();
    const sampler = setInterval(() => rss.push({ t: (Date.now() - started) / 1000, ingest: rssBytes(pipeline.ingest.pid), sink: rssBytes(pipeline.sink.pid) }), 1_000);

    const post = async (i: number) => {
      inFlight++;
      const t0 = performance.now();
      try {
        const res = await fetch(`${pipeline.ingestUrl}/webhooks/clustr`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${SECRET}` },
          body: body(i),
        });
        const text = await res.text();
        if (res.status !== 200) errors.push(`#${i}: ${res.status} ${text.slice(0, 200)}`);
        else latencies.push(performance.now() - t0);
      } catch (error) {
        errors.push(`#${i}: ${(error as Error).message}`);
      } finally {
        inFlight--;
      }
    };

    // Open-loop schedule: webhook i is due at i / rate seconds; a cap on requests in flight keeps a
    // stalled pipeline from being buried (the overrun is reported as "behind schedule").
    const pending: Promise<void>[] = [];
    let lastReport = started;
    for (let i = 0; i < totalWebhooks; i++) {
      const due = started + (i * 1000) / rate;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
      while (inFlight >= maxConcurrency) await sleep(5);
      if (Date.now() - due > 1_000) behind++;
      pending.push(post(i));
      sent++;
      if (Date.now() - lastReport >= 10_000) {
        lastReport = Date.now();
        const last = rss.at(-1);
        const line = `  t=${((Date.now() - started) / 1000).toFixed(0)}s sent=${sent} ok=${latencies.length} errors=${errors.length} in-flight=${inFlight} ingest=${mib(last?.ingest).toFixed(0)}MiB sink=${mib(last?.sink).toFixed(0)}MiB`;
        void Promise.all([
          storageState(pipeline),
          memoryBreakdown(pipeline.ingest.pid, `${pipeline.ingestUrl}/metrics`),
          memoryBreakdown(pipeline.sink.pid, `${pipeline.metricsUrl}/metrics`),
        ]).then(([state, ingestMemory, sinkMemory]) => console.log(`${line} ${state}\n      ingest: ${ingestMemory}\n      sink:   ${sinkMemory}`));
      }
    }
    await Promise.all(pending);
    const sendSeconds = (Date.now() - started) / 1000;
    clearInterval(sampler);

    // Drain: every opportunity must land in ClickHouse exactly once.
    const expectedRows = totalWebhooks * perWebhook;
    const drainStart = Date.now();
    const rows = await pipeline.waitForCount('opportunity_events', expectedRows, drainSeconds * 1000, "startsWith(job_id, 'soak_')");
    const jobs = await pipeline.waitForCount('jobs', totalWebhooks, 30_000, "startsWith(job_id, 'soak_')");
    const drainMs = Date.now() - drainStart;

    const sorted = [...latencies].sort((a, b) => a - b);
    const measured = rss.filter((sample) => sample.t >= warmupSeconds);
    const window = Math.min(10, Math.floor(measured.length / 2));
    const first = measured.slice(0, window);
    const last = measured.slice(-window);
    const growth = (key: 'ingest' | 'sink') => {
      const a = avg(first.map((s) => s[key] ?? 0));
      const b = avg(last.map((s) => s[key] ?? 0));
      return { first: mib(a), last: mib(b), pct: a > 0 ? ((b - a) / a) * 100 : NaN };
    };
    const ingestGrowth = growth('ingest');
    const sinkGrowth = growth('sink');

    checks.push({ name: 'requests', ok: sent === totalWebhooks, detail: `${sent} sent in ${sendSeconds.toFixed(1)} s (${(sent / sendSeconds).toFixed(1)}/s; ${behind} more than 1 s behind schedule)` });
    checks.push({ name: 'errors', ok: errors.length === 0, detail: `${errors.length}${errors.length ? ` (first: ${errors.slice(0, 3).join(' | ')})` : ''}` });
    checks.push({ name: 'ack latency', ok: true, detail: `p50 ${pct(sorted, 50).toFixed(0)} ms, p99 ${pct(sorted, 99).toFixed(0)} ms, max ${(sorted.at(-1) ?? NaN).toFixed(0)} ms` });
    checks.push({ name: 'rows in ClickHouse', ok: rows === expectedRows, detail: `${rows} / ${expectedRows} opportunity_events (drained ${(drainMs / 1000).toFixed(1)} s after the last ack)` });
    checks.push({ name: 'jobs in ClickHouse', ok: jobs === totalWebhooks, detail: `${jobs} / ${totalWebhooks}` });
    checks.push({ name: 'ingest RSS growth', ok: ingestGrowth.pct < maxGrowthPct, detail: `after warm-up: first ${window} s avg ${ingestGrowth.first.toFixed(0)} MiB → last ${window} s avg ${ingestGrowth.last.toFixed(0)} MiB (${ingestGrowth.pct.toFixed(1)} %, limit ${maxGrowthPct} %)` });
    checks.push({ name: 'sink RSS growth', ok: sinkGrowth.pct < maxGrowthPct, detail: `after warm-up: first ${window} s avg ${sinkGrowth.first.toFixed(0)} MiB → last ${window} s avg ${sinkGrowth.last.toFixed(0)} MiB (${sinkGrowth.pct.toFixed(1)} %, limit ${maxGrowthPct} %)` });
    checks.push({ name: 'processes alive', ok: pipeline.ingest.running && pipeline.sink.running, detail: `ingest ${pipeline.ingest.running}, sink ${pipeline.sink.running}` });
  } finally {
    await pipeline.stop();
  }

  console.log('\n── soak summary ───────────────────────────────────────────────');
  for (const c of checks) console.log(`${c.ok ? 'PASS' : 'FAIL'}  ${c.name.padEnd(20)} ${c.detail}`);
  const failed = checks.filter((c) => !c.ok);
  console.log(failed.length === 0 ? 'soak: all checks passed' : `soak: ${failed.length} check(s) failed`);
  return failed.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
