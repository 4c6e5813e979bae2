import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

/** Header names whose values are credentials. Lowercase, as Node delivers them. */
const SECRET_HEADERS = ['authorization', 'x-webhook-token', 'cookie'];

/** Paths pino censors wherever a request or its headers get logged (belt and braces: the req serializer logs no headers). */
export const REDACT_PATHS = [
  ...SECRET_HEADERS.flatMap((h) => [`req.headers["${h}"]`, `headers["${h}"]`, `request.headers["${h}"]`]),
  'webhookSecret',
  'config.webhookSecret',
  '*.webhookSecret',
  'password',
  '*.password',
  'sasl.password',
];

/** Removes the value of every `token` query parameter, keeping the rest of the URL readable. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq === -1 ? pair : pair.slice(0, eq);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {
        // Malformed escapes: compare the raw name.
      }
      return decoded.trim().toLowerCase() === 'token' ? `${name}=[Redacted]` : pair;
    })
    .join('&');
  return `${url.slice(0, q)}?${query}`;
}

interface RequestLike {
  method?: string;
  url?: string;
  id?: string;
  ip?: string;
  socket?: { remoteAddress?: string; remotePort?: number };
  raw?: { url?: string };
  headers?: Record<string, unknown>;
}

/** Logs what identifies a request, never its headers (credentials) nor the `?token=` value. */
export function serializeRequest(req: RequestLike): Record<string, unknown> {
  return {
    method: req.method,
    url: redactUrl(String(req.url ?? req.raw?.url ?? '')),
    contentType: req.headers?.['content-type'],
    contentEncoding: req.headers?.['content-encoding'],
    contentLength: req.headers?.['content-length'],
    remoteAddress: req.ip ?? req.socket?.remoteAddress,
  };
}

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    base: { service: 'clustr-ingest' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
    serializers: {
      req: serializeRequest,
      res: (res: { statusCode?: number }) => ({ statusCode: res.statusCode }),
      err: pino.stdSerializers.err,
    },
  };
}

/** The service logger: JSON lines to stdout, or to `destination` (tests capture it). */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return destination ? pino(loggerOptions(level), destination) : pino(loggerOptions(level));
}
