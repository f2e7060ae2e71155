// The fault-injection suite's worker-thread leaks (fixtures in test/fixtures/planted-leaks/worker-*.ts):
// each must be caught by the run-time audit (the violation counter moves for the
// expected check) AND by auditSpans() on the exported spans, while the same
// scenario written correctly produces no violation at all.
import { randomBytes } from 'node:crypto';
import { context, ROOT_CONTEXT, trace, TraceFlags, type Context } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withRequestContext } from 'isotrace';
import { auditSpans, expectNoCrossRequestLeakage, setupTestTracing, type TestTracing } from 'isotrace/testing';
import { createWorkerPool, type WorkerPool } from 'isotrace/workers';
import { createLeakySubmitter, createSubmitter } from '../fixtures/planted-leaks/worker-foreign-snapshot.ts';
import { createRandom, testSeed } from '../helpers/random.ts';

const CACHED_CONTEXT_WORKER = new URL('../fixtures/planted-leaks/worker-cached-context.ts', import.meta.url);
const CORRECT_WORKER = new URL('../fixtures/planted-leaks/worker-correct.ts', import.meta.url);
const REQUESTS = 300;
const TENANTS = 20;
const CHECKS = ['context-owner', 'trace', 'baggage', 'shared-state'] as const;

type Submit = (task: { item: string }) => Promise<unknown>;

/**
 * `REQUESTS` concurrent requests over 20 tenants, in seeded random order with
 * random delays, each submitting one task; with `sampled` false, each under an
 * upstream parent that was not sampled.
 */
async function runConcurrentRequests(submit: () => Submit, seed: number, sampled = true): Promise<PromiseSettledResult<unknown>[]> {
  const random = createRandom(seed);
  const order = random.shuffle(Array.from({ length: REQUESTS }, (_, i) => i));
  return Promise.allSettled(
    order.map((i) =>
      context.with(sampled ? ROOT_CONTEXT : unsampledParent(), () =>
        withRequestContext({ tenantId: `tenant-${i % TENANTS}`, userId: `user-${i % (TENANTS * 2)}`, name: 'agent.turn' }, async () => {
          await new Promise((resolve) => setTimeout(resolve, random.int(0, 3)));
          return submit()({ item: `item-${i % 5}` });
        }),
      ),
    ),
  );
}

function unsampledParent(): Context {
  return trace.setSpanContext(ROOT_CONTEXT, { traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex'), traceFlags: TraceFlags.NONE, isRemote: true });
}

async function countsByCheck(kit: TestTracing): Promise<Record<string, number>> {
  const counts = await Promise.all(CHECKS.map((check) => kit.violationCount(check)));
  return Object.fromEntries(CHECKS.map((check, i) => [check, counts[i]!]));
}

describe('fault injection: planted worker-thread leaks', () => {
  let kit: TestTracing;
  let leakyPool: WorkerPool;
  let correctPool: WorkerPool;
  const seed = testSeed();

  beforeAll(async () => {
    kit = await setupTestTracing();
    leakyPool = createWorkerPool({ filename: CACHED_CONTEXT_WORKER, maxThreads: 2, minThreads: 2 });
    correctPool = createWorkerPool({ filename: CORRECT_WORKER, maxThreads: 2, minThreads: 2 });
    console.log(`workers-leaks seed: ${seed} (replay with ISOTRACE_TEST_SEED=${seed})`);
  });
  afterAll(async () => {
    await leakyPool?.close();
    await correctPool?.close();
    await kit?.shutdown();
  });

  const scenarios: Array<{ name: string; check: (typeof CHECKS)[number]; leaky: () => Submit; correct: () => Submit }> = [
    {
      name: "a worker that caches the first request's context in a module variable and reuses it",
      check: 'shared-state',
      leaky: () => (task) => leakyPool.run(task),
      correct: () => (task) => correctPool.run(task),
    },
    {
      name: "a queue helper that submits every task with the first request's context snapshot",
      check: 'context-owner',
      // One helper for the whole run, as a module-level queue would be.
      leaky: ((submit?: Submit) => () => (submit ??= createLeakySubmitter(correctPool)))(),
      correct: ((submit?: Submit) => () => (submit ??= createSubmitter(correctPool)))(),
    },
  ];

  for (const { name, check, leaky, correct } of scenarios) {
    describe(name, () => {
      it(`is caught at run time and in the exported spans (${check})`, async () => {
        kit.reset();
        const before = await countsByCheck(kit);
        const results = await runConcurrentRequests(leaky, seed);
        expect(results.filter((r) => r.status === 'rejected')).toEqual([]);

        const after = await countsByCheck(kit);
        expect(after[check]! - before[check]!, `run-time ${check} violations`).toBeGreaterThan(0);
        const report = auditSpans(kit.spans());
        expect(report.violationsByCheck[check], `auditSpans ${check} violations`).toBeGreaterThan(0);
        // Every run-time violation is on an exported span (worker spans included).
        expect(report.violationsByCheck[check]).toBe(after[check]! - before[check]!);
        expect(() => expectNoCrossRequestLeakage(kit.spans())).toThrow(new RegExp(check));
      });

      it('written correctly, the same scenario yields zero violations', async () => {
        kit.reset();
        const before = await countsByCheck(kit);
        const results = await runConcurrentRequests(correct, seed);
        expect(results.filter((r) => r.status === 'rejected')).toEqual([]);

        expect(await countsByCheck(kit)).toEqual(before);
        const report = expectNoCrossRequestLeakage(kit.spans());
        expect(report.requests).toBe(REQUESTS);
        expect(kit.spans().filter((span) => span.name === 'worker.task default')).toHaveLength(REQUESTS);
      });
    });
  }

  // A worker thread records no span of an unsampled request: its violations must still be counted, not lost with the span.
  it('a leak in requests whose trace is not sampled is still counted at run time (shared-state)', async () => {
    kit.reset();
    const before = await countsByCheck(kit);
    const results = await runConcurrentRequests(() => (task) => leakyPool.run(task), seed, false);
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);

    const after = await countsByCheck(kit);
    expect(after['shared-state']! - before['shared-state']!, 'run-time shared-state violations').toBeGreaterThan(0);
    // Counted without a span that shows it: the worker recorded none.
    expect(kit.spans().filter((span) => span.name.startsWith('worker.task'))).toEqual([]);
  });
});
