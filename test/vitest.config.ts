import { defineConfig } from 'vitest/config';

// Cross-service suites start real processes and brokers: run files one at a time, in forks.
export default defineConfig({
  test: {
    include: ['bench/**/*.test.ts', 'e2e/**/*.test.ts', 'reliability/**/*.test.ts', 'bad-input/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
  },
});
