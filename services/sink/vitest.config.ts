import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    // NOTE: 'forks' on purpose: chDB binds one data directory per process, so every test file
    // that opens embedded ClickHouse needs its own process (and uses its own temp directory).
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
