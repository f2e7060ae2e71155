// The four run-time isolation checks in the default `audit: 'record'` mode: each violation is
// recorded on the span (attribute, event, status) and counted, and the work still completes.
import { describe, expect, it } from 'vitest';
import { context, propagation, ROOT_CONTEXT, SpanStatusCode, trace, TraceFlags, type Context } from '@opentelemetry/api';
import { withRequestContext, type RequestContext } from 'isotrace';
import { createToolSystem, Tool, type ToolSystem } from 'isotrace/tools';
import { countsMoved, Echo, onlySpan, requestSpanOf, violationCounts, violationEvents, HandleReader } from '../tools/tool-test-helpers.ts';
import { useTestTracing } from 'isotrace/testing';

const kit = useTestTracing();

const FOREIGN_TRACE = 'f'.repeat(32);
const A = { tenantId: 'tenant-a', userId: 'user-a' };
const B = { tenantId: 'tenant-b', userId: 'user-b' };

/** A context whose active span is in an unrelated trace. */
function withForeignSpan(parent: Context): Context {
  return trace.setSpan(parent, trace.wrapSpanContext({ traceId: FOREIGN_TRACE, spanId: 'e'.repeat(16), traceFlags: TraceFlags.SAMPLED }));
}

/** Request A's tool system, made and returned from A (the leak: it outlives its request). */
function systemOfRequest(identity: { tenantId: string; userId: string }): Promise<{ system: ToolSystem; owner: RequestContext }> {
  return withRequestContext(identity, (owner) => ({ system: createToolSystem([Echo]), owner }));
}

/** Reads `this.context` / `this.sharedState` (the getters are audited against the instance's owner). */
class Introspect extends Tool<'context' | 'sharedState', string> {
  static override toolName = 'introspect';
  run(what: 'context' | 'sharedState'): string {
    return what === 'context' ? this.context.requestId : `${this.sharedState.scope.tenantId}`;
  }
}

function expectViolationSpan(span: ReturnType<typeof onlySpan>, check: string): void {
  expect(span.attributes['isotrace.audit.result']).toBe('violation');
  // The status message names the last check that failed on the span.
  expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: expect.stringMatching(/^isolation violation: /) });
  expect(violationEvents(span).map((event) => event.check)).toContain(check);
}

describe('context-owner: the tool system’s request is the active request', () => {
  it('a system of request A used inside request B (same tenant and user, nested) fails only context-owner, counted once per call', async () => {
    const before = await violationCounts(kit);
    const { owner, borrower, result } = await withRequestContext({ ...A, name: 'request-a' }, async (owner) => {
      const { dispatcher } = createToolSystem([Echo]);
      return withRequestContext({ ...A, name: 'request-b' }, async (borrower) => ({ owner, borrower, result: await dispatcher.execute('echo', 'still answered') }));
    });

    expect(result).toBe('still answered');
    expect(countsMoved(before, await violationCounts(kit))).toEqual({ 'context-owner': 1, trace: 0, baggage: 0, 'shared-state': 0 });
    const span = onlySpan(kit, 'execute_tool echo');
    expectViolationSpan(span, 'context-owner');
    const events = violationEvents(span);
    // Checked at tool start and end; the end does not count again what the start found.
    expect(events).toHaveLength(1);
    for (const event of events) {
      expect(event.check).toBe('context-owner');
      expect(event.expected).toContain(owner.requestId);
      expect(event.actual).toContain(borrower.requestId);
    }
  });

  it('a system of request A used by an unrelated request B of another tenant fails context-owner, trace and shared-state', async () => {
    const { system, owner } = await systemOfRequest(A);
    const before = await violationCounts(kit);
    const { borrower, result } = await withRequestContext(B, async (borrower) => ({ borrower, result: await system.dispatcher.execute('echo', 42) }));

    expect(result).toBe(42);
    expect(countsMoved(before, await violationCounts(kit))).toEqual({ 'context-owner': 1, trace: 1, baggage: 0, 'shared-state': 1 });
    const span = onlySpan(kit, 'execute_tool echo');
    expectViolationSpan(span, 'context-owner');
    expect(violationEvents(span)).toEqual(
      expect.arrayContaining([
        { check: 'trace', expected: owner.traceId, actual: borrower.traceId },
        { check: 'shared-state', expected: 'tenant-a/user-a', actual: 'tenant-b/user-b' },
      ]),
    );
  });

  it('this.context of a tool instance from request A, read in request B, records context-owner on the active span', async () => {
    const tool = await withRequestContext(A, () => createToolSystem([Introspect]).registry.get('introspect') as Introspect);
    const before = await violationCounts(kit);
    const requestId = await withRequestContext({ ...B, name: 'request-b' }, (ctx) => {
      tool.run('context');
      return ctx.requestId;
    });

    expect(countsMoved(before, await violationCounts(kit))).toEqual({ 'context-owner': 1, trace: 0, baggage: 0, 'shared-state': 0 });
    expectViolationSpan(requestSpanOf(kit, requestId), 'context-owner');
  });

  it('this.sharedState of a tool instance from request A, read in request B, records context-owner and gives B’s state', async () => {
    const tool = await withRequestContext(A, () => createToolSystem([Introspect]).registry.get('introspect') as Introspect);
    const before = await violationCounts(kit);
    const tenant = await withRequestContext(B, () => trace.getTracer('test').startActiveSpan('step', (step) => {
      try {
        return tool.run('sharedState');
      } finally {
        step.end();
      }
    }));

    expect(tenant).toBe('tenant-b');
    expect(countsMoved(before, await violationCounts(kit))).toEqual({ 'context-owner': 1, trace: 0, baggage: 0, 'shared-state': 0 });
    expectViolationSpan(onlySpan(kit, 'step'), 'context-owner');
  });
});

