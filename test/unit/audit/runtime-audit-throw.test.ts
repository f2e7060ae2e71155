// The run-time checks with `audit: 'throw'`: the first failed check throws IsolationViolationError
// (check, expected, actual), after recording it on the span and counting it.
import { beforeEach, describe, expect, it } from 'vitest';
import { context, propagation, SpanStatusCode, trace, TraceFlags } from '@opentelemetry/api';
import { IsolationViolationError, withRequestContext } from 'isotrace';
import { createToolSystem, Tool } from 'isotrace/tools';
import { countsMoved, onlySpan, violationCounts, violationEvents, HandleReader } from '../tools/tool-test-helpers.ts';
import { useTestTracing } from 'isotrace/testing';

const kit = useTestTracing({ audit: 'throw' });

beforeEach(() => {
  kit.reset();
  Counted.runs = 0;
});

const A = { tenantId: 'tenant-a', userId: 'user-a' };
const B = { tenantId: 'tenant-b', userId: 'user-b' };

/** Counts its runs, so a test can tell whether the dispatcher let it start. */
class Counted extends Tool<unknown, string> {
  static override toolName = 'counted';
  static runs = 0;
  run(): string {
    Counted.runs++;
    return 'ran';
  }
}

class ContextReader extends Tool<void, string> {
  static override toolName = 'context-reader';
  run(): string {
    return this.context.requestId;
  }
}

/** The rejection of `work`, which must be an IsolationViolationError. */
async function violationOf(work: Promise<unknown>): Promise<IsolationViolationError> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(IsolationViolationError);
  return error as IsolationViolationError;
}

/** The tool span a thrown violation leaves: the violation recorded, then the error recorded. */
function expectThrownOnSpan(name: string, error: IsolationViolationError): void {
  const span = onlySpan(kit, name);
  expect(span.attributes['isotrace.audit.result']).toBe('violation');
  expect(span.attributes['error.type']).toBe('IsolationViolationError');
  expect(span.status.code).toBe(SpanStatusCode.ERROR);
  expect(violationEvents(span)).toEqual([{ check: error.check, expected: error.expected, actual: error.actual }]);
}

