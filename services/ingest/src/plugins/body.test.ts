import { PassThrough } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { readBody } from './body.js';

const request = (headers: Record<string, string>) => ({ headers }) as unknown as FastifyRequest;

/** A body stream that emits `parts` as chunks, then ends (or fails with `error`). */
function stream(parts: Array<Buffer | string>, error?: Error): PassThrough {
  const s = new PassThrough();
  setImmediate(() => {
    for (const part of parts) s.write(part);
    if (error) s.destroy(error);
    else s.end();
  });
  return s;
}

describe('readBody', () => {
  const body = Buffer.from('{"a":"é","b":[1,2,3]}');
  const parts = [body.subarray(0, 5), body.subarray(5, 6), body.subarray(6)];

  it('assembles the chunks, with or without Content-Length', async () => {
    const known = await readBody(request({ 'content-length': String(body.length) }), stream(parts), 1_000);
    expect(known.equals(body)).toBe(true);
    const chunked = await readBody(request({ 'transfer-encoding': 'chunked' }), stream(parts), 1_000);
    expect(chunked.equals(body)).toBe(true);
    expect((await readBody(request({ 'content-length': '0' }), stream([]), 1_000)).length).toBe(0);
  });

  it('copies: the result is not a view over the chunks', async () => {
    const chunk = Buffer.from('{"x":1}');
    const result = await readBody(request({ 'transfer-encoding': 'chunked' }), stream([chunk]), 1_000);
    chunk.fill(0);
    expect(result.toString()).toBe('{"x":1}');
  });

  it('refuses bodies over the limit like fastify (413), announced or not', async () => {
    await expect(readBody(request({ 'content-length': '11' }), stream([]), 10)).rejects.toMatchObject({ code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 });
    await expect(readBody(request({ 'transfer-encoding': 'chunked' }), stream(['12345', '678901']), 10)).rejects.toMatchObject({ code: 'FST_ERR_CTP_BODY_TOO_LARGE' });
  });

  it('refuses a body that does not match its Content-Length (400)', async () => {
    await expect(readBody(request({ 'content-length': String(body.length + 1) }), stream(parts), 1_000)).rejects.toMatchObject({ code: 'FST_ERR_CTP_INVALID_CONTENT_LENGTH', statusCode: 400 });
    await expect(readBody(request({ 'content-length': String(body.length - 1) }), stream(parts), 1_000)).rejects.toMatchObject({ code: 'FST_ERR_CTP_INVALID_CONTENT_LENGTH' });
  });

  it('passes stream errors on, as 400 unless they carry a status', async () => {
    await expect(readBody(request({ 'content-length': '100' }), stream(['{'], new Error('aborted')), 1_000)).rejects.toMatchObject({ message: 'aborted', statusCode: 400 });
    const withStatus = Object.assign(new Error('too slow'), { statusCode: 408 });
    await expect(readBody(request({ 'transfer-encoding': 'chunked' }), stream(['{'], withStatus), 1_000)).rejects.toMatchObject({ statusCode: 408 });
  });
});
