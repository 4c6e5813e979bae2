import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { dockerAvailable } from '@clustr-pipeline/devkit';

export type ClickHouseMode = 'embedded' | 'server' | 'container';

export interface TestClickHouse {
  mode: ClickHouseMode;
  /** Environment for the sink process: CLICKHOUSE_URL for a server; nothing extra for embedded. */
  sinkEnv: Record<string, string>;
  /** A client for assertions. Embedded mode: over the sink's HTTP interface (only while the sink runs). */
  client(): ClickHouseClient;
  stop(): Promise<void>;
}

/**
 * Picks the ClickHouse the cross-service suites assert against: `CLICKHOUSE_URL` → that server;
 * a Docker engine → a clickhouse-server container; otherwise the sink's embedded ClickHouse, read
 * through its ClickHouse HTTP interface. `TEST_CLICKHOUSE` forces a mode; unknown values throw.
 */
export async function startTestClickHouse(embeddedHttpPort: number, env: NodeJS.ProcessEnv = process.env): Promise<TestClickHouse> {
  const forced = env.TEST_CLICKHOUSE;
  if (forced !== undefined && !['embedded', 'server', 'container'].includes(forced)) {
    throw new Error(`TEST_CLICKHOUSE must be embedded, server or container (got "${forced}")`);
  }
  const mode: ClickHouseMode = (forced as ClickHouseMode | undefined) ?? (env.CLICKHOUSE_URL ? 'server' : dockerAvailable() ? 'container' : 'embedded');
  const clients: ClickHouseClient[] = [];
  const make = (url: string) => {
    const c = createClient({ url, request_timeout: 60_000 });
    clients.push(c);
    return c;
  };
  const closeClients = async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  };

  if (mode === 'embedded') {
    const url = `http://127.0.0.1:${embeddedHttpPort}`;
    return { mode, sinkEnv: {}, client: () => make(url), stop: closeClients };
  }
  let url: string;
  let stopContainer = async () => {};
  if (mode === 'server') {
    if (!env.CLICKHOUSE_URL) throw new Error('TEST_CLICKHOUSE=server needs CLICKHOUSE_URL');
    url = env.CLICKHOUSE_URL;
  } else {
    const { GenericContainer, Wait } = await import('testcontainers');
    const container = await new GenericContainer('clickhouse/clickhouse-server:24.8')
      .withEnvironment({ CLICKHOUSE_USER: 'test', CLICKHOUSE_PASSWORD: 'test', CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT: '1' })
      .withExposedPorts(8123)
      .withWaitStrategy(Wait.forHttp('/ping', 8123))
      .start();
    url = `http://test:test@${container.getHost()}:${container.getMappedPort(8123)}`;
    stopContainer = async () => void (await container.stop());
  }
  return {
    mode,
    sinkEnv: { CLICKHOUSE_URL: url },
    client: () => make(url),
    stop: async () => {
      await closeClients();
      await stopContainer();
    },
  };
}
