import { describe, expect, it } from 'vitest';
import { ConfigError, DLQ_REASONS, SINK_ERROR_CODES } from './errors.js';

describe('error codes', () => {
  it('are unique and documented', () => {
    const codes = [...Object.keys(SINK_ERROR_CODES), ...Object.keys(DLQ_REASONS)];
    expect(new Set(codes).size).toBe(codes.length);
    for (const text of [...Object.values(SINK_ERROR_CODES), ...Object.values(DLQ_REASONS)]) expect(text.length).toBeGreaterThan(10);
  });
  it('ConfigError names the variable', () => {
    const e = new ConfigError('KAFKA_BROKERS', 'is required');
    expect(e).toMatchObject({ code: 'SINK_ERR_CONFIG', variable: 'KAFKA_BROKERS', message: 'KAFKA_BROKERS: is required' });
  });
});
