/**
 * Benchmark harness: `npm run bench` (root: builds, then this). See README.md in this folder.
 *
 *   --quick                 ~1-2 min: 1 repetition, 100k sink events, short windows
 *   --only=ingest,sink,latency,memory
 *   --reps=N                repetitions of every figure (default 3; quick 1)
 *   --sink-events=N         events in the sink topic (default 1,000,000; quick 100,000)
 *   --duration=MS           measured window per ingest/raw-producer run (after a warm-up)
 *   --latency-size=N        opportunities per webhook in the latency runs (default 1000)
 *   --concurrency=10:64,1000:16,20000:4   closed-loop senders per webhook size
 *   --cpu-prof              write a V8 CPU profile of every process (services, raw scenarios) to results/profiles/
 *   --extras                also the comparisons that are not targets: the raw producer with gzip, and
 *                           inserts through @clickhouse/client over the chDB connection (adds ~5 min to a full run)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, release, totalmem, type } from 'node:os';
import { join } from 'node:path';
import { startMockKafka, type MockKafka } from '@clustr-pipeline/devkit';
import { benchDir, fillTopic, highWatermarkSum, log, partitionsFor, runInChild, TOPICS, type Compression } from './common.js';
import type { DrainResult } from './raw-consumer.js';
import type { KafkaEngineResult } from './kafka-engine.js';
import type { RawInsertResult } from './raw-insert.js';
import type { ThroughputResult } from './raw-producer.js';
import { runIngest } from './ingest.js';
import { runLatency } from './latency.js';
import { runIngestMemory, type MemoryResult } from './memory.js';
import { markdown, ratioText, type Machine, type Row } from './report.js';
import { startIngest, startSink } from './services.js';
import { runSink } from './sink.js';
import { ratio, summarize, type Summary } from './stats.js';

const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const hit = argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  return hit === undefined ? undefined : (hit.split('=')[1] ?? 'true');
};
const known = ['cpu-prof', 'extras', 'quick', 'only', 'reps', 'sink-events', 'duration', 'latency-size', 'concurrency', 'help'];
for (const a of argv) if (!known.includes(a.replace(/^--/, '').split('=')[0]!)) throw new Error(`unknown option ${a}`);
if (flag('help')) {
  console.log('usage: npm run bench -- [--quick] [--only=ingest,sink,latency,memory] [--reps=N] [--sink-events=N] [--duration=MS] [--latency-size=N] [--concurrency=10:64,1000:16,20000:4] [--extras] [--cpu-prof]');
  process.exit(0);
}

const quick = flag('quick') !== undefined;
const extras = flag('extras') !== undefined;
const only = new Set((flag('only') ?? 'ingest,sink,latency,memory').split(','));
for (const o of only) if (!['ingest', 'sink', 'latency', 'memory'].includes(o)) throw new Error(`--only: unknown scenario ${o}`);
const reps = Number(flag('reps') ?? (quick ? 1 : 3));
const sinkEvents = Number(flag('sink-events') ?? (quick ? 100_000 : 1_000_000));
const durationMs = Number(flag('duration') ?? (quick ? 2_000 : 4_000));
const warmupMs = quick ? 500 : 1_000;
const latencySize = Number(flag('latency-size') ?? 1000);
const latencyMs = quick ? 4_000 : 15_000;
const concurrency = new Map<number, number>(
  (flag('concurrency') ?? '10:64,1000:16,20000:4').split(',').map((p) => p.split(':').map(Number) as [number, number]),
);
const SIZES = [...concurrency.keys()];
const CHUNK = 2000;
const IN_FLIGHT = 4;
const BYTES_PER_EVENT = 1320; // generated events (1 engagement each) are ~1.3 kB of JSON

if (flag('cpu-prof')) {
  process.env.BENCH_CPU_PROF_DIR = join(benchDir, 'results', 'profiles');
  mkdirSync(process.env.BENCH_CPU_PROF_DIR, { recursive: true });
}

const rows: Row[] = [];
const errors: string[] = [];
const json: Record<string, unknown> = {};
const require = createRequire(import.meta.url);
const version = (pkg: string) => (require(`${pkg}/package.json`) as { version: string }).version;
const machine: Machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memoryGb: totalmem() / 1024 ** 3,
  os: `${type()} ${release()}`,
  node: process.versions.node,
  kafkajs: version('kafkajs'),
  chdb: version('chdb'),
  clickhouseClient: version('@clickhouse/client'),
  date: new Date().toISOString(),
};

async function attempt<T>(label: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    errors.push(`${label}: ${message}`);
    log(`FAILED ${label}: ${message.split('\n').slice(0, 8).join('\n')}`);
    return undefined;
  }
}

/** Runs `fn` `reps` times; failed repetitions are recorded and left out. */
async function repeat<T>(label: string, fn: (rep: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let r = 0; r < reps; r++) {
    log(`${label} (rep ${r + 1}/${reps})`);
    const v = await attempt(`${label} rep ${r + 1}`, () => fn(r));
    if (v !== undefined) out.push(v);
  }
  return out;
}