describe('trace: the active span is in the request’s trace', () => {
  it('executing under a span of another trace (request context kept) fails only trace', async () => {
    const before = await violationCounts(kit);
    const { owner, result } = await withRequestContext(A, async (owner) => {
      const { dispatcher } = createToolSystem([Echo]);
      return { owner, result: await context.with(withForeignSpan(context.active()), () => dispatcher.execute('echo', 'answered')) };
    });

    expect(result).toBe('answered');
    expect(countsMoved(before, await violationCounts(kit))).toEqual({ 'context-owner': 0, trace: 1, baggage: 0, 'shared-state': 0 });
    const span = onlySpan(kit, 'execute_tool echo');
    expect(span.spanContext().traceId).toBe(FOREIGN_TRACE);
    expectViolationSpan(span, 'trace');
    expect(violationEvents(span)).toEqual([{ check: 'trace', expected: owner.traceId, actual: FOREIGN_TRACE }]);
  });

  it('executing from ROOT_CONTEXT with a foreign span (no request at all) fails context-owner and trace', async () => {
    const before = await violationCounts(kit);
    await withRequestContext(A, async () => {
      const { dispatcher } = createToolSystem([Echo]);
      await context.with(withForeignSpan(ROOT_CONTEXT), () => dispatcher.execute('echo'));
    });

    expect(countsMoved(before, await violationCounts(kit))).toEqual({ 'context-owner': 1, trace: 1, baggage: 0, 'shared-state': 0 });
    const span = onlySpan(kit, 'execute_tool echo');
    expectViolationSpan(span, 'trace');
    expect(violationEvents(span).find((event) => event.check === 'context-owner')?.actual).toBe('(no request)');
  });
});

describe('baggage: baggage identity equals the active request', () => {
  it('executing with forged baggage (another tenant) fails only baggage, naming both identities', async () => {
    const before = await violationCounts(kit);
    const { correlationId, result } = await withRequestContext({ ...A, correlationId: 'corr-a' }, async (ctx) => {
      const { dispatcher } = createToolSystem([Echo]);
      const forged = propagation.getBaggage(context.active())!.setEntry('isotrace.tenant_id', { value: 'victim' });
      const result = await context.with(propagation.setBaggage(context.active(), forged), () => dispatcher.execute('echo', 'answered'));
      return { correlationId: ctx.correlationId, result };
    });

    expect(result).toBe('answered');
    expect(countsMoved(before, await violationCounts(kit))).toEqual({ 'context-owner': 0, trace: 0, baggage: 1, 'shared-state': 0 });
    const span = onlySpan(kit, 'execute_tool echo');
    expectViolationSpan(span, 'baggage');
    expect(violationEvents(span)[0]).toEqual({ check: 'baggage', expected: `tenant-a/user-a/${correlationId}`, actual: `victim/user-a/${correlationId}` });
  });

  it('compares baggage field by field: ids containing "/" cannot pass by joining to the same string', async () => {
    const before = await violationCounts(kit);
    await withRequestContext({ tenantId: 'a/b', userId: 'c', correlationId: 'corr' }, async () => {
      const { dispatcher } = createToolSystem([Echo]);
      // tenant "a" + user "b/c" joins to the same "a/b/c" as the request's tenant "a/b" + user "c".
      const shifted = propagation.getBaggage(context.active())!.setEntry('isotrace.tenant_id', { value: 'a' }).setEntry('isotrace.user_id', { value: 'b/c' });
      await context.with(propagation.setBaggage(context.active(), shifted), () => dispatcher.execute('echo', 'answered'));
    });
    expect(countsMoved(before, await violationCounts(kit))).toEqual({ 'context-owner': 0, trace: 0, baggage: 1, 'shared-state': 0 });
  });
});

