import { describe, expect, it } from 'vitest';
import { ensureTopics, type TopicAdmin } from './topics.js';

function fakeAdmin(existing: string[], options: { createFails?: boolean; createdByOthers?: boolean } = {}) {
  const topics = new Set(existing);
  const created: Array<{ topic: string; numPartitions?: number; replicationFactor?: number }> = [];
  const admin: TopicAdmin = {
    listTopics: async () => [...topics],
    createTopics: async ({ topics: requested }) => {
      if (options.createdByOthers) for (const t of requested) topics.add(t.topic);
      if (options.createFails) throw new Error('CLUSTER_AUTHORIZATION_FAILED');
      for (const t of requested) {
        created.push(t);
        topics.add(t.topic);
      }
      return true;
    },
  };
  return { admin, created };
}

const options = { partitions: 6, replicationFactor: 3 };

describe('ensureTopics', () => {
  it('does not try to create topics that exist (a broker without CreateTopics is fine)', async () => {
    const { admin, created } = fakeAdmin(['a', 'b', 'c'], { createFails: true });
    await expect(ensureTopics(admin, ['a', 'b', 'c'], options)).resolves.toEqual([]);
    expect(created).toEqual([]);
  });

  it('creates only the missing topics with the configured partitions and replication', async () => {
    const { admin, created } = fakeAdmin(['a']);
    await expect(ensureTopics(admin, ['a', 'b', 'c'], { ...options, partitionsByTopic: { c: 12 } })).resolves.toEqual(['b', 'c']);
    expect(created).toEqual([
      { topic: 'b', numPartitions: 6, replicationFactor: 3 },
      { topic: 'c', numPartitions: 12, replicationFactor: 3 },
    ]);
  });

  it('fails when a missing topic cannot be created', async () => {
    const { admin } = fakeAdmin(['a'], { createFails: true });
    await expect(ensureTopics(admin, ['a', 'b'], options)).rejects.toThrow(/cannot create Kafka topics b/);
  });

  it('tolerates a create error when someone else created the topic meanwhile', async () => {
    const { admin } = fakeAdmin([], { createFails: true, createdByOthers: true });
    await expect(ensureTopics(admin, ['a'], options)).resolves.toEqual(['a']);
  });
});
