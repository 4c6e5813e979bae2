import type { ITopicConfig } from 'kafkajs';
import type { Logger } from 'pino';

/** The slice of the kafkajs admin client ensureTopics needs (a fake one in unit tests). */
export interface TopicAdmin {
  listTopics(): Promise<string[]>;
  createTopics(options: { topics: ITopicConfig[]; waitForLeaders?: boolean; timeout?: number }): Promise<boolean>;
}

export interface EnsureTopicsOptions {
  partitions: number;
  replicationFactor: number;
  /** Partitions for particular topics, overriding `partitions`. */
  partitionsByTopic?: Record<string, number>;
}

/**
 * Makes sure every topic exists. Existing topics are found through metadata and left alone, so a
 * broker that refuses CreateTopics (ACLs, the librdkafka mock) does not block start-up as long as
 * the topics are already there. Returns the topics it created.
 */
export async function ensureTopics(admin: TopicAdmin, topics: string[], options: EnsureTopicsOptions, logger?: Logger): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const missing = [...new Set(topics)].filter((t) => !existing.has(t));
  if (missing.length === 0) return [];
  logger?.info({ topics: missing }, 'creating missing Kafka topics');
  try {
    await admin.createTopics({
      topics: missing.map((topic) => ({
        topic,
        numPartitions: options.partitionsByTopic?.[topic] ?? options.partitions,
        replicationFactor: options.replicationFactor,
      })),
      waitForLeaders: true,
    });
  } catch (error) {
    // TRICKY: another replica may have created them meanwhile; only fail if still missing.
    const now = new Set(await admin.listTopics());
    const stillMissing = missing.filter((t) => !now.has(t));
    if (stillMissing.length > 0) {
      throw new Error(`cannot create Kafka topics ${stillMissing.join(', ')}: ${(error as Error).message}`, { cause: error });
    }
  }
  return missing;
}
