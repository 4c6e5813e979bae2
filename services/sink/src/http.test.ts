import { describe, expect, it } from 'vitest';
import { startHttpServer } from './http.js';
import { SinkMetrics } from './metrics.js';

describe('metrics server', () => {
  it('serves /metrics and /healthz (200 or 503 with reasons)', async () => {
    const metrics = new SinkMetrics();
    metrics.rowsInserted.inc({ table: 'jobs' }, 3);
    let ok = true;
    const server = await startHttpServer({ host: '127.0.0.1', port: 0, registry: metrics.registry, health: () => (ok ? { ok, reasons: [] } : { ok, reasons: [{ code: 'SINK_ERR_CLICKHOUSE_UNAVAILABLE', message: 'down' }] }) });
    try {
      const m = await fetch(`${server.url}/metrics`);
      expect(m.status).toBe(200);
      expect(await m.text()).toContain('sink_rows_inserted_total{table="jobs"} 3');
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      ok = false;
      const h = await fetch(`${server.url}/healthz`);
      expect(h.status).toBe(503);
      expect(await h.json()).toMatchObject({ ok: false, reasons: [{ code: 'SINK_ERR_CLICKHOUSE_UNAVAILABLE' }] });
      expect((await fetch(`${server.url}/nope`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});
