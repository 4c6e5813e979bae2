import { closedLoop, webhook, type Compression } from './common.js';
import { summarizeLoad, type ThroughputResult } from './raw-producer.js';
import { Poster, postOk, startIngest } from './services.js';

/**
 * Ingest throughput: HTTP POST /webhooks/clustr → 200 (after Kafka acked every event), from
 * `concurrency` closed-loop senders re-posting the same webhook of `size` opportunities.
 */
export interface IngestArgs {
  brokers: string[];
  size: number;
  concurrency: number;
  durationMs: number;
  warmupMs: number;
  chunk: number;
  inFlight: number;
  compression: Compression;
}

export async function runIngest(a: IngestArgs): Promise<ThroughputResult> {
  const ingest = await startIngest(a.brokers, {
    KAFKA_PUBLISH_CHUNK: String(a.chunk),
    KAFKA_MAX_IN_FLIGHT: String(a.inFlight),
    KAFKA_COMPRESSION: a.compression,
  });
  const poster = new Poster(ingest.url, a.concurrency);
  try {
    const body = Buffer.from(JSON.stringify(webhook(a.size, `bench_ingest_${a.size}`)));
    const load = await closedLoop(a.concurrency, a.durationMs, a.warmupMs, () => postOk(poster, body));
    return summarizeLoad(load, a.size);
  } catch (error) {
    throw new Error(`${error instanceof Error ? error.message : String(error)}\ningest logs:\n${ingest.svc.tail(20)}`);
  } finally {
    poster.close();
    await ingest.stop();
  }
}
