// Isolation across the worker-thread boundary: many concurrent requests share a
// small pool, and every task must see exactly the request that submitted it —
// context, request values, SharedState, expanded variables and trace.
import { trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getFromContext, getRequestContext, getSharedState, withRequestContext } from 'isotrace';
import { expectNoCrossRequestLeakage, setupTestTracing, type TestTracing } from 'isotrace/testing';
import { createWorkerPool, type WorkerPool } from 'isotrace/workers';
import type { Observed } from '../fixtures/workers/isolation-worker.ts';
import { createRandom, testSeed } from '../helpers/random.ts';

const WORKER = new URL('../fixtures/workers/isolation-worker.ts', import.meta.url);
const REQUESTS = 2_000;
const TENANTS = 20;
const USERS_PER_TENANT = 3;

interface Expected {
  requestId: string;
  tenantId: string;
  userId: string;
  marker: string;
}

/** What the task should have seen, given the request that submitted it. */
function expectedObservation(request: Expected): Omit<Observed, 'traceId'> {
  return {
    requestId: request.requestId,
    tenantId: request.tenantId,
    userId: request.userId,
    marker: request.marker,
    shared: { requestId: request.requestId, marker: request.marker },
    expanded: `${request.tenantId}|${request.userId}|${request.requestId}|${request.marker}`,
    leftover: undefined,
  };
}

function byId(spans: readonly ReadableSpan[]): Map<string, ReadableSpan> {
  return new Map(spans.map((span) => [span.spanContext().spanId, span]));
}

