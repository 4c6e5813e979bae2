import { closedLoop, kafkaClient, sendChunked, webhook, webhookMessages, type Compression } from './common.js';
import { perSecond, percentile } from './stats.js';

/**
 * Raw limit of the ingest: the kafkajs producer alone sending the same pre-flattened messages the
 * ingest would publish for a webhook (opportunities in chunks of `chunk` with `inFlight` requests
 * outstanding, then the job event; acks=-1), from `concurrency` concurrent senders.
 */
export interface RawProducerArgs {
  brokers: string[];
  topics: { opportunities: string; jobs: string };
  size: number;
  concurrency: number;
  durationMs: number;
  warmupMs: number;
  chunk: number;
  inFlight: number;
  compression: Compression;
}

export interface ThroughputResult {
  webhooksPerSec: number;
  oppsPerSec: number;
  webhooks: number;
  p50Ms: number;
  p99Ms: number;
  /** Webhooks completed in all (warm-up included): what the topic must have received. */
  total: number;
}

export async function run(a: RawProducerArgs): Promise<ThroughputResult> {
  const producer = kafkaClient(a.brokers, 'bench-raw-producer').producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    // Pre-flattened once per sender (distinct job ids): only Kafka work is measured.
    const perSender = Array.from({ length: a.concurrency }, (_, s) => webhookMessages(webhook(a.size, `bench_raw_${a.size}_${s}`)));
    const load = await closedLoop(a.concurrency, a.durationMs, a.warmupMs, async (s) => {
      const m = perSender[s]!;
      await sendChunked(producer, a.topics.opportunities, m.opportunities, a.chunk, a.inFlight, a.compression);
      await sendChunked(producer, a.topics.jobs, [m.job], a.chunk, a.inFlight, a.compression);
    });
    return summarizeLoad(load, a.size);
  } finally {
    await producer.disconnect();
  }
}

export function summarizeLoad(load: { completed: number; windowMs: number; latenciesMs: number[]; total: number }, size: number): ThroughputResult {
  if (load.completed === 0) throw new Error('no webhook completed after the warm-up: raise the duration');
  const webhooksPerSec = perSecond(load.completed, load.windowMs);
  return {
    webhooksPerSec,
    oppsPerSec: webhooksPerSec * size,
    webhooks: load.completed,
    p50Ms: percentile(load.latenciesMs, 50),
    p99Ms: percentile(load.latenciesMs, 99),
    total: load.total,
  };
}
