// useTestTracing(): the per-file kit (set-up, reset before each test, shutdown), with vitest's hooks
// found on its own (see isolate-false.test.ts) or the hooks given.
import { describe, it, expect } from 'vitest';
import { startTracing, withRequestContext } from 'isotrace';
import { useTestTracing, type TestHooks } from 'isotrace/testing';

/** Hooks that only record what was registered, to run them by hand. */
function recordingHooks(): TestHooks & { run(name: keyof TestHooks): Promise<void> } {
  const registered: Partial<Record<keyof TestHooks, () => unknown>> = {};
  return {
    beforeAll: (fn) => void (registered.beforeAll = fn),
    afterAll: (fn) => void (registered.afterAll = fn),
    beforeEach: (fn) => void (registered.beforeEach = fn),
    run: async (name) => {
      await registered[name]!();
    },
  };
}

describe('useTestTracing', () => {
  it('sets up in beforeAll, resets in beforeEach and shuts down in afterAll, with the hooks given', async () => {
    const hooks = recordingHooks();
    const kit = useTestTracing({ serviceName: 'hooked', hooks });
    expect(() => kit.spans()).toThrow(/only inside tests and hooks/);

    await hooks.run('beforeAll');
    await withRequestContext({ tenantId: 't1', userId: 'u1', name: 'first-test' }, () => undefined);
    expect(kit.spans().map((span) => span.name)).toEqual(['first-test']);
    expect(kit.tracing.serviceName).toBe('hooked');

    await hooks.run('beforeEach');
    expect(kit.spans()).toEqual([]);

    await hooks.run('afterAll');
    // Shut down: isotrace can start again.
    const tracing = await startTracing({ serviceName: 'after', exporter: 'none', instrumentHttp: false });
    await tracing.shutdown();
  });

  it('rejects hooks that are not hooks with a TypeError naming hooks', () => {
    expect(() => useTestTracing({ hooks: {} as TestHooks })).toThrow(TypeError);
    expect(() => useTestTracing({ hooks: { beforeAll: () => undefined } as unknown as TestHooks })).toThrow(/hooks/);
  });
});