describe('shared-state: a SharedState handle is used only by its own tenant and user', () => {
  it('a handle from request A used by a tool in request B records shared-state on the tool span; the read still completes', async () => {
    const handleOfA = await withRequestContext(A, async (ctx) => {
      await ctx.sharedState.set('plan', 'gold');
      return ctx.sharedState;
    });
    const before = await violationCounts(kit);
    const read = await withRequestContext(B, () => createToolSystem([HandleReader]).dispatcher.execute('handle-reader', { state: handleOfA, key: 'plan' }));

    expect(read).toBe('gold');
    expect(countsMoved(before, await violationCounts(kit))).toEqual({ 'context-owner': 0, trace: 0, baggage: 0, 'shared-state': 1 });
    const span = onlySpan(kit, 'execute_tool handle-reader');
    expectViolationSpan(span, 'shared-state');
    expect(violationEvents(span)).toEqual([{ check: 'shared-state', expected: 'tenant-a/user-a', actual: 'tenant-b/user-b' }]);
  });

  it('every access counts: get, set, update, delete and keys', async () => {
    const handleOfA = await withRequestContext(A, (ctx) => ctx.sharedState);
    const before = await kit.violationCount('shared-state');
    await withRequestContext(B, async () => {
      await handleOfA.set('k', 1);
      await handleOfA.get('k');
      await handleOfA.update<number>('k', (n) => (n ?? 0) + 1);
      await handleOfA.keys();
      await handleOfA.delete('k');
    });
    expect((await kit.violationCount('shared-state')) - before).toBe(5);
  });

  it('a handle used outside any request records shared-state with actual (no request) on the active span', async () => {
    const handleOfA = await withRequestContext(A, async (ctx) => {
      await ctx.sharedState.set('plan', 'silver');
      return ctx.sharedState;
    });
    const before = await violationCounts(kit);
    const read = await trace.getTracer('test').startActiveSpan('background job', async (job) => {
      try {
        return await handleOfA.get('plan');
      } finally {
        job.end();
      }
    });

    expect(read).toBe('silver');
    expect(countsMoved(before, await violationCounts(kit))).toEqual({ 'context-owner': 0, trace: 0, baggage: 0, 'shared-state': 1 });
    const span = onlySpan(kit, 'background job');
    expectViolationSpan(span, 'shared-state');
    expect(violationEvents(span)).toEqual([{ check: 'shared-state', expected: 'tenant-a/user-a', actual: '(no request)' }]);
  });

  it('a handle used by a later request of the same tenant and user is not a violation', async () => {
    const handleOfA = await withRequestContext(A, (ctx) => ctx.sharedState);
    const before = await kit.violationCount();
    await withRequestContext(A, () => handleOfA.set('k', 'fine'));
    expect(await kit.violationCount()).toBe(before);
  });
});

describe('correct use', () => {
  it('records nothing: audit result pass, no event, status unset, counters unchanged', async () => {
    const before = await kit.violationCount();
    await withRequestContext(A, async (ctx) => {
      await ctx.sharedState.set('k', 1);
      const { dispatcher } = createToolSystem([Echo, Introspect]);
      await Promise.all([dispatcher.execute('echo', 1), dispatcher.execute('introspect', 'context'), dispatcher.execute('introspect', 'sharedState')]);
    });
    expect(await kit.violationCount()).toBe(before);
    for (const span of kit.spans()) {
      expect(span.status.code).toBe(SpanStatusCode.UNSET);
      expect(violationEvents(span)).toEqual([]);
      if (span.name.startsWith('execute_tool')) expect(span.attributes['isotrace.audit.result']).toBe('pass');
    }
  });
});
