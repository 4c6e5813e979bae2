/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"):
 * the delay before retry `attempt` (0-based) is uniform in [0, min(maxMs, initialMs · 2^attempt)).
 */

export interface BackoffPolicy {
  /** @default 200 */
  initialMs: number;
  /** @default 30000 */
  maxMs: number;
}

/** Upper bound of the delay before retry `attempt` (0-based). */
export function backoffCeiling(attempt: number, policy: BackoffPolicy): number {
  if (!Number.isInteger(attempt) || attempt < 0) throw new RangeError(`bad attempt ${attempt}`);
  // 2^attempt overflows to Infinity long after it passed maxMs; Math.min handles that.
  return Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 1_000));
}

/** The delay before retry `attempt`; `random` returns [0, 1) like Math.random. */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  return Math.floor(random() * backoffCeiling(attempt, policy));
}

export class AbortedError extends Error {
  constructor(message = 'aborted') {
    super(message);
    this.name = 'AbortedError';
  }
}

/** setTimeout as a promise; unref'd so it never keeps the process alive; rejects on abort. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError());
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryOptions {
  policy: BackoffPolicy;
  isRetriable(error: unknown): boolean;
  /** Called before each wait. */
  onRetry?(error: unknown, attempt: number, delayMs: number): void;
  signal?: AbortSignal;
  random?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Runs `fn` until it resolves or throws a non-retriable error; never gives up on a retriable one
 * (the caller aborts through `signal`, e.g. on shutdown).
 */
export async function retryForever<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const wait = options.sleep ?? sleep;
  for (let attempt = 0; ; attempt++) {
    if (options.signal?.aborted) throw new AbortedError();
    try {
      return await fn(attempt);
    } catch (error) {
      if (!options.isRetriable(error) || options.signal?.aborted) throw error;
      const delay = backoffDelay(attempt, options.policy, options.random);
      options.onRetry?.(error, attempt, delay);
      await wait(delay, options.signal);
    }
  }
}
