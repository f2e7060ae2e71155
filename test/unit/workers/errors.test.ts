// How pool.run() fails: a task's own error, a dying thread, a value that cannot
// cross the thread boundary, and cancellation — each with a clear error and a span that says so.
import { SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withRequestContext } from 'isotrace';
import { expectNoCrossRequestLeakage, setupTestTracing, type TestTracing } from 'isotrace/testing';
import { createWorkerPool, WorkerTaskError, type WorkerPool } from 'isotrace/workers';
import { rejectionOf, startedFlag, waitForFlag } from './worker-test-helpers.ts';

const CONTEXT_WORKER = new URL('../../fixtures/workers/context-worker.ts', import.meta.url);
const CONTROL_WORKER = new URL('../../fixtures/workers/control-worker.ts', import.meta.url);

function spansNamed(kit: TestTracing, name: string): ReadableSpan[] {
  return kit.spans().filter((span) => span.name === name);
}

describe('pool.run errors', () => {
  let kit: TestTracing;
  let pool: WorkerPool;
  let control: WorkerPool;

  beforeAll(async () => {
    kit = await setupTestTracing();
    pool = createWorkerPool({ filename: CONTEXT_WORKER, maxThreads: 1, minThreads: 1 });
    control = createWorkerPool({ filename: CONTROL_WORKER, maxThreads: 2, minThreads: 2 });
    // Warm both threads of the control pool so the crash test starts with two running threads.
    await withRequestContext({ tenantId: 'warm-up', userId: 'u' }, () =>
      Promise.all([pool.run({ increment: false }), ...Array.from({ length: 2 }, () => control.run({ delayMs: 0 }, { name: 'slow' }))]),
    );
  });
  afterAll(async () => {
    await pool?.close();
    await control?.close();
    await kit?.shutdown();
  });

  it("rejects with the task's own error: name, message and a stack that points into the worker file", async () => {
    kit.reset();
    const error = await rejectionOf(withRequestContext({ tenantId: 't1', userId: 'u1' }, () => pool.run({ message: 'no such invoice' }, { name: 'fail' })));

    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('TaskFailure');
    expect(error.message).toBe('no such invoice');
    expect(error.stack).toContain('TaskFailure: no such invoice');
    expect(error.stack).toContain('context-worker.ts');
  });

  it('marks the worker.run and worker.task spans ERROR and records the exception', async () => {
    kit.reset();
    await rejectionOf(withRequestContext({ tenantId: 't1', userId: 'u1' }, () => pool.run({ message: 'quota exceeded' }, { name: 'fail' })));

    const [run] = spansNamed(kit, 'worker.run fail');
    const [task] = spansNamed(kit, 'worker.task fail');
    for (const span of [run!, task!]) {
      expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'quota exceeded' });
      expect(span.attributes['error.type']).toBe('TaskFailure');
      expect(span.events.some((event) => event.name === 'exception')).toBe(true);
    }
    expect(task!.parentSpanContext?.spanId).toBe(run!.spanContext().spanId);
    expectNoCrossRequestLeakage(kit.spans());
  });

  it("a crashing worker rejects with WorkerTaskError while another request's task on the other thread still succeeds", async () => {
    kit.reset();
    const flag = startedFlag();
    // The survivor marks the flag once it runs; the crasher waits for it, so the crash happens while the survivor is in flight.
    const survivor = withRequestContext({ tenantId: 'survivor', userId: 'u2' }, () => control.run<string>({ flag, delayMs: 200 }, { name: 'slow' }));
    const crashed = withRequestContext({ tenantId: 'crasher', userId: 'u1' }, () => control.run({ flag }, { name: 'crashWhenOtherRuns' }));
    const [crashOutcome, survivorOutcome] = await Promise.allSettled([crashed, survivor]);

    expect(crashOutcome.status).toBe('rejected');
    const error = (crashOutcome as PromiseRejectedResult).reason as Error;
    expect(error).toBeInstanceOf(WorkerTaskError);
    expect(error.name).toBe('WorkerTaskError');
    expect(error.message).toMatch(/crashWhenOtherRuns/);
    expect(error.message).toMatch(/exited with code: 7/);
    expect(survivorOutcome).toEqual({ status: 'fulfilled', value: 'survivor' });

    const [run] = spansNamed(kit, 'worker.run crashWhenOtherRuns');
    expect(run!.status.code).toBe(SpanStatusCode.ERROR);
    expect(run!.attributes['error.type']).toBe('WorkerTaskError');

    // The pool replaces the dead thread: later tasks of other requests run.
    const tenants = await Promise.all(['a', 'b', 'c', 'd'].map((tenantId) => withRequestContext({ tenantId, userId: 'u' }, () => control.run<string>({}, { name: 'tenant' }))));
    expect(tenants).toEqual(['a', 'b', 'c', 'd']);
  });

  it('destroying a pool rejects its in-flight tasks with WorkerTaskError', async () => {
    const doomed = createWorkerPool({ filename: CONTROL_WORKER, maxThreads: 1, minThreads: 1 });
    const flag = startedFlag();
    const inFlight = withRequestContext({ tenantId: 't1', userId: 'u1' }, () => doomed.run({ flag, delayMs: 30_000 }, { name: 'slow' }));
    const outcome = rejectionOf(inFlight); // handled before destroy() rejects it
    await waitForFlag(flag);
    await doomed.destroy();
    const error = await outcome;
    expect(error).toBeInstanceOf(WorkerTaskError);
    expect(error.message).toMatch(/Terminating worker thread/);
  });

  it('an unserializable request-context value is a TypeError at submission naming the key, and the pool stays usable', async () => {
    kit.reset();
    const error = await rejectionOf(withRequestContext({ tenantId: 't1', userId: 'u1', values: { plan: 'pro', callback: () => 1 } }, () => pool.run({ increment: false })));

    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/request-context value 'callback'/);
    expect(error.message).toMatch(/cannot be sent to a worker thread/);
    expect(spansNamed(kit, 'worker.task default')).toHaveLength(0);
    expect(spansNamed(kit, 'worker.run default')[0]!.status.code).toBe(SpanStatusCode.ERROR);

    const seen = await withRequestContext({ tenantId: 't1', userId: 'u1', values: { marker: 'still-works' } }, () => pool.run<{ marker: unknown }>({ increment: false }));
    expect(seen.marker).toBe('still-works');
  });

  it("a result that cannot be sent back is a TypeError naming where it fails; the task's spans arrive and its thread lives on", async () => {
    kit.reset();
    const single = createWorkerPool({ filename: CONTROL_WORKER, maxThreads: 1, minThreads: 1 });
    try {
      const before = await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => single.run<number>(undefined, { name: 'thread' }));
      const error = await rejectionOf(withRequestContext({ tenantId: 't1', userId: 'u1' }, () => single.run(undefined, { name: 'unsendable' })));

      expect(error).not.toBeInstanceOf(WorkerTaskError);
      expect(error.name).toBe('TypeError');
      expect(error.message).toMatch(/task 'unsendable' returned a value that cannot be sent back to the submitting thread: result\.nested\.onDone cannot be cloned/);
      expect(spansNamed(kit, 'before-return')).toHaveLength(1);
      expect(spansNamed(kit, 'worker.task unsendable')[0]!.status.code).toBe(SpanStatusCode.ERROR);
      expect(await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => single.run<number>(undefined, { name: 'thread' }))).toBe(before);

      // A result that is itself what cannot be cloned: named as the result.
      const bare = await rejectionOf(withRequestContext({ tenantId: 't1', userId: 'u1' }, () => single.run({ symbol: true }, { name: 'unsendable' })));
      expect(bare.message).toMatch(/cannot be sent back to the submitting thread: result cannot be cloned/);
      expect(await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => single.run<number>(undefined, { name: 'thread' }))).toBe(before);
    } finally {
      await single.close();
    }
  });

  it('a thrown value that is not an Error comes back as an error carrying its text', async () => {
    kit.reset();
    const error = await rejectionOf(withRequestContext({ tenantId: 't1', userId: 'u1' }, () => control.run(undefined, { name: 'throwsOddly' })));
    expect(error).not.toBeInstanceOf(WorkerTaskError);
    expect(error.message).toBe('[object Object]');
    expect(spansNamed(kit, 'worker.task throwsOddly')[0]!.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('an Error whose message and code hold functions comes back as text, not as a dead thread', async () => {
    kit.reset();
    const error = await rejectionOf(withRequestContext({ tenantId: 't1', userId: 'u1' }, () => control.run(undefined, { name: 'throwsUnsendable' })));
    expect(error).not.toBeInstanceOf(WorkerTaskError);
    expect(error.message).toBe('quota object');
    expect((error as { code?: unknown }).code).toBeUndefined();
    expect(spansNamed(kit, 'worker.task throwsUnsendable')[0]!.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('an unserializable task is a TypeError that blames the task', async () => {
    const error = await rejectionOf(withRequestContext({ tenantId: 't1', userId: 'u1' }, () => pool.run({ increment: false, onDone: () => 1 })));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(/the task cannot be sent/);
  });

  describe('AbortSignal', () => {
    it('an already aborted signal rejects with AbortError and runs nothing', async () => {
      kit.reset();
      const error = await rejectionOf(withRequestContext({ tenantId: 't1', userId: 'u1' }, () => control.run({ delayMs: 0 }, { name: 'slow', signal: AbortSignal.abort() })));
      expect(error.name).toBe('AbortError');
      expect(spansNamed(kit, 'worker.task slow')).toHaveLength(0);
      expect(spansNamed(kit, 'worker.run slow')[0]!.status.code).toBe(SpanStatusCode.ERROR);
    });

    it('aborting a running task rejects with AbortError; other requests keep running', async () => {
      const flag = startedFlag();
      const controller = new AbortController();
      const cancelled = withRequestContext({ tenantId: 'cancelled', userId: 'u1' }, () =>
        control.run({ flag, delayMs: 30_000 }, { name: 'slow', signal: controller.signal }),
      );
      // Abort once the task is running in its thread (not merely queued).
      await waitForFlag(flag);
      controller.abort();
      const error = await rejectionOf(cancelled);
      expect(error.name).toBe('AbortError');

      const tenant = await withRequestContext({ tenantId: 'after-abort', userId: 'u1' }, () => control.run<string>({}, { name: 'tenant' }));
      expect(tenant).toBe('after-abort');
    });
  });
});
