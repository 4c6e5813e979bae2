import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from './config.js';
import { ERROR_CODES, IngestError, type ErrorCode } from './errors.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const codes = Object.keys(ERROR_CODES) as ErrorCode[];

describe('error codes', () => {
  it('are unique, prefixed and carry an HTTP error status', () => {
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) {
      expect(code).toMatch(/^INGEST_ERR_[A-Z0-9_]+$/);
      expect(ERROR_CODES[code].statusCode).toBeGreaterThanOrEqual(400);
      // Only 408, 429 and 503 ask the sender to retry.
      expect(ERROR_CODES[code].retriable).toBe([408, 429, 503].includes(ERROR_CODES[code].statusCode));
    }
  });

  it.each(codes)('%s is documented in README.md with its status', (code) => {
    const row = readme.split('\n').find((line) => line.includes(`\`${code}\``));
    expect(row, `README.md has no table row for ${code}`).toBeDefined();
    expect(row).toContain(String(ERROR_CODES[code].statusCode));
  });

  it('every environment variable is documented in README.md', () => {
    for (const variable of CONFIG_VARIABLES) expect(readme).toContain(`\`${variable}\``);
  });

  it('renders the documented error body', () => {
    const error = new IngestError('INGEST_ERR_SCHEMA', { issues: [{ path: 'job_id', message: 'Required' }] });
    expect(error.toBody()).toEqual({
      statusCode: 422,
      code: 'INGEST_ERR_SCHEMA',
      error: 'Unprocessable Entity',
      message: 'Webhook does not match the schema',
      issues: [{ path: 'job_id', message: 'Required' }],
    });
    expect(new IngestError('INGEST_ERR_KAFKA_UNAVAILABLE').toBody()).not.toHaveProperty('issues');
  });
});
