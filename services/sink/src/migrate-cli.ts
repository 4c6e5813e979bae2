/**
 * `npm run migrate -w services/sink`: applies the ClickHouse migrations and exits.
 * Reads CLICKHOUSE_URL (unset: embedded chDB at CLICKHOUSE_EMBEDDED_PATH), CLICKHOUSE_DATABASE.
 */
import pino from 'pino';
import { z } from 'zod';
import { openClickHouse } from './clickhouse.js';
import { migrate } from './migrate.js';

const envSchema = z.object({
  CLICKHOUSE_URL: z.url().optional().or(z.literal('').transform(() => undefined)),
  CLICKHOUSE_DATABASE: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).default('clustr'),
  CLICKHOUSE_EMBEDDED_PATH: z.string().min(1).default('.data/clickhouse'),
});

async function main(): Promise<void> {
  const logger = pino({ name: 'sink-migrate' });
  // eslint-disable-next-line no-restricted-properties -- a standalone entry point with its own tiny config
  const parsed = envSchema.safeParse(process.env);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) logger.error(`${issue.path.join('.')}: ${issue.message}`);
    process.exitCode = 2;
    return;
  }
  const env = parsed.data;
  const handle = await openClickHouse(
    {
      ...(env.CLICKHOUSE_URL ? { url: env.CLICKHOUSE_URL } : {}),
      database: env.CLICKHOUSE_DATABASE,
      embeddedPath: env.CLICKHOUSE_EMBEDDED_PATH,
      httpPort: null,
    },
    logger,
  );
  try {
    const result = await migrate(handle.client, handle.database, logger);
    logger.info({ mode: handle.mode, database: handle.database, ...result }, 'migrations done');
  } finally {
    await handle.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