const sum = (values: number[]): Summary | undefined => (values.length > 0 ? summarize(values.filter(Number.isFinite)) : undefined);

async function withMock<T>(topics: Record<string, number>, fn: (mock: MockKafka) => Promise<T>): Promise<T> {
  const mock = await startMockKafka({ topics });
  try {
    return await fn(mock);
  } finally {
    await mock.stop();
  }
}

const topicsFor = (opportunityPartitions: number) => ({ [TOPICS.opportunities]: opportunityPartitions, [TOPICS.jobs]: 6, [TOPICS.dlq]: 3 });

// ---------------------------------------------------------------- 1. ingest vs raw producer
const ingestMedianWebhooks = new Map<number, number>();
async function benchIngest(): Promise<void> {
  const out: unknown[] = [];
  // Producer-only runs may exceed the mock's retention: acks are what is measured, so that is fine here.
  await withMock(topicsFor(64), async (mock) => {
    for (const size of SIZES) {
      const c = concurrency.get(size)!;
      const common = { brokers: mock.brokers, size, concurrency: c, durationMs, warmupMs, chunk: CHUNK, inFlight: IN_FLIGHT };
      // Every acknowledged webhook must have appended exactly `size` opportunity events and 1 job event.
      const counted = async (fn: () => Promise<ThroughputResult>): Promise<ThroughputResult> => {
        const [o0, j0] = [await highWatermarkSum(mock.brokers, TOPICS.opportunities), await highWatermarkSum(mock.brokers, TOPICS.jobs)];
        const r = await fn();
        const [o1, j1] = [await highWatermarkSum(mock.brokers, TOPICS.opportunities), await highWatermarkSum(mock.brokers, TOPICS.jobs)];
        if (o1 - o0 !== r.total * size || j1 - j0 !== r.total) {
          throw new Error(`count mismatch: ${r.total} webhooks acknowledged → expected ${r.total * size} opportunity + ${r.total} job events, the broker got ${o1 - o0} + ${j1 - j0}`);
        }
        return r;
      };
      const raw: Record<Compression, ThroughputResult[]> = { none: [], gzip: [] };
      for (const compression of extras ? (['none', 'gzip'] as const) : (['none'] as const)) {
        raw[compression] = await repeat(`raw producer ${size} opps × ${c} senders, ${compression}`, () =>
          counted(async () => (await runInChild<ThroughputResult>('raw-producer', { ...common, compression, topics: { opportunities: TOPICS.opportunities, jobs: TOPICS.jobs } })).result),
        );
      }
      const ingest = await repeat(`ingest ${size} opps × ${c} senders`, () => counted(() => runIngest({ ...common, compression: 'none' })));
      const s = {
        ingestOpps: sum(ingest.map((r) => r.oppsPerSec)),
        ingestWebhooks: sum(ingest.map((r) => r.webhooksPerSec)),
        ingestP99: sum(ingest.map((r) => r.p99Ms)),
        rawOpps: sum(raw.none.map((r) => r.oppsPerSec)),
        rawWebhooks: sum(raw.none.map((r) => r.webhooksPerSec)),
        rawGzipOpps: sum(raw.gzip.map((r) => r.oppsPerSec)),
      };
      if (s.ingestWebhooks) ingestMedianWebhooks.set(size, s.ingestWebhooks.median);
      const label = `${size.toLocaleString('en-US')}-opp webhooks, ${c} senders`;
      rows.push(
        { section: 'ingest', scenario: `ingest (HTTP → Kafka ack), ${label}`, metric: 'opportunities/s', summary: s.ingestOpps, note: ratioText('raw producer', ratio(s.ingestOpps, s.rawOpps)) },
        { section: 'ingest', scenario: `ingest, ${label}`, metric: 'webhooks/s', summary: s.ingestWebhooks },
        { section: 'ingest', scenario: `ingest, ${label}`, metric: 'p99 request ms', summary: s.ingestP99 },
        { section: 'ingest', scenario: `raw kafkajs producer (none), ${label}`, metric: 'opportunities/s', summary: s.rawOpps },
        { section: 'ingest', scenario: `raw kafkajs producer (none), ${label}`, metric: 'webhooks/s', summary: s.rawWebhooks },
      );
      if (extras) rows.push({ section: 'ingest', scenario: `raw kafkajs producer (gzip), ${label}`, metric: 'opportunities/s', summary: s.rawGzipOpps, note: ratioText('none', ratio(s.rawGzipOpps, s.rawOpps)) });
      out.push({ size, concurrency: c, chunk: CHUNK, inFlight: IN_FLIGHT, ingest, raw, summary: s, ratioIngestToRaw: ratio(s.ingestOpps, s.rawOpps), ratioGzipToNone: ratio(s.rawGzipOpps, s.rawOpps) });
    }
  });
  json.ingest = out;
}

