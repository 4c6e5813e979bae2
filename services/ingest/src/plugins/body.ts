import { promisify } from 'node:util';
import { gunzip, inflate, inflateRaw, type ZlibOptions } from 'node:zlib';
import { errorCodes, type FastifyInstance, type FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { IngestError } from '../errors.js';
import { decodeUtf8Strict, jsonTextDepthExceeds } from '../json.js';
import { LARGE_BODY_BYTES, LargeJsonBody, type JsonParse, type ParsedBody } from '../large-body.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The decompressed request body as received, kept for the dead-letter topic. */
    rawBody: Buffer | null;
    /**
     * Whether the parsed body nests deeper than `maxJsonDepth` (checked on the decoded text while
     * it exists anyway); null when the plugin was not given a depth, or there was no body.
     */
    jsonTooDeep: boolean | null;
  }
}

export interface BodyPluginOptions {
  /** Largest body accepted, compressed AND decompressed, in bytes. */
  bodyLimit: number;
  /** When set, `request.jsonTooDeep` tells whether a parsed body nests deeper than this. */
  maxJsonDepth?: number | undefined;
  /**
   * Bodies (decompressed) of at least this many bytes become a LargeJsonBody on `request.body`
   * when they have the webhook's shape, instead of being decoded and parsed whole.
   * @default LARGE_BODY_BYTES (Infinity: never take it)
   */
  largeBodyBytes?: number | undefined;
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

/** The request body stream fastify hands a content type parser (`receivedEncodedLength` is set by decoding preParsing streams). */
type BodyStream = NodeJS.ReadableStream & { receivedEncodedLength?: number };

/**
 * Reads the whole body into one Buffer, with exactly the checks and errors of fastify's own
 * reader (`parseAs: 'buffer'`): 413 FST_ERR_CTP_BODY_TOO_LARGE past `limit` (also when
 * Content-Length announces more), 400 FST_ERR_CTP_INVALID_CONTENT_LENGTH when the body does not
 * match Content-Length, stream errors passed on (400 unless they carry a 4xx/5xx status).
 *
 * Why not fastify's: it keeps every chunk until the end and then concatenates them, so a body
 * briefly costs twice its size. With a Content-Length (the usual case) this copies each chunk into
 * one buffer of that size, allocated when the first chunk arrives, and drops the chunk at once.
 * Without one (chunked transfer encoding) it collects and concatenates, like fastify.
 */
export function readBody(request: FastifyRequest, payload: BodyStream, limit: number): Promise<Buffer> {
  const contentLength = Number(request.headers['content-length']);
  if (contentLength > limit) return Promise.reject(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
  const known = Number.isSafeInteger(contentLength) && contentLength >= 0;
  return new Promise<Buffer>((resolve, reject) => {
    let received = 0;
    let target: Buffer | undefined;
    const chunks: Buffer[] = [];
    const cleanup = () => {
      payload.removeListener('data', onData);
      payload.removeListener('end', onEnd);
      payload.removeListener('error', onEnd);
    };
    function onData(data: Buffer | string): void {
      const chunk = typeof data === 'string' ? Buffer.from(data) : data;
      const end = received + chunk.length;
      if (end > limit || (payload.receivedEncodedLength ?? 0) > limit) {
        cleanup();
        reject(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
        return;
      }
      if (!known) chunks.push(chunk);
      else if (end <= contentLength) {
        target ??= Buffer.allocUnsafe(contentLength);
        chunk.copy(target, received);
      }
      // else: more than announced; only counted, the length check below refuses it.
      received = end;
    }
    function onEnd(error?: Error & { statusCode?: number }): void {
      cleanup();
      if (error != null) {
        if (!(typeof error.statusCode === 'number' && error.statusCode >= 400)) error.statusCode = 400;
        reject(error);
        return;
      }
      if (known && (payload.receivedEncodedLength || received) !== contentLength) {
        reject(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
        return;
      }
      resolve(known ? (target ?? Buffer.alloc(0)) : Buffer.concat(chunks, received));
    }
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onEnd);
    payload.resume();
  });
}

/** Decodes and parses a whole body (strict UTF-8, fastify's secure parser), with our 400s. */
export function parseWholeBody(raw: Buffer, parse: JsonParse, maxJsonDepth: number | undefined): ParsedBody {
  let text: string;
  try {
    // JSON is UTF-8 (RFC 8259): invalid bytes are refused, not replaced with U+FFFD.
    text = decodeUtf8Strict(raw);
  } catch {
    throw new IngestError('INGEST_ERR_INVALID_UTF8');
  }
  let body: unknown;
  try {
    // The secure parser rejects __proto__ / constructor.prototype keys (the decoder dropped any BOM).
    body = parse(text);
  } catch (error) {
    throw new IngestError('INGEST_ERR_INVALID_JSON', (error as { code?: string }).code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? { message: 'Request body is empty' } : {});
  }
  return { body, jsonTooDeep: maxJsonDepth === undefined ? null : jsonTextDepthExceeds(text, maxJsonDepth) };
}

/**
 * Replaces fastify's JSON parser: checks media type and encoding before reading (preParsing),
 * reads the body as a Buffer within the limit, decompresses it within the same limit, keeps the
 * bytes on `request.rawBody` and parses them with fastify's secure parser (prototype-poisoning
 * keys are rejected with 400).
 *
 * A body of `largeBodyBytes` or more that has the webhook's shape is not decoded nor parsed whole:
 * `request.body` is then a LargeJsonBody (see large-body.ts), which the webhook route handles.
 */
async function bodyPlugin(app: FastifyInstance, options: BodyPluginOptions): Promise<void> {
  const { bodyLimit, maxJsonDepth, largeBodyBytes = LARGE_BODY_BYTES } = options;
  const jsonParser = app.getDefaultJsonParser('error', 'error');
  app.decorateRequest('rawBody', null);
  app.decorateRequest('jsonTooDeep', null);

  app.addHook('preParsing', async (request: FastifyRequest) => {
    const hasBody = request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] !== undefined;
    if (!hasBody) return;
    if (parseContentEncoding(request.headers['content-encoding']) === undefined) throw new IngestError('INGEST_ERR_UNSUPPORTED_ENCODING');
    if (!isJsonContentType(request.headers['content-type'])) throw new IngestError('INGEST_ERR_UNSUPPORTED_MEDIA_TYPE');
  });

  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { bodyLimit }, async (request: FastifyRequest, payload: BodyStream) => {
    // The webhook route's bodyLimit is this same limit (as with fastify's reader, which uses the parser's limit unless the route sets one).
    const body = await readBody(request, payload, bodyLimit);
    const encoding = parseContentEncoding(request.headers['content-encoding']) ?? 'identity';
    const raw = await decodeBody(body, encoding, bodyLimit);
    request.rawBody = raw;
    // fastify's parser calls back synchronously.
    const parse: JsonParse = (text) => {
      let result: { error: Error | null; value: unknown } | undefined;
      jsonParser(request, text, (error, value) => {
        result = { error, value };
      });
      if (!result) throw new Error('the JSON parser did not answer synchronously');
      if (result.error) throw result.error;
      return result.value;
    };
    if (raw.length >= largeBodyBytes) {
      const large = LargeJsonBody.from(raw, parse, () => parseWholeBody(raw, parse, maxJsonDepth));
      if (large) return large;
    }
    const parsed = parseWholeBody(raw, parse, maxJsonDepth);
    request.jsonTooDeep = parsed.jsonTooDeep;
    return parsed.body;
  });
}

export default fp(bodyPlugin, { name: 'clustr-ingest-body', fastify: '5.x' });
