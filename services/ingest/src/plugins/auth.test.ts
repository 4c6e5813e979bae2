import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../server.js';
import { FakePublisher, testConfig } from '../testing/helpers.js';
import { extractToken, tokenVerifier } from './auth.js';

const SECRET = 'correct-horse-battery-staple';

describe('extractToken', () => {
  it('reads the bearer token, the X-Webhook-Token header and ?token=, in that order', () => {
    expect(extractToken({ authorization: 'Bearer abc' }, {})).toBe('abc');
    expect(extractToken({ authorization: 'bearer   abc ' }, {})).toBe('abc');
    expect(extractToken({ 'x-webhook-token': 'def' }, {})).toBe('def');
    expect(extractToken({}, { token: 'ghi' })).toBe('ghi');
    expect(extractToken({ authorization: 'Bearer abc', 'x-webhook-token': 'def' }, { token: 'ghi' })).toBe('abc');
    expect(extractToken({}, {})).toBeUndefined();
  });
  it('does not accept other authorization schemes', () => {
    expect(extractToken({ authorization: `Basic ${SECRET}` }, {})).toBe('');
    expect(extractToken({ authorization: SECRET }, {})).toBe('');
  });
});

describe('tokenVerifier', () => {
  const verify = tokenVerifier(SECRET);
  it('accepts only the exact secret', () => {
    expect(verify(SECRET)).toBe(true);
    expect(verify(undefined)).toBe(false);
    expect(verify('')).toBe(false);
    expect(verify(SECRET.slice(0, -1))).toBe(false);
    expect(verify(`${SECRET}x`)).toBe(false);
    expect(verify(SECRET.toUpperCase())).toBe(false);
    expect(verify(` ${SECRET}`)).toBe(false);
  });
});

describe('webhook authentication', () => {
  let app: FastifyInstance;
  const publisher = new FakePublisher();
  beforeAll(async () => {
    app = buildServer(testConfig({ WEBHOOK_SECRET: SECRET }), { publisher });
    await app.ready();
  });
  afterAll(async () => app.close());

  const post = (headers: Record<string, string>, query = '') =>
    app.inject({ method: 'POST', url: `/webhooks/clustr${query}`, headers: { 'content-type': 'application/json', ...headers }, payload: { status: 'failed', job_id: 'j' } });

  it.each([
    ['Authorization: Bearer', { authorization: `Bearer ${SECRET}` }, ''],
    ['X-Webhook-Token', { 'x-webhook-token': SECRET }, ''],
    ['?token=', {}, `?token=${encodeURIComponent(SECRET)}`],
  ])('accepts the secret in %s', async (_where, headers, query) => {
    const response = await post(headers, query);
    expect(response.statusCode).toBe(200);
  });

  it.each([
    ['missing', {}, ''],
    ['wrong bearer', { authorization: 'Bearer nope' }, ''],
    ['almost right bearer', { authorization: `Bearer ${SECRET.slice(0, -1)}X` }, ''],
    ['prefix of the secret', { 'x-webhook-token': SECRET.slice(0, 10) }, ''],
    ['wrong query', {}, '?token=nope'],
    ['empty query', {}, '?token='],
    ['basic scheme', { authorization: `Basic ${SECRET}` }, ''],
  ])('answers 401 when the token is %s', async (_case, headers, query) => {
    const before = publisher.published.length;
    const response = await post(headers, query);
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toBe('Bearer');
    expect(response.json()).toMatchObject({ statusCode: 401, code: 'INGEST_ERR_UNAUTHORIZED', error: 'Unauthorized' });
    expect(publisher.published.length).toBe(before);
  });

  it('checks the token before reading the body', async () => {
    const response = await app.inject({ method: 'POST', url: '/webhooks/clustr', headers: { 'content-type': 'text/plain' }, payload: 'not json' });
    expect(response.statusCode).toBe(401);
  });

  it('leaves the health endpoints open', async () => {
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });
});