describe('worker threads: isolation under load', () => {
  let kit: TestTracing;
  let pool: WorkerPool;
  let singleThread: WorkerPool;
  const seed = testSeed();

  beforeAll(async () => {
    kit = await setupTestTracing();
    pool = createWorkerPool({ filename: WORKER, maxThreads: 2, minThreads: 2 });
    singleThread = createWorkerPool({ filename: WORKER, maxThreads: 1, minThreads: 1 });
    // Warm up: thread start-up (loading the worker file and OpenTelemetry) is not what the tests measure.
    await Promise.all([...Array.from({ length: 4 }, () => pool.run({}, { name: 'outside' })), singleThread.run({}, { name: 'outside' })]);
    kit.reset();
    console.log(`workers-isolation seed: ${seed} (replay with ISOTRACE_TEST_SEED=${seed})`);
  });
  afterAll(async () => {
    await pool?.close();
    await singleThread?.close();
    await kit?.shutdown();
  });

  it(`${REQUESTS} concurrent requests across ${TENANTS} tenants, 1–5 tasks each through a 2-thread pool, see only their own request`, async () => {
    kit.reset();
    const violationsBefore = await kit.violationCount();
    const random = createRandom(seed);
    const plans = Array.from({ length: REQUESTS }, (_, i) => ({
      tenantId: `tenant-${i % TENANTS}`,
      userId: `user-${i % TENANTS}-${random.int(0, USERS_PER_TENANT - 1)}`,
      marker: `marker-${i}`,
      delays: Array.from({ length: random.int(1, 5) }, () => random.int(0, 2)),
      startDelay: random.int(0, 3),
    }));

    const outcomes = await Promise.all(
      random.shuffle(plans).map((plan) =>
        withRequestContext({ tenantId: plan.tenantId, userId: plan.userId, values: { marker: plan.marker }, name: 'agent.turn' }, async (ctx) => {
          await new Promise((resolve) => setTimeout(resolve, plan.startDelay));
          await getSharedState().set(`request:${ctx.requestId}`, { requestId: ctx.requestId, marker: plan.marker });
          const expected: Expected = { requestId: ctx.requestId, tenantId: plan.tenantId, userId: plan.userId, marker: plan.marker };
          const seen = await Promise.all(plan.delays.map((delayMs) => pool.run<Observed>({ delayMs })));
          // The worker's updateRequestContext() changed its copy only.
          expect(getFromContext('leftover')).toBeUndefined();
          return { expected, traceId: ctx.traceId, seen };
        }),
      ),
    );

    const mismatches: string[] = [];
    let tasks = 0;
    for (const { expected, traceId, seen } of outcomes) {
      for (const observed of seen) {
        tasks++;
        const { traceId: observedTrace, ...rest } = observed;
        if (JSON.stringify(rest) !== JSON.stringify(expectedObservation(expected)) || observedTrace !== traceId) {
          mismatches.push(`request ${expected.requestId} (${expected.tenantId}/${expected.userId}) saw ${JSON.stringify(observed)}`);
        }
      }
    }
    const planned = plans.reduce((sum, plan) => sum + plan.delays.length, 0);
    expect(mismatches.slice(0, 10), `${mismatches.length} mismatches`).toEqual([]);
    expect(tasks).toBe(planned);

    const spans = kit.spans();
    const report = expectNoCrossRequestLeakage(spans);
    expect(report.requests).toBe(REQUESTS);
    expect(await kit.violationCount()).toBe(violationsBefore);

    // Worker spans arrived in the main thread's exporter, each under its caller's worker.run span.
    const index = byId(spans);
    const taskSpans = spans.filter((span) => span.name === 'worker.task default');
    expect(taskSpans).toHaveLength(planned);
    expect(spans.filter((span) => span.name === 'worker.check')).toHaveLength(planned);
    const misparented = taskSpans.filter((span) => {
      const parent = index.get(span.parentSpanContext?.spanId ?? '');
      return (
        parent?.name !== 'worker.run default' ||
        parent.spanContext().traceId !== span.spanContext().traceId ||
        parent.attributes['isotrace.request_id'] !== span.attributes['isotrace.request_id']
      );
    });
    expect(misparented.map((span) => span.spanContext().spanId)).toEqual([]);
  }, 600_000);

  it('1,000 concurrent SharedState increments split between the main thread and workers end at exactly 1,000', async () => {
    const identity = { tenantId: 'tenant-atomic', userId: 'user-atomic' };
    const key = `hits-${seed}`;
    const random = createRandom(seed + 1);
    const order = random.shuffle(Array.from({ length: 1_000 }, (_, i) => i));

    const stored = await Promise.all(
      order.map((i) =>
        withRequestContext(identity, () =>
          i % 2 === 0 ? getSharedState().update<number>(key, (n) => (n ?? 0) + 1) : pool.run<number>({ key }, { name: 'increment' }),
        ),
      ),
    );

    const final = await withRequestContext(identity, () => getSharedState().get<number>(key));
    expect(final).toBe(1_000);
    // Atomic: every increment stored a different value, 1 … 1,000.
    expect([...stored].sort((a, b) => a - b)).toEqual(Array.from({ length: 1_000 }, (_, i) => i + 1));
  }, 300_000);

  describe('nothing stays in the worker', () => {
    it('a single-thread pool with alternating tenants: each task sees only its own context', async () => {
      const runs = Array.from({ length: 40 }, (_, i) => ({ tenantId: i % 2 === 0 ? 'tenant-a' : 'tenant-b', userId: `user-${i % 4}`, marker: `alt-${i}` }));
      // Sequential (the thread certainly ran the previous tenant's task just before) and then all queued at once.
      const sequential: Array<{ expected: Expected; observed: Observed }> = [];
      for (const run of runs) sequential.push(await submitOne(singleThread, run));
      const queued = await Promise.all(runs.map((run) => submitOne(singleThread, run)));

      for (const { expected, observed } of [...sequential, ...queued]) {
        const { traceId: _traceId, ...rest } = observed;
        expect(rest).toEqual(expectedObservation(expected));
      }
      expect(singleThread.threads).toBe(1);
    });

    it('a task submitted outside any request runs without a request context', async () => {
      const seen = await singleThread.run<{ errorName: string; hasContext: boolean; traceId: string | undefined }>({}, { name: 'outside' });
      expect(seen).toEqual({ errorName: 'RequestContextMissingError', hasContext: false, traceId: expect.any(String) });
    });

    it('outside a request but inside an active span, the worker span joins the submitting trace', async () => {
      kit.reset();
      const tracer = trace.getTracer('workers-isolation-test');
      const { jobSpanId, jobTraceId, seen } = await tracer.startActiveSpan('nightly.job', async (span) => {
        try {
          const result = await singleThread.run<{ errorName: string; hasContext: boolean; traceId: string | undefined }>({}, { name: 'outside' });
          return { jobSpanId: span.spanContext().spanId, jobTraceId: span.spanContext().traceId, seen: result };
        } finally {
          span.end();
        }
      });

      expect(seen).toEqual({ errorName: 'RequestContextMissingError', hasContext: false, traceId: jobTraceId });
      const spans = kit.spans();
      const run = spans.find((span) => span.name === 'worker.run outside')!;
      const task = spans.find((span) => span.name === 'worker.task outside')!;
      expect(run.parentSpanContext?.spanId).toBe(jobSpanId);
      expect(task.parentSpanContext?.spanId).toBe(run.spanContext().spanId);
      expect(task.spanContext().traceId).toBe(jobTraceId);
      expect(task.attributes['isotrace.request_id']).toBeUndefined();
    });
  });
});

async function submitOne(pool: WorkerPool, run: { tenantId: string; userId: string; marker: string }): Promise<{ expected: Expected; observed: Observed }> {
  return withRequestContext({ tenantId: run.tenantId, userId: run.userId, values: { marker: run.marker } }, async (ctx) => {
    await getSharedState().set(`request:${ctx.requestId}`, { requestId: ctx.requestId, marker: run.marker });
    const observed = await pool.run<Observed>({});
    expect(getRequestContext().requestId).toBe(ctx.requestId);
    return { expected: { requestId: ctx.requestId, tenantId: run.tenantId, userId: run.userId, marker: run.marker }, observed };
  });
}
