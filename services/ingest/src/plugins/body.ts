import { promisify } from 'node:util';
import { gunzip, inflate, inflateRaw, type ZlibOptions } from 'node:zlib';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { IngestError } from '../errors.js';
import { decodeUtf8Strict } from '../json.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The decompressed request body as received, kept for the dead-letter topic. */
    rawBody: Buffer | null;
  }
}

export interface BodyPluginOptions {
  /** Largest body accepted, compressed AND decompressed, in bytes. */
  bodyLimit: number;
}

const gunzipAsync = promisify<Buffer, ZlibOptions, Buffer>(gunzip);
const inflateAsync = promisify<Buffer, ZlibOptions, Buffer>(inflate);
const inflateRawAsync = promisify<Buffer, ZlibOptions, Buffer>(inflateRaw);

export type BodyEncoding = 'identity' | 'gzip' | 'deflate';

/** The body's Content-Encoding, or undefined when we do not support it (→ 415). */
export function parseContentEncoding(header: string | string[] | undefined): BodyEncoding | undefined {
  if (header === undefined) return 'identity';
  const value = (Array.isArray(header) ? header.join(',') : header).trim().toLowerCase();
  if (value === '' || value === 'identity') return 'identity';
  if (value === 'gzip' || value === 'x-gzip') return 'gzip';
  if (value === 'deflate') return 'deflate';
  return undefined;
}

/** True for `application/json` with no charset or a UTF-8 one (JSON is UTF-8, RFC 8259). */
export function isJsonContentType(header: string | undefined): boolean {
  if (!header) return false;
  const [essence, ...params] = header.split(';').map((part) => part.trim().toLowerCase());
  if (essence !== 'application/json') return false;
  return params.every((param) => {
    const [name, value] = param.split('=').map((s) => s?.trim().replace(/^"|"$/g, ''));
    return name !== 'charset' || value === 'utf-8' || value === 'utf8';
  });
}

/**
 * Decompresses with a hard cap on the OUTPUT size: zlib stops at `limit` bytes, so a gzip bomb
 * costs us at most `limit` bytes of memory and answers 413.
 */
export async function decodeBody(body: Buffer, encoding: BodyEncoding, limit: number): Promise<Buffer> {
  if (encoding === 'identity') return body;
  const options: ZlibOptions = { maxOutputLength: limit };
  try {
    if (encoding === 'gzip') return await gunzipAsync(body, options);
    try {
      return await inflateAsync(body, options);
    } catch (error) {
      // Some senders use raw DEFLATE (no zlib header) for "deflate".
      if ((error as NodeJS.ErrnoException).code === 'Z_DATA_ERROR') return await inflateRawAsync(body, options);
      throw error;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError) {
      throw new IngestError('INGEST_ERR_BODY_TOO_LARGE', { message: `Decompressed body is larger than ${limit} bytes` });
    }
    throw new IngestError('INGEST_ERR_BAD_ENCODING', { message: `Request body is not valid ${encoding} data` });
  }
}

/**
 * Replaces fastify's JSON parser: checks media type and encoding before reading (preParsing),
 * reads the body as a Buffer within the limit, decompresses it within the same limit, keeps the
 * bytes on `request.rawBody` and parses them with fastify's secure parser (prototype-poisoning
 * keys are rejected with 400).
 */
async function bodyPlugin(app: FastifyInstance, options: BodyPluginOptions): Promise<void> {
  const { bodyLimit } = options;
  const jsonParser = app.getDefaultJsonParser('error', 'error');
  app.decorateRequest('rawBody', null);

  app.addHook('preParsing', async (request: FastifyRequest) => {
    const hasBody = request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined;
    if (!hasBody) return;
    if (parseContentEncoding(request.headers['content-encoding']) === undefined) throw new IngestError('INGEST_ERR_UNSUPPORTED_ENCODING');
    if (!isJsonContentType(request.headers['content-type'])) throw new IngestError('INGEST_ERR_UNSUPPORTED_MEDIA_TYPE');
  });

  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit }, async (request: FastifyRequest, body: Buffer | string) => {
    const encoding = parseContentEncoding(request.headers['content-encoding']) ?? 'identity';
    const raw = await decodeBody(Buffer.isBuffer(body) ? body : Buffer.from(body), encoding, bodyLimit);
    request.rawBody = raw;
    let text: string;
    try {
      // JSON is UTF-8 (RFC 8259): invalid bytes are refused, not replaced with U+FFFD.
      text = decodeUtf8Strict(raw);
    } catch {
      throw new IngestError('INGEST_ERR_INVALID_UTF8');
    }
    return await new Promise<unknown>((resolve, reject) => {
      // The secure parser rejects __proto__ / constructor.prototype keys (the decoder dropped any BOM).
      jsonParser(request, text, (error, parsed) => {
        if (error) reject(new IngestError('INGEST_ERR_INVALID_JSON', (error as { code?: string }).code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? { message: 'Request body is empty' } : {}));
        else resolve(parsed);
      });
    });
  });
}

export default fp(bodyPlugin, { name: 'clustr-ingest-body', fastify: '5.x' });
