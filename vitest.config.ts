import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // Draws the demo dataset the tests ingest and says whether ../shared is there (tests/helpers/fixtures.ts).
    globalSetup: ['tests/global-setup.ts'],
    // Ingests, real servers and a headless browser: generous per-test limits, no retries.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
