import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // Ingests, real servers and a headless browser: generous per-test limits, no retries.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
