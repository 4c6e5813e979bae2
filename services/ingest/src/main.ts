import { ConfigError, loadConfig } from './config.js';
import { startIngest } from './app.js';

/** Entry point: the only module that touches process (env, signals, exit codes). */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }

  const ingest = await startIngest(config);
  const log = ingest.app.log;
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    // A stuck drain must not keep the pod alive forever; orchestrators SIGKILL anyway.
    setTimeout(() => {
      log.error('shutdown timed out, exiting');
      process.exit(1);
    }, 30_000).unref();
    ingest.close().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((error: unknown) => {
  console.error('clustr ingest failed to start:', error);
  process.exit(1);
});