// ---------------------------------------------------------------- 2. sink vs raw limits
let sinkMedianRows: number | undefined;
async function benchSink(): Promise<void> {
  const partitions = partitionsFor(sinkEvents * BYTES_PER_EVENT);
  await withMock(topicsFor(partitions), async (mock) => {
    log(`filling ${TOPICS.opportunities} (${partitions} partitions) with ${sinkEvents.toLocaleString('en-US')} events`);
    const fill = await fillTopic(mock.brokers, TOPICS.opportunities, sinkEvents);
    log(`filled in ${(fill.ms / 1000).toFixed(1)} s (${(fill.bytes / 1024 ** 2).toFixed(0)} MB of JSON), count verified`);
    const base = { brokers: mock.brokers, topic: TOPICS.opportunities, count: sinkEvents, timeoutMs: 10 * 60_000 };
    const consumer = await repeat('raw kafkajs consumer', async (r) => (await runInChild<DrainResult>('raw-consumer', { ...base, groupId: `bench-raw-${r}-${Date.now()}` })).result);
    const engine = await repeat('ClickHouse Kafka engine', async (r) =>
      (await runInChild<KafkaEngineResult>('kafka-engine', { ...base, groupId: `bench-engine-${r}-${Date.now()}`, tables: 'full', consumers: 1, blockRows: 10_000, flushMs: 1_000 })).result,
    );
    const insert = await repeat('raw insert into chDB', async () => (await runInChild<RawInsertResult>('raw-insert', { count: sinkEvents, batchRows: 10_000, tables: 'full', withClient: extras })).result);
    if (insert[0]) machine.clickhouseEngine = insert[0].engineVersion;
    const sink = await repeat('sink service', (r) => runSink({ brokers: mock.brokers, count: sinkEvents, groupId: `bench-sink-${r}-${Date.now()}`, timeoutMs: 10 * 60_000 }));
    // Final check: the topic still holds every event (nothing dropped by the mock's retention).
    await fillCheck(mock);

    const s = {
      sinkWall: sum(sink.map((r) => r.rowsPerSecWall)),
      sinkSteady: sum(sink.map((r) => r.rowsPerSec)),
      sinkRss: sum(sink.map((r) => r.peakRssMb)),
      consumerWall: sum(consumer.map((r) => r.rowsPerSecWall)),
      consumerSteady: sum(consumer.map((r) => r.rowsPerSec)),
      insertClient: sum(insert.flatMap((r) => (r.client ? [r.client.rowsPerSec] : []))),
      insertRaw: sum(insert.map((r) => r.raw.rowsPerSec)),
      engineWall: sum(engine.map((r) => r.rowsPerSecWall)),
    };
    sinkMedianRows = s.sinkWall?.median;
    const n = `${sinkEvents.toLocaleString('en-US')} events, ${partitions} partitions`;
    rows.push(
      {
        section: 'sink',
        scenario: `sink service (Kafka → chDB), ${n}`,
        metric: 'rows/s (ready → all visible)',
        summary: s.sinkWall,
        note: [ratioText('raw consumer', ratio(s.sinkWall, s.consumerWall)), ...(extras ? [ratioText('client insert', ratio(s.sinkWall, s.insertClient))] : []), ratioText('raw insert', ratio(s.sinkWall, s.insertRaw)), ratioText('Kafka engine', ratio(s.sinkWall, s.engineWall))].join('; '),
      },
      { section: 'sink', scenario: 'sink service', metric: 'rows/s (first row → all visible)', summary: s.sinkSteady },
      { section: 'sink', scenario: 'raw kafkajs consumer + JSON.parse', metric: 'rows/s (connect → last)', summary: s.consumerWall },
      { section: 'sink', scenario: 'raw kafkajs consumer + JSON.parse', metric: 'rows/s (first → last)', summary: s.consumerSteady },
      ...(extras ? [{ section: 'sink', scenario: 'raw insert, @clickhouse/client over chdb connection, 10k-row batches', metric: 'rows/s', summary: s.insertClient }] : []),
      { section: 'sink', scenario: 'raw insert, chdb rawInsert (Buffer), 10k-row batches', metric: 'rows/s', summary: s.insertRaw },
      { section: 'sink', scenario: 'ClickHouse Kafka engine + MV (in chDB)', metric: 'rows/s (MV attached → count = N)', summary: s.engineWall },
    );
    json.sink = { events: sinkEvents, partitions, fill, sink, consumer, insert, engine, summary: s };
  });
}

