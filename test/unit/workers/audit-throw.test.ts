// audit: 'throw' reaches worker threads: a planted leak inside the worker throws
// IsolationViolationError there, and the caller's pool.run() rejects with it.
import { context } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withRequestContext } from 'isotrace';
import { setupTestTracing, type TestTracing } from 'isotrace/testing';
import { createWorkerPool, type WorkerPool } from 'isotrace/workers';
import { rejectionOf } from './worker-test-helpers.ts';

const CACHED_CONTEXT_WORKER = new URL('../../fixtures/planted-leaks/worker-cached-context.ts', import.meta.url);

describe("audit: 'throw' across the worker boundary", () => {
  let kit: TestTracing;
  let pool: WorkerPool;

  beforeAll(async () => {
    kit = await setupTestTracing({ audit: 'throw' });
    // One thread: the first task caches its request's context, every later task reuses it.
    pool = createWorkerPool({ filename: CACHED_CONTEXT_WORKER, maxThreads: 1, minThreads: 1 });
  });
  afterAll(async () => {
    await pool?.close();
    await kit?.shutdown();
  });

  it("a worker reusing another request's SharedState throws IsolationViolationError in the worker; pool.run rejects with it", async () => {
    await withRequestContext({ tenantId: 'first', userId: 'u1' }, () => pool.run({ item: 'x' }));
    kit.reset();
    const before = await kit.violationCount('shared-state');

    const error = await rejectionOf(withRequestContext({ tenantId: 'second', userId: 'u2' }, () => pool.run({ item: 'x' })));

    expect(error.name).toBe('IsolationViolationError');
    expect(error.message).toMatch(/shared-state/);
    // The other request's tenant/user go on the span, never into the message (frameworks send messages to clients).
    expect(error.message).not.toMatch(/first\/u1/);
    expect(await kit.violationCount('shared-state')).toBe(before + 1);
    const task = kit.spans().find((span) => span.name === 'worker.task default')!;
    expect(task.attributes['isotrace.audit.result']).toBe('violation');
    expect(task.events.find((event) => event.name === 'isotrace.isolation_violation')?.attributes?.['isotrace.audit.expected']).toBe('first/u1');
    expect(task.attributes['isotrace.tenant_id']).toBe('second');
  });

  it("submitting another request's context throws before anything reaches the worker", async () => {
    const foreign = await withRequestContext({ tenantId: 'first', userId: 'u1' }, async () => context.active());
    kit.reset();
    const error = await rejectionOf(withRequestContext({ tenantId: 'second', userId: 'u2' }, () => pool.run({ item: 'y' }, { context: foreign })));

    expect(error.name).toBe('IsolationViolationError');
    expect(error.message).toMatch(/context-owner/);
    expect(kit.spans().filter((span) => span.name === 'worker.task default')).toHaveLength(0);
  });
});
