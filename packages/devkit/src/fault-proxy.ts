import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * A TCP proxy that injects faults between a client and a server (development and tests only),
 * switchable at run time:
 * - `pass`: bytes flow both ways unchanged;
 * - `refuse`: every connection is accepted and closed at once (the client sees a reset / hang-up);
 * - `http500`: every HTTP request is answered 500 with a ClickHouse-style error body
 *   (`Code: 999. DB::Exception: injected`), never reaching the target;
 * - `blackhole`: connections are accepted and never answered (a hung server; clients time out).
 *
 * Switching modes closes every open connection, so a keep-alive connection opened in one mode is
 * never served in another.
 */
export type FaultMode = 'pass' | 'refuse' | 'http500' | 'blackhole';

export interface FaultProxyOptions {
  /** `host:port` or `http://host:port` of the real server. */
  target: string;
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 = any free port. @default 0 */
  port?: number;
  /** @default 'pass' */
  mode?: FaultMode;
  /** Body of the `http500` answers. @default 'Code: 999. DB::Exception: injected' */
  errorBody?: string;
}

export interface FaultProxyStats {
  /** Connections accepted, in any mode. */
  connections: number;
  /** Connections forwarded to the target. */
  passed: number;
  /** Connections closed by `refuse`. */
  refused: number;
  /** Requests answered 500 by `http500`. */
  http500: number;
  /** Connections swallowed by `blackhole`. */
  blackholed: number;
}

export interface FaultProxy {
  /** `http://host:port` of the proxy. */
  readonly url: string;
  readonly port: number;
  readonly mode: FaultMode;
  /** Switches mode and closes every open connection. */
  setMode(mode: FaultMode): void;
  /** Counters since start (a copy). */
  stats(): FaultProxyStats;
  /** Faults injected so far: refused connections + 500 answers + blackholed connections. */
  faults(): number;
  close(): Promise<void>;
}

function parseTarget(target: string): { host: string; port: number } {
  const url = new URL(/^[a-z]+:\/\//i.test(target) ? target : `tcp://${target}`);
  const port = Number(url.port);
  if (!url.hostname || !Number.isInteger(port) || port <= 0) throw new Error(`fault proxy: bad target ${JSON.stringify(target)}`);
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port };
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = parseTarget(options.target);
  const host = options.host ?? '127.0.0.1';
  const errorBody = options.errorBody ?? 'Code: 999. DB::Exception: injected';
  let mode: FaultMode = options.mode ?? 'pass';
  const stats: FaultProxyStats = { connections: 0, passed: 0, refused: 0, http500: 0, blackholed: 0 };
  const open = new Set<Socket>();

  // Parses requests on http500-mode connections (never listens itself).
  const errorServer = createHttpServer((req, res) => {
    req.resume();
    req.once('end', () => {
      stats.http500++;
      const body = `${errorBody}\n`;
      res.writeHead(500, {
        'Content-Type': 'text/plain; charset=UTF-8',
        'Content-Length': String(Buffer.byteLength(body)),
        'X-ClickHouse-Exception-Code': '999',
      });
      res.end(body);
    });
  });

  const track = (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    socket.on('error', () => socket.destroy());
  };

  const server = createServer((client) => {
    stats.connections++;
    track(client);
    switch (mode) {
      case 'refuse':
        stats.refused++;
        client.resetAndDestroy();
        return;
      case 'blackhole':
        stats.blackholed++;
        client.resume();
        return;
      case 'http500':
        errorServer.emit('connection', client);
        return;
      case 'pass': {
        stats.passed++;
        const upstream = connect(target.port, target.host);
        track(upstream);
        client.pipe(upstream);
        upstream.pipe(client);
        const closeBoth = () => {
          client.destroy();
          upstream.destroy();
        };
        client.once('close', closeBoth);
        upstream.once('close', closeBoth);
        return;
      }
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const closeAll = () => {
    for (const socket of [...open]) socket.destroy();
  };

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    get mode() {
      return mode;
    },
    setMode(next: FaultMode) {
      mode = next;
      closeAll();
    },
    stats: () => ({ ...stats }),
    faults: () => stats.refused + stats.http500 + stats.blackholed,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        closeAll();
      });
      return closing;
    },
  };
}
