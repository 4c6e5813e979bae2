import { describe, expect, it } from 'vitest';
import { captureLogs } from './testing/helpers.js';
import { redactUrl, serializeRequest } from './logger.js';

describe('redactUrl', () => {
  it.each([
    ['/webhooks/clustr', '/webhooks/clustr'],
    ['/webhooks/clustr?token=abc', '/webhooks/clustr?token=[Redacted]'],
    ['/w?a=1&token=abc&b=2', '/w?a=1&token=[Redacted]&b=2'],
    ['/w?TOKEN=abc', '/w?TOKEN=[Redacted]'],
    ['/w?%74oken=abc', '/w?%74oken=[Redacted]'],
    ['/w?token=a&token=b', '/w?token=[Redacted]&token=[Redacted]'],
    ['/w?tokens=keep', '/w?tokens=keep'],
  ])('%s → %s', (url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });
});

describe('logger', () => {
  it('logs no request headers and redacts credentials wherever they appear', () => {
    const { logger, text } = captureLogs();
    const req = { method: 'POST', url: '/x?token=s3cr3t', headers: { authorization: 'Bearer s3cr3t', 'x-webhook-token': 's3cr3t' } };
    expect(serializeRequest(req)).not.toHaveProperty('headers');
    logger.info({ req }, 'request');
    logger.info({ headers: req.headers, config: { webhookSecret: 's3cr3t' }, sasl: { password: 's3cr3t' } }, 'careless');
    expect(text()).toContain('"url":"/x?token=[Redacted]"');
    expect(text()).not.toContain('s3cr3t');
  });
});
