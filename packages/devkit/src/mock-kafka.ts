import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/**
 * librdkafka's mock cluster as a child process: a real Kafka-protocol broker over TCP, in memory.
 * Development and tests only. Its limits (see README): no CreateTopics (topics are created here),
 * controller id 0 (no kafkajs idempotent producer), at most 5 MB / 100k batches per partition with
 * older data dropped silently, and a fixed 3 s wait for the first consumer-group join.
 */

const SOURCE = join(dirname(fileURLToPath(import.meta.url)), '..', 'native', 'mock-kafka.c');
const HEADER = '/usr/include/librdkafka/rdkafka_mock.h';

/** Kafka protocol API keys and error codes used with {@link MockKafka.injectErrors}. */
export const ApiKey = { Produce: 0, Fetch: 1, ListOffsets: 2, Metadata: 3, OffsetCommit: 8, OffsetFetch: 9, FindCoordinator: 10, JoinGroup: 11, Heartbeat: 12, SyncGroup: 14 } as const;
export const KafkaErrorCode = { NOT_LEADER_FOR_PARTITION: 6, REQUEST_TIMED_OUT: 7, NOT_ENOUGH_REPLICAS: 19, COORDINATOR_NOT_AVAILABLE: 15, NOT_COORDINATOR: 16 } as const;

export interface MockKafkaOptions {
  /** Brokers in the mock cluster. @default 1 */
  brokers?: number;
  /** Topics to create, name → partitions. */
  topics?: Record<string, number>;
  /** Called with each stderr line of the broker. */
  onLog?: (line: string) => void;
}

export interface MockKafka {
  /** `host:port` of each broker. */
  brokers: string[];
  createTopic(name: string, partitions: number): Promise<void>;
  setBrokerDown(brokerId: number): Promise<void>;
  setBrokerUp(brokerId: number): Promise<void>;
  /** Fail the next `count` requests of `apiKey` with Kafka error `errorCode`. */
  injectErrors(apiKey: number, errorCode: number, count: number): Promise<void>;
  setRtt(brokerId: number, ms: number): Promise<void>;
  stop(): Promise<void>;
}

function ensureLibrdkafka(): void {
  if (existsSync(HEADER)) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot) {
    console.warn('[devkit] librdkafka-dev is missing: installing it with apt-get (one-time)…');
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    execFileSync('apt-get', ['install', '-y', '-qq', 'librdkafka-dev'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    return;
  }
  throw new Error('The local Kafka broker needs librdkafka-dev. Run: sudo apt-get install -y librdkafka-dev gcc');
}

/** Compiles the launcher once per source version into a cache directory; returns the binary path. */
export function buildMockKafka(): string {
  ensureLibrdkafka();
  const source = readFileSync(SOURCE);
  const digest = createHash('sha256').update(source).digest('hex').slice(0, 12);
  const dir = join(tmpdir(), 'clustr-pipeline-devkit');
  const binary = join(dir, `mock-kafka-${digest}`);
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const partial = `${binary}.${process.pid}.tmp`;
  execFileSync('cc', ['-O2', '-o', partial, SOURCE, '-lrdkafka'], { stdio: 'inherit' });
  renameSync(partial, binary);
  return binary;
}

export async function startMockKafka(options: MockKafkaOptions = {}): Promise<MockKafka> {
  const binary = buildMockKafka();
  const topicArgs = Object.entries(options.topics ?? {}).map(([name, partitions]) => `${name}:${partitions}`);
  const child: ChildProcessWithoutNullStreams = spawn(binary, [String(options.brokers ?? 1), ...topicArgs], { stdio: 'pipe' });
  const stderr = createInterface({ input: child.stderr });
  stderr.on('line', (line) => options.onLog?.(line));
  const lines = createInterface({ input: child.stdout });

  const waiters: Array<{ resolve: (line: string) => void; reject: (error: Error) => void }> = [];
  let exited = false;
  const onExit = (code: number | null) => {
    exited = true;
    for (const w of waiters.splice(0)) w.reject(new Error(`mock Kafka exited with code ${code}`));
  };
  child.on('exit', onExit);
  lines.on('line', (line) => waiters.shift()?.resolve(line));
  const nextLine = () =>
    new Promise<string>((resolve, reject) => {
      if (exited) reject(new Error('mock Kafka is not running'));
      else waiters.push({ resolve, reject });
    });

  const first = await nextLine();
  if (!first.startsWith('BOOTSTRAP ')) throw new Error(`mock Kafka did not start: ${first}`);
  const brokers = first.slice('BOOTSTRAP '.length).trim().split(',');

  // Commands are answered in order, one line each, so a FIFO of waiters matches answers to commands.
  const command = async (text: string) => {
    const answer = nextLine();
    child.stdin.write(`${text}\n`);
    const line = await answer;
    if (!line.startsWith('OK')) throw new Error(`mock Kafka: ${line}`);
  };

  return {
    brokers,
    createTopic: (name, partitions) => command(`topic ${name} ${partitions}`),
    setBrokerDown: (id) => command(`down ${id}`),
    setBrokerUp: (id) => command(`up ${id}`),
    injectErrors: (apiKey, errorCode, count) => command(`error ${apiKey} ${errorCode} ${count}`),
    setRtt: (id, ms) => command(`rtt ${id} ${ms}`),
    stop: async () => {
      if (exited) return;
      const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.stdin.end('quit\n');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await done;
      clearTimeout(timer);
    },
  };
}
