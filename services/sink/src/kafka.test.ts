import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { kafkaClientConfig } from './kafka.js';

const logger = pino({ level: 'silent' });

describe('kafkaClientConfig', () => {
  it('is plaintext without SSL/SASL settings', () => {
    const c = kafkaClientConfig(loadConfig({ KAFKA_BROKERS: 'a:9092,b:9093' }).kafka, logger);
    expect(c).toMatchObject({ clientId: 'clustr-sink', brokers: ['a:9092', 'b:9093'] });
    expect(c.ssl).toBeUndefined();
    expect(c.sasl).toBeUndefined();
  });

  it('maps TLS (with a CA file) and SASL/SCRAM', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sink-ca-'));
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nxyz\n-----END CERTIFICATE-----\n');
    const config = loadConfig({
      KAFKA_BROKERS: 'k:9094',
      KAFKA_SSL_CA_FILE: ca,
      KAFKA_SSL_REJECT_UNAUTHORIZED: 'false',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'sink',
      KAFKA_SASL_PASSWORD: 's3cret',
    });
    const c = kafkaClientConfig(config.kafka, logger);
    expect(c.ssl).toEqual({ rejectUnauthorized: false, ca: [expect.stringContaining('BEGIN CERTIFICATE')] });
    expect(c.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'sink', password: 's3cret' });
  });
});