describe("audit: 'throw'", () => {
  it('correct use does not throw', async () => {
    const before = await kit.violationCount();
    expect(await withRequestContext(A, () => createToolSystem([Counted, ContextReader]).dispatcher.execute('counted'))).toBe('ran');
    expect(await kit.violationCount()).toBe(before);
  });

  it('context-owner: a system of request A executed in request B rejects before the tool runs', async () => {
    const { system, ownerId } = await withRequestContext(A, (ctx) => ({ system: createToolSystem([Counted]), ownerId: ctx.requestId }));
    const before = await violationCounts(kit);
    const { error, borrowerId } = await withRequestContext(B, async (ctx) => ({ error: await violationOf(system.dispatcher.execute('counted')), borrowerId: ctx.requestId }));

    expect(error.check).toBe('context-owner');
    expect(error.expected).toContain(ownerId);
    expect(error.actual).toContain(borrowerId);
    expect(error.message).toMatch(/Isolation violation \(context-owner\)/);
    expect(Counted.runs).toBe(0);
    // The first failed check throws: the others are neither recorded nor counted.
    expect(countsMoved(before, await violationCounts(kit))).toEqual({ 'context-owner': 1, trace: 0, baggage: 0, 'shared-state': 0 });
    expectThrownOnSpan('execute_tool counted', error);
  });

  it('trace: executing under a span of another trace rejects before the tool runs', async () => {
    const foreign = trace.wrapSpanContext({ traceId: 'f'.repeat(32), spanId: 'e'.repeat(16), traceFlags: TraceFlags.SAMPLED });
    const before = await violationCounts(kit);
    const { error, traceId } = await withRequestContext(A, async (ctx) => {
      const { dispatcher } = createToolSystem([Counted]);
      return { error: await violationOf(context.with(trace.setSpan(context.active(), foreign), () => dispatcher.execute('counted'))), traceId: ctx.traceId };
    });

    expect(error).toMatchObject({ check: 'trace', expected: traceId, actual: 'f'.repeat(32) });
    expect(Counted.runs).toBe(0);
    expect(countsMoved(before, await violationCounts(kit))).toEqual({ 'context-owner': 0, trace: 1, baggage: 0, 'shared-state': 0 });
    expectThrownOnSpan('execute_tool counted', error);
  });

  it('baggage: executing with forged baggage rejects before the tool runs', async () => {
    const before = await violationCounts(kit);
    const error = await withRequestContext({ ...A, correlationId: 'corr-a' }, () => {
      const { dispatcher } = createToolSystem([Counted]);
      const forged = propagation.getBaggage(context.active())!.setEntry('isotrace.tenant_id', { value: 'victim' });
      return violationOf(context.with(propagation.setBaggage(context.active(), forged), () => dispatcher.execute('counted')));
    });

    expect(error).toMatchObject({ check: 'baggage', expected: 'tenant-a/user-a/corr-a', actual: 'victim/user-a/corr-a' });
    expect(Counted.runs).toBe(0);
    expect(countsMoved(before, await violationCounts(kit))).toEqual({ 'context-owner': 0, trace: 0, baggage: 1, 'shared-state': 0 });
    expectThrownOnSpan('execute_tool counted', error);
  });

  it('shared-state: a handle of request A read by a tool in request B rejects the call, and the caller gets that error', async () => {
    const handleOfA = await withRequestContext(A, async (ctx) => {
      await ctx.sharedState.set('plan', 'gold');
      return ctx.sharedState;
    });
    const before = await violationCounts(kit);
    const error = await withRequestContext(B, () => violationOf(createToolSystem([HandleReader]).dispatcher.execute('handle-reader', { state: handleOfA, key: 'plan' })));

    expect(error).toMatchObject({ check: 'shared-state', expected: 'tenant-a/user-a', actual: 'tenant-b/user-b' });
    expect(countsMoved(before, await violationCounts(kit))).toEqual({ 'context-owner': 0, trace: 0, baggage: 0, 'shared-state': 1 });
    expectThrownOnSpan('execute_tool handle-reader', error);
  });

  it("the thrown message names only the check: the other request's ids are in the fields and on the span, never in the message", async () => {
    const handleOfA = await withRequestContext({ ...A, requestId: 'req-a-5d1e' }, async (ctx) => {
      await ctx.sharedState.set('plan', 'gold');
      return ctx.sharedState;
    });
    const { system } = await withRequestContext({ ...A, requestId: 'req-a-6c2f' }, () => ({ system: createToolSystem([Counted]) }));
    await withRequestContext({ ...B, requestId: 'req-b-0e9d' }, async () => {
      const owner = await violationOf(system.dispatcher.execute('counted'));
      const state = await violationOf(createToolSystem([HandleReader]).dispatcher.execute('handle-reader', { state: handleOfA, key: 'plan' }));
      expect(owner).toMatchObject({ check: 'context-owner', requestId: 'req-b-0e9d' });
      expect(owner.expected).toContain('req-a-6c2f');
      expect(state).toMatchObject({ check: 'shared-state', expected: 'tenant-a/user-a', requestId: 'req-b-0e9d' });
      for (const error of [owner, state]) {
        for (const other of ['req-a-5d1e', 'req-a-6c2f', 'tenant-a', 'user-a']) expect(error.message).not.toContain(other);
      }
    });
    const events = violationEvents(onlySpan(kit, 'execute_tool counted'));
    expect(events[0]?.expected).toContain('req-a-6c2f');
  });

  it('shared-state: a handle used outside any request rejects (never throws synchronously)', async () => {
    const handleOfA = await withRequestContext(A, (ctx) => ctx.sharedState);
    const before = await kit.violationCount('shared-state');
    let pending: Promise<unknown> | undefined;
    expect(() => {
      pending = handleOfA.get('plan');
    }).not.toThrow();
    expect(await violationOf(pending!)).toMatchObject({ check: 'shared-state', expected: 'tenant-a/user-a', actual: '(no request)' });
    expect((await kit.violationCount('shared-state')) - before).toBe(1);
  });

  it('context-owner: this.context of a tool instance from request A throws when read in request B', async () => {
    const tool = await withRequestContext(A, () => createToolSystem([ContextReader]).registry.get('context-reader') as ContextReader);
    const before = await kit.violationCount('context-owner');
    await withRequestContext(B, () => {
      expect(() => tool.run()).toThrow(IsolationViolationError);
    });
    expect((await kit.violationCount('context-owner')) - before).toBe(1);
  });
});
