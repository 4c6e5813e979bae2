/**
 * ClickHouse-shaped errors for the embedded HTTP interface: the body `Code: N. DB::Exception: …
 * (TYPE)` that @clickhouse/client's parseError understands, and the HTTP status the real server
 * picks for the code (ClickHouse `HTTPHandler` exceptionCodeToHTTPStatus).
 */

export class HttpQueryError extends Error {
  constructor(
    readonly chCode: number,
    readonly chType: string,
    message: string,
  ) {
    super(message);
    this.name = 'HttpQueryError';
  }
}

const BY_STATUS: ReadonlyArray<[number, readonly string[]]> = [
  [401, ['REQUIRED_PASSWORD', 'AUTHENTICATION_FAILED', 'UNKNOWN_USER', 'WRONG_PASSWORD']],
  [403, ['READONLY', 'ACCESS_DENIED', 'NOT_ENOUGH_PRIVILEGES', 'SET_NON_GRANTED_ROLE']],
  [
    400,
    [
      'SYNTAX_ERROR', 'BAD_ARGUMENTS', 'BAD_QUERY_PARAMETER', 'UNKNOWN_QUERY_PARAMETER', 'TYPE_MISMATCH',
      'ILLEGAL_TYPE_OF_ARGUMENT', 'NUMBER_OF_ARGUMENTS_DOESNT_MATCH', 'UNKNOWN_FORMAT', 'UNKNOWN_SETTING',
      'INCORRECT_DATA', 'INCORRECT_QUERY', 'EMPTY_QUERY', 'UNKNOWN_TYPE', 'ILLEGAL_COLUMN',
      'ILLEGAL_AGGREGATION', 'NOT_AN_AGGREGATE', 'TOO_DEEP_AST', 'TOO_BIG_AST', 'UNEXPECTED_AST_STRUCTURE',
      'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE', 'UNKNOWN_AGGREGATE_FUNCTION', 'MULTIPLE_EXPRESSIONS_FOR_ALIAS',
    ],
  ],
  [
    404,
    [
      'UNKNOWN_TABLE', 'UNKNOWN_FUNCTION', 'UNKNOWN_IDENTIFIER', 'UNKNOWN_DATABASE', 'UNKNOWN_ELEMENT_IN_CONFIG',
      'THERE_IS_NO_COLUMN', 'NO_SUCH_COLUMN_IN_TABLE', 'UNKNOWN_DICTIONARY', 'UNKNOWN_STORAGE',
    ],
  ],
  [413, ['QUERY_IS_TOO_LARGE']],
  [501, ['NOT_IMPLEMENTED', 'SUPPORT_IS_DISABLED']],
  [503, ['SOCKET_TIMEOUT', 'CANNOT_OPEN_FILE', 'TIMEOUT_EXCEEDED']],
];
const STATUS_BY_TYPE = new Map<string, number>(BY_STATUS.flatMap(([status, types]) => types.map((t) => [t, status])));

export function httpStatusFor(chType: string): number {
  if (chType.startsWith('CANNOT_PARSE')) return 400;
  return STATUS_BY_TYPE.get(chType) ?? 500;
}

const CH_MESSAGE = /Code: (\d+)\. DB::Exception: ([\s\S]*?)\s*\(([A-Z0-9_]+)\)(?: \(version [^)]*\))?\.?\s*$/;

/** Normalises anything chdb (or our own checks) threw into code, type and message. */
export function toHttpQueryError(err: unknown): HttpQueryError {
  if (err instanceof HttpQueryError) return err;
  const text = err instanceof Error ? err.message : String(err);
  const match = CH_MESSAGE.exec(text);
  if (match) return new HttpQueryError(Number(match[1]), match[3]!, match[2]!);
  const code = typeof (err as { clickhouseCode?: unknown })?.clickhouseCode === 'number'
    ? (err as { clickhouseCode: number }).clickhouseCode
    : 1001;
  return new HttpQueryError(code, code === 1001 ? 'STD_EXCEPTION' : 'UNKNOWN_EXCEPTION', text);
}

/** The body ClickHouse sends for a failed query. */
export function errorBody(error: HttpQueryError, version: string): string {
  const message = error.message.replace(/\.+$/, '');
  return `Code: ${error.chCode}. DB::Exception: ${message}. (${error.chType}) (version ${version})\n`;
}
