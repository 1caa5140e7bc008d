import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests spawn the compiled CLI (test/helpers/cli.ts): dist/ is checked, and built when stale, once per run.
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start brokers and daemons on free ports and wait on them: three files at
    // a time keep 2 cores busy (two left a quarter of the CPU idle).
    maxWorkers: 3,
    // Test files share a worker's modules instead of importing tfjs, onnxruntime and src anew each
    // (a quarter of the suite's CPU). Each file still makes its own brokers, daemons and state
    // directories; no test may count on module state left fresh.
    isolate: false,
  },
});
