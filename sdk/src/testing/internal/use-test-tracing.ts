import type { TestHooks, TestTracing, UseTestTracingOptions } from '../types.js';
import { setupTestTracing } from './test-tracing.js';

/**
 * The test kit for one test file: setupTestTracing() before its tests,
 * reset() before each test (spans and run-time violations), shutdown() after
 * them. Call it at the top of the file (or of a describe block); the returned
 * kit is usable inside tests and hooks.
 *
 * Registers with vitest's hooks when running under vitest, without making
 * vitest a dependency of isotrace; elsewhere pass `hooks`, or rely on the
 * runner's global beforeAll/afterAll/beforeEach (jest). Throws TypeError
 * naming `hooks` when there are none.
 *
 * ```ts
 * const kit = useTestTracing();
 * it('keeps tenants apart', async () => {
 *   await Promise.all(tenants.map((tenantId) => withRequestContext({ tenantId, userId: 'u1' }, handler)));
 *   expectNoCrossRequestLeakage(kit.spans());
 * });
 * ```
 */
export function useTestTracing(options: UseTestTracingOptions = {}): TestTracing {
  const { hooks = runnerHooks(), ...setup } = options;
  if (!isHooks(hooks)) {
    throw new TypeError("useTestTracing({ hooks }): no test hooks found. Pass { hooks: { beforeAll, afterAll, beforeEach } } from your test runner, or call setupTestTracing() and kit.shutdown() yourself.");
  }
  let current: TestTracing | undefined;
  hooks.beforeAll(async () => {
    current = await setupTestTracing(setup);
  });
  hooks.afterAll(async () => {
    await current?.shutdown();
  });
  hooks.beforeEach(() => {
    current?.reset();
  });
  const kit = (): TestTracing => {
    if (!current) throw new Error('useTestTracing(): the kit is ready only inside tests and hooks, after its beforeAll has run.');
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

/**
 * vitest's hooks come from the namespace vitest itself puts on globalThis in
 * its workers (for in-source tests), so isotrace never imports vitest; else
 * the global hooks of runners that define them.
 */
function runnerHooks(): unknown {
  const scope = globalThis as { __vitest_index__?: unknown };
  return isHooks(scope.__vitest_index__) ? scope.__vitest_index__ : globalThis;
}

function isHooks(value: unknown): value is TestHooks {
  const hooks = value as Partial<TestHooks> | undefined;
  return typeof hooks?.beforeAll === 'function' && typeof hooks.afterAll === 'function' && typeof hooks.beforeEach === 'function';
}