async function fillCheck(mock: MockKafka): Promise<void> {
  const { topicMessageCount } = await import('./common.js');
  const { count } = await topicMessageCount(mock.brokers, TOPICS.opportunities);
  if (count !== sinkEvents) throw new Error(`topic holds ${count} events after the runs, expected ${sinkEvents}`);
}

// ---------------------------------------------------------------- 3. end-to-end latency
async function benchLatency(): Promise<void> {
  const partitions = 64;
  await withMock(topicsFor(partitions), async (mock) => {
    const ingest = await startIngest(mock.brokers);
    const sink = await startSink(mock.brokers, { SINK_GROUP_ID: `bench-latency-${Date.now()}` });
    try {
      let ingestMax = ingestMedianWebhooks.get(latencySize);
      let basis = 'ingest max measured in this run';
      if (ingestMax === undefined) {
        await ingest.stop();
        log(`measuring the ingest max for ${latencySize}-opp webhooks first`);
        const r = await runIngest({ brokers: mock.brokers, size: latencySize, concurrency: concurrency.get(latencySize) ?? 16, durationMs, warmupMs, chunk: CHUNK, inFlight: IN_FLIGHT, compression: 'none' });
        ingestMax = r.webhooksPerSec;
        basis = 'ingest max measured just before';
        Object.assign(ingest, await startIngest(mock.brokers));
      }
      const sinkMax = sinkMedianRows !== undefined ? sinkMedianRows / latencySize : undefined;
      const max = sinkMax !== undefined ? Math.min(ingestMax, sinkMax) : ingestMax;
      if (sinkMax !== undefined) basis += ` and sink max (${sinkMax.toFixed(1)} webhooks/s); the lower one`;
      else basis += ' (sink max not measured in this run: run with sink to cap by it)';
      const points: unknown[] = [];
      for (const fraction of [0.25, 0.5, 0.75]) {
        const rate = max * fraction;
        const res = await repeat(`latency at ${fraction * 100}% (${rate.toFixed(1)} webhooks/s of ${latencySize} opps)`, (r) =>
          runLatency({ ingest, sink, size: latencySize, webhooksPerSec: rate, durationMs: latencyMs, pollMs: 50, settleTimeoutMs: 120_000, tag: `${fraction * 100}_${r}_${Date.now()}` }),
        );
        const s = { p50: sum(res.map((x) => x.p50Ms)), p99: sum(res.map((x) => x.p99Ms)), sinkRss: sum(res.map((x) => x.sinkPeakRssMb)) };
        const label = `${fraction * 100}% of max: ${rate.toFixed(1)} webhooks/s × ${latencySize} opps = ${Math.round(rate * latencySize).toLocaleString('en-US')} opps/s`;
        const refused = res.reduce((n, x) => n + Object.values(x.rejected).reduce((a, b) => a + b, 0), 0);
        const offered = res.reduce((n, x) => n + x.webhooks, 0);
        const refusedNote = refused > 0 ? `ingest REFUSED ${refused} of ${offered} webhooks (${[...new Set(res.flatMap((x) => Object.keys(x.rejected)))].join(', ')}); latency of the accepted ones` : '';
        rows.push(
          { section: 'latency', scenario: label, metric: 'p50 ms (200 → rows visible)', summary: s.p50, note: refusedNote },
          { section: 'latency', scenario: label, metric: 'p99 ms (200 → rows visible)', summary: s.p99 },
          { section: 'memory', scenario: `sink under steady load (${label})`, metric: 'peak RSS MB', summary: s.sinkRss },
        );
        points.push({ fraction, rate, results: res, summary: s });
      }
      json.latency = { size: latencySize, maxWebhooksPerSec: max, basis, pollMs: 50, points };
      rows.push({ section: 'latency', scenario: `max rate used: ${max.toFixed(1)} webhooks/s`, metric: 'basis', note: basis });
    } finally {
      await ingest.stop();
      await sink.stop();
    }
  });
}

