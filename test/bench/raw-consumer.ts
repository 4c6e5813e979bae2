import { kafkaClient, sleep } from './common.js';
import { perSecond } from './stats.js';

/**
 * Raw limit of the sink's read side: a kafkajs consumer (fresh group, from the beginning) draining
 * the filled topic, JSON.parse-ing every value. Fails if it reads more or fewer than `count`.
 */
export interface RawConsumerArgs {
  brokers: string[];
  topic: string;
  count: number;
  groupId: string;
  timeoutMs: number;
}

export interface DrainResult {
  /** Rows/s from the first message to the last (steady state). */
  rowsPerSec: number;
  /** Rows/s from start (connect + ~3 s group join) to the last. */
  rowsPerSecWall: number;
  ms: number;
  wallMs: number;
}

export async function run(a: RawConsumerArgs): Promise<DrainResult> {
  const consumer = kafkaClient(a.brokers, 'bench-raw-consumer').consumer({ groupId: a.groupId, allowAutoTopicCreation: false });
  const t0 = performance.now();
  let first = 0;
  let last = 0;
  let seen = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: a.topic, fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        if (first === 0) first = performance.now();
        for (const m of batch.messages) {
          if (m.value) JSON.parse(m.value.toString('utf8'));
          seen++;
        }
        if (seen >= a.count) {
          last = performance.now();
          done();
        }
      },
    });
    const timer = setTimeout(done, a.timeoutMs);
    await finished;
    clearTimeout(timer);
    await sleep(500); // anything beyond `count` would be a duplicate: give it a moment to show up
    if (seen !== a.count) throw new Error(`raw consumer read ${seen} messages, expected ${a.count}`);
    return { rowsPerSec: perSecond(a.count, last - first), rowsPerSecWall: perSecond(a.count, last - t0), ms: last - first, wallMs: last - t0 };
  } finally {
    await consumer.disconnect();
  }
}
