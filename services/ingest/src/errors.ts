/**
 * Every error the ingest answers with, by stable code. Clients and alerts key on `code`, so a code
 * is never renamed or reused; README.md lists each one (a test checks this).
 *
 * NOTE: this file imports nothing local so that any module can use it without cycles.
 */

export interface ErrorDefinition {
  statusCode: number;
  /** Default human-readable message. */
  message: string;
  /** Whether the sender should retry the same request later (408, 429 and 503; 429s and 503s carry `Retry-After`). */
  retriable: boolean;
}

export const ERROR_CODES = {
  INGEST_ERR_INVALID_JSON: { statusCode: 400, message: 'Request body is not valid JSON', retriable: false },
  INGEST_ERR_INVALID_UTF8: { statusCode: 400, message: 'Request body is not valid UTF-8', retriable: false },
  INGEST_ERR_BAD_ENCODING: { statusCode: 400, message: 'Request body could not be decompressed', retriable: false },
  INGEST_ERR_UNAUTHORIZED: { statusCode: 401, message: 'Missing or invalid webhook token', retriable: false },
  INGEST_ERR_NOT_FOUND: { statusCode: 404, message: 'Route not found', retriable: false },
  INGEST_ERR_BODY_TOO_LARGE: { statusCode: 413, message: 'Request body is larger than the limit', retriable: false },
  INGEST_ERR_TOO_MANY_OPPORTUNITIES: { statusCode: 413, message: 'Webhook has more opportunities than MAX_OPPORTUNITIES', retriable: false },
  INGEST_ERR_REQUEST_TIMEOUT: { statusCode: 408, message: 'Request was not received within the timeout', retriable: true },
  INGEST_ERR_UNSUPPORTED_MEDIA_TYPE: { statusCode: 415, message: 'Content-Type must be application/json', retriable: false },
  INGEST_ERR_UNSUPPORTED_ENCODING: { statusCode: 415, message: 'Content-Encoding must be gzip, deflate or identity', retriable: false },
  INGEST_ERR_SCHEMA: { statusCode: 422, message: 'Webhook does not match the schema', retriable: false },
  INGEST_ERR_JSON_TOO_DEEP: { statusCode: 422, message: 'Request body nests deeper than MAX_JSON_DEPTH', retriable: false },
  INGEST_ERR_RATE_LIMITED: { statusCode: 429, message: 'Too many requests, retry later', retriable: true },
  INGEST_ERR_KAFKA_UNAVAILABLE: { statusCode: 503, message: 'Kafka is unavailable, retry later', retriable: true },
  INGEST_ERR_KAFKA_TIMEOUT: { statusCode: 503, message: 'Kafka did not acknowledge in time, retry later', retriable: true },
  INGEST_ERR_DLQ_UNAVAILABLE: { statusCode: 503, message: 'Could not dead-letter the invalid webhook, retry later', retriable: true },
  INGEST_ERR_SPOOL_FULL: { statusCode: 503, message: 'Kafka is unavailable and the local spool is full, retry later', retriable: true },
  INGEST_ERR_SPOOL_UNAVAILABLE: { statusCode: 503, message: 'Kafka is unavailable and the webhook could not be spooled, retry later', retriable: true },
  INGEST_ERR_OVERLOADED: { statusCode: 503, message: 'Service is overloaded, retry later', retriable: true },
  INGEST_ERR_INTERNAL: { statusCode: 500, message: 'Internal error', retriable: false },
} as const satisfies Record<string, ErrorDefinition>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Seconds a 503 asks the sender to wait (`Retry-After`). */
export const RETRY_AFTER_SECONDS = 5;

export interface IssueBody {
  path: string;
  message: string;
}

/** The JSON body of every error response. */
export interface ErrorBody {
  statusCode: number;
  code: ErrorCode;
  error: string;
  message: string;
  issues?: IssueBody[];
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export class IngestError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  readonly retriable: boolean;
  readonly issues: IssueBody[] | undefined;

  constructor(code: ErrorCode, options: { message?: string; issues?: IssueBody[]; cause?: unknown } = {}) {
    const definition: ErrorDefinition = ERROR_CODES[code];
    super(options.message ?? definition.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'IngestError';
    this.code = code;
    this.statusCode = definition.statusCode;
    this.retriable = definition.retriable;
    this.issues = options.issues;
  }

  toBody(): ErrorBody {
    return {
      statusCode: this.statusCode,
      code: this.code,
      error: STATUS_TEXT[this.statusCode] ?? 'Error',
      message: this.message,
      ...(this.issues ? { issues: this.issues } : {}),
    };
  }
}

export function isIngestError(error: unknown): error is IngestError {
  return error instanceof IngestError;
}
