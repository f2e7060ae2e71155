// The fault-injection suite: the isolation bugs of the Python designs, planted in
// test/fixtures/planted-leaks/, must each be caught by the run-time audit AND by
// auditSpans() on the exported spans, while correct code produces no violation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withRequestContext } from 'isotrace';
import { auditSpans, expectNoCrossRequestLeakage, setupTestTracing, type TestTracing } from 'isotrace/testing';
import { createRandom, testSeed } from '../helpers/random.ts';

type Handler = (item: string, random: () => number) => Promise<unknown>;

const TENANTS = 20;
const USERS_PER_TENANT = 3;

/** Runs `count` concurrent requests spread over tenants and users, in a seeded random order. */
async function runConcurrentRequests(handler: Handler, count: number, seed: number): Promise<PromiseSettledResult<unknown>[]> {
  const random = createRandom(seed);
  const order = random.shuffle(Array.from({ length: count }, (_, i) => i));
  return Promise.allSettled(
    order.map((i) =>
      withRequestContext({ tenantId: `tenant-${i % TENANTS}`, userId: `user-${i % (TENANTS * USERS_PER_TENANT)}`, name: 'agent.turn' }, () =>
        handler(`item-${i % 7}`, random.next),
      ),
    ),
  );
}

const PLANTED_LEAKS = [
  { leak: 'a global (module-level) tool registry reused across requests', fixture: 'global-registry', checks: ['context-owner', 'trace'] },
  { leak: 'shared state assigned on the class', fixture: 'class-shared-state', checks: ['shared-state'] },
  { leak: 'a module-level "current request" variable (the threading.local mistake)', fixture: 'current-request-variable', checks: ['context-owner'] },
  { leak: 'a callback queue drained in whichever request is active', fixture: 'busy-callback-queue', checks: ['context-owner', 'trace'] },
  { leak: 'a tool instance captured by request A and invoked by request B', fixture: 'captured-tool-instance', checks: ['context-owner'] },
] as const;

describe('fault injection: planted isolation leaks', () => {
  let kit: TestTracing;
  const seed = testSeed();

  beforeAll(async () => {
    kit = await setupTestTracing();
    console.log(`fault-injection seed: ${seed} (replay with ISOTRACE_TEST_SEED=${seed})`);
  });
  afterAll(() => kit.shutdown());

  it('10,000 correct concurrent tool calls across 20 tenants produce zero violations', async () => {
    kit.reset();
    const before = await kit.violationCount();
    const { handleRequest } = (await import('../fixtures/planted-leaks/correct.ts')) as { handleRequest: Handler };
    const results = await runConcurrentRequests(handleRequest, 10_000, seed);

    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(await kit.violationCount()).toBe(before);
    const report = expectNoCrossRequestLeakage(kit.spans());
    expect(report.requests).toBe(10_000);
    expect(report.toolSpans).toBe(10_000);
  });

  for (const { leak, fixture, checks } of PLANTED_LEAKS) {
    it(`catches ${leak} (${checks.join(', ')})`, async () => {
      kit.reset();
      const before = await Promise.all(checks.map((check) => kit.violationCount(check)));
      const { handleRequest } = (await import(`../fixtures/planted-leaks/${fixture}.ts`)) as { handleRequest: Handler };
      await runConcurrentRequests(handleRequest, 200, seed);

      // Caught at run time: the violation counter moved for each expected check.
      for (const [i, check] of checks.entries()) {
        expect(await kit.violationCount(check), `run-time ${check} violations`).toBeGreaterThan(before[i]!);
      }
      // Caught after the fact: the exported spans carry the violations, and the test-kit assertion fails naming them.
      const report = auditSpans(kit.spans());
      for (const check of checks) expect(report.violationsByCheck[check], `auditSpans ${check} violations`).toBeGreaterThan(0);
      expect(() => expectNoCrossRequestLeakage(kit.spans())).toThrow(new RegExp(checks[0]));
    });
  }
});