// ---------------------------------------------------------------- 4. memory
async function benchMemory(): Promise<void> {
  const size = 100_000;
  await withMock(topicsFor(partitionsFor(size * BYTES_PER_EVENT)), async (mock) => {
    const res: MemoryResult[] = await repeat(`ingest memory, one ${size.toLocaleString('en-US')}-opp webhook`, () => runIngestMemory({ brokers: mock.brokers, size, bodyLimitMb: 512 }));
    const s = { peak: sum(res.map((r) => r.peakRssMb)), baseline: sum(res.map((r) => r.baselineRssMb)), ms: sum(res.map((r) => r.ms)) };
    const mb = res[0]?.bodyMb;
    rows.push(
      { section: 'memory', scenario: `ingest, one ${size.toLocaleString('en-US')}-opp webhook (${mb?.toFixed(1) ?? '?'} MB JSON)`, metric: 'peak RSS MB', summary: s.peak, note: `baseline ${s.baseline?.median.toFixed(0) ?? '?'} MB (BODY_LIMIT_MB=512)` },
      { section: 'memory', scenario: `ingest, one ${size.toLocaleString('en-US')}-opp webhook`, metric: 'request ms (POST → 200)', summary: s.ms },
    );
    json.memory = { size, bodyMb: mb, results: res, summary: s };
  });
}

const started = Date.now();
const sectionSeconds: Record<string, number> = {};
log(`bench: ${quick ? 'QUICK' : 'full'} mode, ${reps} repetition(s), scenarios ${[...only].join(',')}${extras ? ', with extras' : ''}`);
for (const [name, fn] of [['ingest', benchIngest], ['sink', benchSink], ['latency', benchLatency], ['memory', benchMemory]] as const) {
  if (!only.has(name)) continue;
  const t0 = Date.now();
  await attempt(name, fn);
  sectionSeconds[name] = Math.round((Date.now() - t0) / 1000);
  log(`${name} section took ${sectionSeconds[name]} s`);
}
const sinkSteadyRss = (json.sink as { summary?: { sinkRss?: Summary } } | undefined)?.summary?.sinkRss;
if (sinkSteadyRss) rows.push({ section: 'memory', scenario: `sink draining the ${sinkEvents.toLocaleString('en-US')}-event backlog (max load)`, metric: 'peak RSS MB', summary: sinkSteadyRss });

const meta = {
  mode: quick ? 'quick (1 repetition unless --reps)' : 'full',
  repetitions: reps,
  'total s': Math.round((Date.now() - started) / 1000),
  'section s': Object.entries(sectionSeconds).map(([name, secs]) => `${name} ${secs}`).join(', '),
  extras: extras ? 'gzip producer, client insert' : 'no (--extras adds the gzip producer and client-insert comparisons)',
  broker: 'librdkafka mock cluster (1 broker)',
  'ingest settings': `chunk ${CHUNK}, in-flight ${IN_FLIGHT}, acks=-1, ${durationMs / 1000} s window after ${warmupMs / 1000} s warm-up`,
};
const md = markdown('clustr-pipeline benchmark', machine, meta, rows.sort((a, b) => ['ingest', 'sink', 'latency', 'memory'].indexOf(a.section) - ['ingest', 'sink', 'latency', 'memory'].indexOf(b.section)), errors);
const dir = join(benchDir, 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'latest.md'), md);
writeFileSync(join(dir, 'latest.json'), `${JSON.stringify({ machine, meta, options: { quick, extras, reps, sinkEvents, durationMs, warmupMs, latencySize, concurrency: Object.fromEntries(concurrency) }, ...json, rows, errors }, null, 2)}\n`);
console.log(md);
log(`wrote ${join(dir, 'latest.md')} and latest.json`);
if (errors.length > 0) {
  log(`${errors.length} failure(s): see above`);
  process.exitCode = 1;
}
