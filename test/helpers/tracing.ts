/** isotrace's test kit for one test file: started before its tests, emptied before each, stopped after. */
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { setupTestTracing, type TestTracing } from 'isotrace/testing';

/** setupTestTracing(options) around this file's tests; the returned kit is usable inside tests and hooks. */
export function useTestTracing(options: Parameters<typeof setupTestTracing>[0] = {}): TestTracing {
  let current: TestTracing | undefined;
  beforeAll(async () => {
    current = await setupTestTracing(options);
  });
  afterAll(async () => {
    await current?.shutdown();
  });
  beforeEach(() => {
    current?.reset();
  });
  const kit = (): TestTracing => {
    if (!current) throw new Error('useTestTracing(): the kit is ready only inside tests and hooks');
    return current;
  };
  return {
    get tracing() {
      return kit().tracing;
    },
    spans: () => kit().spans(),
    reset: () => kit().reset(),
    violationCount: (check) => kit().violationCount(check),
    shutdown: () => kit().shutdown(),
  };
}
