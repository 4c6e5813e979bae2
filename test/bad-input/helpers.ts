import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import type { RawResult } from './cases.js';

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * One request over its own connection (node:http, so every header and the framing are ours to
 * choose). Resolves with the response even when the server stops reading the body early.
 */
export function send(
  url: string,
  options: { method?: string; path: string; headers: Record<string, string>; body?: Buffer; chunked?: boolean },
  timeoutMs = 60_000,
): Promise<HttpResult> {
  // The server may answer 413 and close while a big body is still being written: node:http then
  // fails with EPIPE and loses the response. A raw socket keeps reading what the server said.
  if (options.body !== undefined && options.body.length > 4 * 1024 * 1024) return sendRaw(url, options, timeoutMs);
  return new Promise((resolve, reject) => {
    const target = new URL(options.path, url);
    const headers: Record<string, string> = { ...options.headers };
    if (options.body !== undefined && !options.chunked) headers['content-length'] = String(options.body.length);
    if (options.chunked) headers['transfer-encoding'] = 'chunked';
    let settled = false;
    const req = httpRequest(
      { host: target.hostname, port: target.port, method: options.method ?? 'POST', path: target.pathname + target.search, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        const finish = () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        };
        res.on('end', finish);
        res.on('close', finish);
        res.on('error', finish);
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`no response within ${timeoutMs} ms`)), timeoutMs);
    // EPIPE/ECONNRESET after the server answered early (413, 401) are expected: the response wins.
    req.on('error', (error) => {
      if (settled) return;
      setTimeout(() => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
      }, 500);
    });
    if (options.body === undefined) {
      req.end();
    } else if (options.chunked) {
      // Several chunks, so the server sees a streamed body without a length.
      const step = 256 * 1024;
      for (let i = 0; i < options.body.length; i += step) req.write(options.body.subarray(i, i + step));
      req.end();
    } else {
      req.end(options.body);
    }
  });
}

/** HTTP/1.1 over a raw socket (Connection: close): writes everything it can, parses whatever comes back. */
function sendRaw(url: string, options: { method?: string; path: string; headers: Record<string, string>; body?: Buffer; chunked?: boolean }, timeoutMs: number): Promise<HttpResult> {
  const target = new URL(options.path, url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(target.port), target.hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error(`no response within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => undefined); // EPIPE/ECONNRESET once the server gave up on the body
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      if (!match) return reject(new Error(`no HTTP response (got ${JSON.stringify(text.slice(0, 200))})`));
      const split = text.indexOf('\r\n\r\n');
      const headers: Record<string, string> = {};
      for (const line of text.slice(0, split).split('\r\n').slice(1)) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status: Number(match[1]), headers, body: text.slice(split + 4) });
    });
    socket.on('connect', async () => {
      const framing: Record<string, string> = options.chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(options.body?.length ?? 0) };
      const headers = { ...options.headers, host: target.host, connection: 'close', ...framing };
      const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      socket.write(`${options.method ?? 'POST'} ${target.pathname}${target.search} HTTP/1.1\r\n${head}\r\n`);
      // Slice by slice, stopping as soon as the server answered: if we kept writing after it closed,
      // its RST could make the kernel drop the response before we read it.
      const body = options.body ?? Buffer.alloc(0);
      // Like curl with `Expect: 100-continue` for a big body: give the server a moment to refuse
      // from the headers alone (413 from Content-Length) before sending any of the body. Otherwise
      // the server closes with our first slices unread, and the RST can beat the 413 to us.
      if (body.length > 1024 * 1024) for (let waited = 0; waited < 500 && chunks.length === 0 && !socket.destroyed; waited += 10) await new Promise((r) => setTimeout(r, 10));
      const step = 256 * 1024;
      for (let i = 0; i < body.length && chunks.length === 0 && !socket.destroyed; i += step) {
        const slice = body.subarray(i, i + step);
        const ok = socket.write(options.chunked ? Buffer.concat([Buffer.from(`${slice.length.toString(16)}\r\n`), slice, Buffer.from('\r\n')]) : slice);
        await new Promise((r) => (ok ? setTimeout(r, 2) : socket.once('drain', r)));
      }
      if (chunks.length === 0 && !socket.destroyed) socket.write(options.chunked ? '0\r\n\r\n' : '');
    });
  });
}

/**
 * Raw TCP senders: `slow-body` sends complete headers then one body byte every `intervalMs`;
 * `slow-headers` never finishes the headers; `garbage` sends something that is not HTTP.
 * Resolves with the status line the server answered (if any) and whether it closed the socket.
 */
export function rawSend(url: string, mode: 'slow-body' | 'slow-headers' | 'garbage', headers: Record<string, string>, maxMs = 20_000, intervalMs = 400): Promise<RawResult> {
  const target = new URL(url);
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(Number(target.port), target.hostname);
    let received = '';
    let timer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      clearInterval(timer);
      clearTimeout(deadline);
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(received);
      socket.destroy();
      resolve({ status: match ? Number(match[1]) : null, closed, elapsedMs: Date.now() - started });
    };
    const deadline = setTimeout(() => finish(false), maxMs);
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    socket.on('close', () => finish(true));
    socket.on('error', () => undefined);
    socket.on('connect', () => {
      const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      if (mode === 'garbage') {
        socket.write('\x16\x03\x01\x02\x00 HELLO THIS IS NOT HTTP\r\n\r\n');
        return;
      }
      if (mode === 'slow-body') {
        socket.write(`POST /webhooks/clustr HTTP/1.1\r\nHost: ${target.host}\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n${head}\r\n{`);
        timer = setInterval(() => socket.writable && socket.write(' '), intervalMs);
      } else {
        socket.write(`POST /webhooks/clustr HTTP/1.1\r\nHost: ${target.host}\r\n${head}`);
        let n = 0;
        timer = setInterval(() => socket.writable && socket.write(`x-slow-${n++}: y\r\n`), intervalMs);
      }
    });
  });
}

/** Resident set size of a process in bytes (/proc/<pid>/status VmRSS), or undefined when unknown. */
export function rssBytes(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
