import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start brokers and daemons on free ports; two files at a time suit 2 cores.
    maxWorkers: 2,
  },
});
