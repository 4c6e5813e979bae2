import { RssSampler, sleep } from './common.js';
import { perSecond } from './stats.js';
import { startSink } from './services.js';

/**
 * Sink throughput: a fresh sink (own chDB data directory and consumer group) drains the filled
 * topic; polled with count() through its ClickHouse HTTP interface until it holds `count` rows.
 * Fails if the table ends with more or fewer rows (or distinct event ids) than `count`.
 */
export interface SinkArgs {
  brokers: string[];
  count: number;
  groupId: string;
  timeoutMs: number;
  env?: Record<string, string>;
}

export interface SinkResult {
  rowsPerSec: number;
  rowsPerSecWall: number;
  ms: number;
  wallMs: number;
  startupMs: number;
  peakRssMb: number;
}

export async function runSink(a: SinkArgs): Promise<SinkResult> {
  const tStart = performance.now();
  const sink = await startSink(a.brokers, { SINK_GROUP_ID: a.groupId, ...a.env });
  const sampler = new RssSampler(sink.svc.pid!, 100);
  const tReady = performance.now();
  try {
    let first = 0;
    let firstCount = 0;
    let n = 0;
    const deadline = tReady + a.timeoutMs;
    while (performance.now() < deadline) {
      n = await sink.count();
      if (n > 0 && first === 0) {
        first = performance.now();
        firstCount = n;
      }
      if (n >= a.count) break;
      if (!sink.svc.running) throw new Error(`sink exited:\n${sink.svc.tail()}`);
      await sleep(200);
    }
    const last = performance.now();
    await sleep(1000);
    const [total, distinct] = (await sink.query('SELECT count(), uniqExact(event_id) FROM clustr.opportunity_events FORMAT TSV')).trim().split('\t').map(Number);
    if (total !== a.count || distinct !== a.count) throw new Error(`sink stored ${total} rows (${distinct} distinct event ids), expected ${a.count}\n${sink.svc.tail(20)}`);
    const { peakRssMb, hwmMb } = sampler.stop();
    const steady = firstCount < a.count / 2 && last > first;
    return {
      rowsPerSec: steady ? perSecond(a.count - firstCount, last - first) : Number.NaN,
      rowsPerSecWall: perSecond(a.count, last - tReady),
      ms: steady ? last - first : Number.NaN,
      wallMs: last - tReady,
      startupMs: tReady - tStart,
      peakRssMb: Math.max(peakRssMb, hwmMb),
    };
  } finally {
    sampler.stop();
    await sink.stop();
  }
}
