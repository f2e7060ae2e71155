// Planted callback leaks (test/fixtures/planted-leaks/): a listener added by request A that runs
// inside request B uses every isotrace object correctly, so only the `callback-owner` check sees
// it. Each leak, under 200 concurrent requests over 20 tenants with random delays, must be caught
// at run time and by auditSpans()/expectNoCrossRequestLeakage(); each documented fix, and the
// correct patterns under many concurrent requests, must produce no violation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withRequestContext } from 'isotrace';
import { auditSpans, expectNoCrossRequestLeakage, setupTestTracing, type TestTracing } from 'isotrace/testing';
import { createRandom, testSeed } from '../helpers/random.ts';

type Handler = (item: string, random: () => number) => Promise<unknown>;
interface Fixture {
  handleRequest: Handler;
  handleRequestFixed?: Handler;
}

const TENANTS = 20;
const USERS_PER_TENANT = 3;

/** Runs `count` concurrent requests spread over tenants and users, in a seeded random order. */
async function runConcurrentRequests(handler: Handler, count: number, seed: number): Promise<PromiseSettledResult<unknown>[]> {
  const random = createRandom(seed);
  const order = random.shuffle(Array.from({ length: count }, (_, i) => i));
  return Promise.allSettled(
    order.map((i) =>
      withRequestContext({ tenantId: `tenant-${i % TENANTS}`, userId: `user-${i % (TENANTS * USERS_PER_TENANT)}`, name: 'agent.turn' }, () => handler(`item-${i % 7}`, random.next)),
    ),
  );
}

function rejected(results: PromiseSettledResult<unknown>[]): unknown[] {
  return results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
}

const PLANTED_CALLBACK_LEAKS = [
  { leak: 'a module-level EventEmitter emitted by another request', fixture: 'emitter-listener' },
  { leak: 'a shared AbortController aborted by another request', fixture: 'abort-signal-listener' },
  { leak: "a shared stream's data listener fed by another request", fixture: 'shared-stream' },
  { leak: 'a library-style background callback queue drained by another request', fixture: 'library-callback-queue' },
] as const;

const seed = testSeed();

describe('planted callback leaks: the callback-owner check', () => {
  let kit: TestTracing;

  beforeAll(async () => {
    kit = await setupTestTracing();
    console.log(`callback-leaks seed: ${seed} (replay with ISOTRACE_TEST_SEED=${seed})`);
  });
  afterAll(() => kit.shutdown());

  it('correct listener patterns in 2,000 concurrent requests across 20 tenants produce zero violations', async () => {
    kit.reset();
    const before = await kit.violationCount();
    const { handleRequest } = (await import('../fixtures/planted-leaks/callbacks-correct.ts')) as Fixture;
    const results = await runConcurrentRequests(handleRequest, 2_000, seed);

    expect(rejected(results)).toEqual([]);
    expect(await kit.violationCount()).toBe(before);
    expect(expectNoCrossRequestLeakage(kit.spans()).requests).toBe(2_000);
  });

  for (const { leak, fixture } of PLANTED_CALLBACK_LEAKS) {
    it(`catches ${leak} (callback-owner)`, async () => {
      kit.reset();
      const before = await kit.violationCount('callback-owner');
      const { handleRequest } = (await import(`../fixtures/planted-leaks/${fixture}.ts`)) as Fixture;
      expect(rejected(await runConcurrentRequests(handleRequest, 200, seed))).toEqual([]);

      // Caught at run time: the counter moved, and no other check saw anything (every isotrace object was used correctly).
      expect(await kit.violationCount('callback-owner'), 'run-time callback-owner violations').toBeGreaterThan(before);
      // Caught after the fact: the spans carry the events, naming where the listener was added.
      const report = auditSpans(kit.spans());
      expect(report.violationsByCheck['callback-owner'], 'auditSpans callback-owner violations').toBeGreaterThan(0);
      expect(Object.keys(report.violationsByCheck)).toEqual(['callback-owner']);
      const registeredAt = kit.spans().flatMap((span) => span.events).find((event) => event.attributes?.['isotrace.audit.check'] === 'callback-owner')?.attributes?.['isotrace.audit.registered_at'];
      expect(registeredAt).toContain(`${fixture}.ts`);
      expect(() => expectNoCrossRequestLeakage(kit.spans())).toThrow(/callback-owner/);
    });

    it(`the documented fix (bindToRequest) for ${leak} records nothing`, async () => {
      kit.reset();
      const before = await kit.violationCount();
      const { handleRequestFixed } = (await import(`../fixtures/planted-leaks/${fixture}.ts`)) as Fixture;
      expect(rejected(await runConcurrentRequests(handleRequestFixed!, 200, seed))).toEqual([]);
      expect(await kit.violationCount()).toBe(before);
      expectNoCrossRequestLeakage(kit.spans());
    });
  }
});

describe('without the check (auditCallbacks: false) the same leaks pass every other audit', () => {
  let kit: TestTracing;
  beforeAll(async () => {
    kit = await setupTestTracing({ auditCallbacks: false });
  });
  afterAll(() => kit.shutdown());

  it('the emitter leak moves no counter and expectNoCrossRequestLeakage passes: what callback-owner exists for', async () => {
    kit.reset();
    const before = await kit.violationCount();
    const { handleRequest } = (await import('../fixtures/planted-leaks/emitter-listener.ts')) as Fixture;
    await runConcurrentRequests(handleRequest, 200, seed);
    expect(await kit.violationCount()).toBe(before);
    expectNoCrossRequestLeakage(kit.spans());
  });
});
