import { DLQ_HEADERS } from '@clustr-pipeline/schema';
import { describe, expect, it } from 'vitest';
import { DlqPublisher, toDlqMessage, type DlqMessage } from './dlq.js';

const entry = {
  topic: 'clustr.opportunities.v1',
  partition: 2,
  offset: 41,
  key: 'opp_1',
  value: Buffer.from('garbage'),
  headers: { ce_id: 'abc', dlq_reason: 'spoofed' },
  reason: 'SINK_DLQ_INVALID_JSON' as const,
  error: 'x'.repeat(5_000),
};

describe('DLQ messages', () => {
  it('carry the raw bytes, the source position, stage=sink and the reason', () => {
    const msg = toDlqMessage(entry, new Date('2025-05-01T00:00:00Z'));
    expect(msg.key).toBe('opp_1');
    expect(msg.value).toEqual(Buffer.from('garbage'));
    expect(msg.headers).toMatchObject({
      ce_id: 'abc',
      [DLQ_HEADERS.reason]: 'SINK_DLQ_INVALID_JSON',
      [DLQ_HEADERS.stage]: 'sink',
      [DLQ_HEADERS.sourceTopic]: 'clustr.opportunities.v1',
      [DLQ_HEADERS.sourcePartition]: '2',
      [DLQ_HEADERS.sourceOffset]: '41',
      [DLQ_HEADERS.receivedAt]: '2025-05-01T00:00:00.000Z',
      [DLQ_HEADERS.contentType]: 'application/octet-stream',
    });
    expect(String(msg.headers[DLQ_HEADERS.error]).length).toBeLessThanOrEqual(1_001);
  });

  it('are published with acks=-1 to the DLQ topic', async () => {
    const sent: Array<{ topic: string; acks: number; messages: DlqMessage[] }> = [];
    const producer = { connect: async () => {}, disconnect: async () => {}, send: async (r: (typeof sent)[number]) => void sent.push(r) };
    const dlq = new DlqPublisher(producer, 'clustr.dlq.v1');
    await dlq.connect();
    await dlq.publish([entry]);
    await dlq.publish([]);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ topic: 'clustr.dlq.v1', acks: -1 });
    await dlq.close();
  });
});
