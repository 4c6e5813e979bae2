import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { IngestError } from '../errors.js';

/**
 * The webhook token, from (first present wins) `Authorization: Bearer …`, `X-Webhook-Token` or
 * `?token=`. Returns undefined when none is present.
 */
export function extractToken(headers: FastifyRequest['headers'], query: unknown): string | undefined {
  const authorization = headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    return match?.[1] ?? '';
  }
  const header = headers['x-webhook-token'];
  if (typeof header === 'string') return header;
  if (Array.isArray(header)) return header[0];
  if (query && typeof query === 'object') {
    const token = (query as Record<string, unknown>).token;
    if (typeof token === 'string') return token;
    if (Array.isArray(token) && typeof token[0] === 'string') return token[0];
  }
  return undefined;
}

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/**
 * A constant-time token check. Both sides are hashed first so that timingSafeEqual always compares
 * 32 bytes: neither the secret's length nor a matching prefix leaks through timing.
 */
export function tokenVerifier(secret: string): (candidate: string | undefined) => boolean {
  const expected = digest(secret);
  return (candidate) => {
    const actual = digest(candidate ?? '');
    return timingSafeEqual(actual, expected) && candidate !== undefined;
  };
}

/**
 * onRequest hook: runs before the body is read or parsed, so unauthenticated senders cannot make
 * us buffer, decompress or validate anything.
 */
export function authHook(secret: string): onRequestHookHandler {
  const verify = tokenVerifier(secret);
  return async (request: FastifyRequest, reply: FastifyReply) => {
    if (!verify(extractToken(request.headers, request.query))) {
      void reply.header('www-authenticate', 'Bearer');
      throw new IngestError('INGEST_ERR_UNAUTHORIZED');
    }
  };
}
