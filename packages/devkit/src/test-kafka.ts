import { Kafka, logLevel } from 'kafkajs';
import { dockerAvailable } from './docker.js';
import { startMockKafka, type MockKafka } from './mock-kafka.js';

export type KafkaMode = 'external' | 'container' | 'mock';

export interface TestKafka {
  mode: KafkaMode;
  brokers: string[];
  /** The mock cluster's fault-injection controls; only in `mock` mode. */
  mock?: MockKafka;
  /** Creates a topic whatever the mode (launcher command on the mock, admin API elsewhere). */
  createTopic(name: string, partitions: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Picks the Kafka a test suite runs against: `KAFKA_BROKERS` set → that cluster; a Docker engine →
 * an apache/kafka container (testcontainers); otherwise → the librdkafka mock broker. `TEST_KAFKA`
 * (`external` | `container` | `mock`) forces a mode; an unknown value throws rather than skipping.
 */
export async function startTestKafka(topics: Record<string, number>, env: NodeJS.ProcessEnv = process.env): Promise<TestKafka> {
  const forced = env.TEST_KAFKA;
  if (forced !== undefined && !['external', 'container', 'mock'].includes(forced)) {
    throw new Error(`TEST_KAFKA must be external, container or mock (got "${forced}")`);
  }
  const mode: KafkaMode = (forced as KafkaMode | undefined) ?? (env.KAFKA_BROKERS ? 'external' : dockerAvailable() ? 'container' : 'mock');

  if (mode === 'mock') {
    const mock = await startMockKafka({ topics });
    return { mode, brokers: mock.brokers, mock, createTopic: (name, n) => mock.createTopic(name, n), stop: () => mock.stop() };
  }

  let stopContainer = async () => {};
  let brokers: string[];
  if (mode === 'external') {
    if (!env.KAFKA_BROKERS) throw new Error('TEST_KAFKA=external needs KAFKA_BROKERS');
    brokers = env.KAFKA_BROKERS.split(',').map((b) => b.trim());
  } else {
    const { GenericContainer, Wait } = await import('testcontainers');
    const port = 9092;
    const container = await new GenericContainer('apache/kafka:3.9.1')
      .withExposedPorts({ container: port, host: 29092 })
      .withEnvironment({
        KAFKA_NODE_ID: '1',
        KAFKA_PROCESS_ROLES: 'broker,controller',
        KAFKA_LISTENERS: 'PLAINTEXT://:9092,CONTROLLER://:9093',
        KAFKA_ADVERTISED_LISTENERS: 'PLAINTEXT://localhost:29092',
        KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
        KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
        KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
        KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      })
      .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
      .start();
    brokers = [`localhost:29092`];
    stopContainer = async () => void (await container.stop());
  }
  const admin = new Kafka({ clientId: 'test-harness', brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  const createTopic = async (name: string, partitions: number) => {
    await admin.createTopics({ topics: [{ topic: name, numPartitions: partitions }], waitForLeaders: true });
  };
  for (const [name, partitions] of Object.entries(topics)) await createTopic(name, partitions);
  return {
    mode,
    brokers,
    createTopic,
    stop: async () => {
      await admin.disconnect();
      await stopContainer();
    },
  };
}
