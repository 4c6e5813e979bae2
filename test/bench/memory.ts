import { RssSampler, sleep, webhook, procMemory } from './common.js';
import { Poster, postOk, startIngest } from './services.js';

/** Peak RSS of a fresh ingest process handling one webhook of `size` opportunities. */
export interface MemoryArgs {
  brokers: string[];
  size: number;
  bodyLimitMb: number;
}

export interface MemoryResult {
  bodyMb: number;
  baselineRssMb: number;
  peakRssMb: number;
  ms: number;
}

export async function runIngestMemory(a: MemoryArgs): Promise<MemoryResult> {
  const body = Buffer.from(JSON.stringify(webhook(a.size, `bench_memory_${Date.now()}`)));
  const ingest = await startIngest(a.brokers, { BODY_LIMIT_MB: String(a.bodyLimitMb) });
  const poster = new Poster(ingest.url, 1);
  try {
    await sleep(500);
    const baselineRssMb = procMemory(ingest.svc.pid!)?.rssMb ?? Number.NaN;
    const sampler = new RssSampler(ingest.svc.pid!, 20);
    const t0 = performance.now();
    await postOk(poster, body);
    const ms = performance.now() - t0;
    const { peakRssMb, hwmMb } = sampler.stop();
    return { bodyMb: body.length / 1024 / 1024, baselineRssMb, peakRssMb: Math.max(peakRssMb, hwmMb), ms };
  } finally {
    poster.close();
    await ingest.stop();
  }
}
