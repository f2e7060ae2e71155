// What a worker task sees and keeps: a snapshot of the submitting request,
// updates that stay in the worker, tool systems and spans that come back to the main thread.
import { trace } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getFromContext, getRequestContext, getSharedState, withRequestContext } from 'isotrace';
import { auditSpans, expectNoCrossRequestLeakage, setupTestTracing, type TestTracing } from 'isotrace/testing';
import { createWorkerPool, defineWorkerTask, type WorkerPool } from 'isotrace/workers';
import type { SeenInWorker } from '../../fixtures/workers/context-worker.ts';

const CONTEXT_WORKER = new URL('../../fixtures/workers/context-worker.ts', import.meta.url);
const TOOL_WORKER = new URL('../../fixtures/workers/tool-worker.ts', import.meta.url);

describe('defineWorkerTask', () => {
  let kit: TestTracing;
  let pool: WorkerPool;
  let tools: WorkerPool;

  beforeAll(async () => {
    kit = await setupTestTracing();
    pool = createWorkerPool({ filename: CONTEXT_WORKER, maxThreads: 1, minThreads: 1 });
    tools = createWorkerPool({ filename: TOOL_WORKER, maxThreads: 1, minThreads: 1 });
  });
  afterAll(async () => {
    await pool?.close();
    await tools?.close();
    await kit?.shutdown();
  });

  it('needs a function', () => {
    expect(() => defineWorkerTask(undefined as never)).toThrow(TypeError);
  });

  it("sees the submitting request's identity, values, variables and SharedState", async () => {
    const seen = await withRequestContext({ tenantId: 'acme', userId: 'ada', values: { marker: 'm-1' } }, async (ctx) => {
      await getSharedState().set('counter', 41);
      return { ctx: { requestId: ctx.requestId }, seen: await pool.run<SeenInWorker>({}) };
    });
    expect(seen.seen).toEqual({
      requestId: seen.ctx.requestId,
      tenantId: 'acme',
      userId: 'ada',
      marker: 'm-1',
      expanded: `acme/${seen.ctx.requestId}`,
      counter: 42,
    });
  });

  it("updateRequestContext in a worker changes only the worker's copy", async () => {
    await withRequestContext({ tenantId: 'acme', userId: 'ada', values: { marker: 'original' } }, async () => {
      // The worker task calls updateRequestContext({ marker: 'changed-in-worker' }) after reading it.
      const first = await pool.run<SeenInWorker>({ increment: false });
      expect(first.marker).toBe('original');
      expect(getFromContext('marker')).toBe('original');
      expect(getRequestContext().get('marker')).toBe('original');
      // A second task of the same request gets a fresh snapshot of the main thread's (unchanged) context.
      const second = await pool.run<SeenInWorker>({ increment: false });
      expect(second.marker).toBe('original');
    });
  });

  it("the worker's spans are exported by the main thread, under the caller's worker.run span", async () => {
    kit.reset();
    const callerSpanId = await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () =>
      trace.getTracer('test').startActiveSpan('caller', async (span) => {
        try {
          await pool.run({ increment: false });
          return span.spanContext().spanId;
        } finally {
          span.end();
        }
      }),
    );
    const spans = kit.spans();
    const run = spans.find((span) => span.name === 'worker.run default')!;
    const task = spans.find((span) => span.name === 'worker.task default')!;
    const step = spans.find((span) => span.name === 'worker.step')!;
    expect(run.parentSpanContext?.spanId).toBe(callerSpanId);
    expect(task.parentSpanContext?.spanId).toBe(run.spanContext().spanId);
    expect(step.parentSpanContext?.spanId).toBe(task.spanContext().spanId);
    expect(new Set([run, task, step].map((span) => span.spanContext().traceId)).size).toBe(1);
    expect(task.attributes['isotrace.tenant_id']).toBe('acme');
    expect(task.attributes['user.id']).toBe('ada');
    expect(task.resource.attributes['service.name']).toBe('isotrace-test');
    expectNoCrossRequestLeakage(spans);
  });

  it('tool systems work inside a worker: the execute_tool span is forwarded and passes the audits', async () => {
    kit.reset();
    const before = await kit.violationCount();
    const results = await Promise.all(
      ['acme', 'globex', 'initech'].map((tenantId) =>
        withRequestContext({ tenantId, userId: `${tenantId}-user` }, async (ctx) => {
          const result = await tools.run<{ tenantId: string; seen: number; registryId: string; digest: string }>({ text: `doc of ${tenantId}` });
          return { ctx: { requestId: ctx.requestId, tenantId }, result, sharedAfter: await getSharedState().get('digests') };
        }),
      ),
    );

    for (const { ctx, result, sharedAfter } of results) {
      expect(result.tenantId).toBe(ctx.tenantId);
      expect(result.registryId).toBe(`user_${ctx.tenantId}-user_${ctx.requestId}_1`);
      expect(result.digest).toMatch(/^[0-9a-f]{64}$/);
      // The tool's SharedState update reached the main thread's store.
      expect(sharedAfter).toBe(result.seen);
    }
    const toolSpans = kit.spans().filter((span) => span.name === 'execute_tool digest');
    expect(toolSpans).toHaveLength(3);
    for (const span of toolSpans) {
      expect(span.attributes['gen_ai.tool.call.id']).toBe('call-in-worker');
      expect(span.attributes['isotrace.audit.result']).toBe('pass');
      const parent = kit.spans().find((s) => s.spanContext().spanId === span.parentSpanContext?.spanId);
      expect(parent?.name).toBe('worker.task default');
    }
    const report = expectNoCrossRequestLeakage(kit.spans());
    expect(report.toolSpans).toBe(3);
    expect(auditSpans(kit.spans()).violations).toEqual([]);
    expect(await kit.violationCount()).toBe(before);
  });
});
