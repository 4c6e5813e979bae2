import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';

describe('fault proxy', () => {
  let target: Server;
  let proxy: FaultProxy;

  beforeAll(async () => {
    target = createServer((req, res) => {
      req.resume();
      req.once('end', () => res.end(`ok ${req.method}`));
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    proxy = await startFaultProxy({ target: `127.0.0.1:${(target.address() as AddressInfo).port}` });
  });
  afterAll(async () => {
    await proxy?.close();
    await new Promise((resolve) => target.close(resolve));
  });

  it('passes, refuses, answers 500 and swallows, switchable at run time', async () => {
    const post = () => fetch(proxy.url, { method: 'POST', body: 'SELECT 1', signal: AbortSignal.timeout(1_000) });
    expect(proxy.mode).toBe('pass');
    expect(await (await post()).text()).toBe('ok POST');

    proxy.setMode('refuse');
    await expect(post()).rejects.toThrow();

    proxy.setMode('http500');
    const failed = await post();
    expect(failed.status).toBe(500);
    expect(failed.headers.get('x-clickhouse-exception-code')).toBe('999');
    expect(await failed.text()).toBe('Code: 999. DB::Exception: injected\n');

    proxy.setMode('blackhole');
    await expect(post()).rejects.toThrow(/abort|timeout/i);

    proxy.setMode('pass');
    expect(await (await post()).text()).toBe('ok POST');
    expect(proxy.stats()).toMatchObject({ refused: 1, http500: 1, blackholed: 1 });
    expect(proxy.faults()).toBe(3);
  });

  it('closes open keep-alive connections when the mode changes', async () => {
    const { request } = await import('node:http');
    const { Agent } = await import('node:http');
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const get = () =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(proxy.url, { agent, method: 'GET' }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.once('error', reject).end();
      });
    expect(await get()).toEqual({ status: 200, body: 'ok GET' });
    proxy.setMode('http500');
    await new Promise((r) => setTimeout(r, 50));
    expect((await get()).status).toBe(500);
    proxy.setMode('pass');
    await new Promise((r) => setTimeout(r, 50));
    expect(await get()).toEqual({ status: 200, body: 'ok GET' });
    agent.destroy();
  });
});
