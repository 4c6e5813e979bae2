import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, KafkaErrorCode, startMockKafka, type MockKafka } from './mock-kafka.js';

describe('mock Kafka broker', () => {
  let mock: MockKafka;
  beforeAll(async () => {
    mock = await startMockKafka({ brokers: 1, topics: { 'devkit.test': 2 } });
  });
  afterAll(async () => mock.stop());

  it('serves produce, consumer-group fetch and offsets over the Kafka protocol', async () => {
    const kafka = new Kafka({ clientId: 'devkit-test', brokers: mock.brokers, logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'devkit.test', acks: -1, messages: [{ key: 'a', value: 'one' }, { key: 'b', value: 'two' }] });
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: 'devkit-test' });
    await consumer.connect();
    await consumer.subscribe({ topic: 'devkit.test', fromBeginning: true });
    const seen: string[] = [];
    await new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          seen.push(String(message.value));
          if (seen.length === 2) resolve();
        },
      });
    });
    await consumer.disconnect();
    expect(seen.sort()).toEqual(['one', 'two']);
  }, 30_000);

  it('accepts topic creation and fault-injection commands, and rejects bad ones', async () => {
    await mock.createTopic('devkit.other', 3);
    await mock.injectErrors(ApiKey.Produce, KafkaErrorCode.NOT_LEADER_FOR_PARTITION, 1);
    await mock.setBrokerDown(1);
    await mock.setBrokerUp(1);
    await expect(mock.injectErrors(ApiKey.Produce, 6, 0)).rejects.toThrow(/cannot run/);
  });
});
