import { createHash } from 'node:crypto';

/** First 32 hex characters of sha256(input): stable across runs, processes and machines. */
export function shortHash(input: string): string {
  return createHash('sha256').update(input).digest('hex').slice(0, 32);
}

/** Deterministic OpportunityEvent id: a replayed webhook yields the same ids, so downstream dedups it. */
export function opportunityEventId(jobId: string, opportunityId: string): string {
  return shortHash(`${jobId}/${opportunityId}`);
}

/** Deterministic JobEvent id. */
export function jobEventId(jobId: string, status: string): string {
  return shortHash(`${jobId}/${status}`);
}
