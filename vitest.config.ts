import { defineConfig } from 'vitest/config';
import { sourceModeConfig } from './test/helpers/source-mode.ts';

// Tests run isotrace from sdk/src/, so an edit is tested without a build: 'isotrace' and
// 'isotrace/...' resolve through package.json's `isotrace-source` condition, in vitest and in
// every Node process the tests start (worker threads, child processes, examples). Only the
// tests of the built package (test/e2e: `npm pack`, the bin) need `npm run build` first.
export default defineConfig({
  ...sourceModeConfig(),
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 180_000,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
