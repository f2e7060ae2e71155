// auditSpans() on the spans real tool code exports: clean requests pass; a borrowed tool system's
// spans are reported against their request ancestor, and run-time violations are reported too.
import { describe, expect, it } from 'vitest';
import { context, trace, TraceFlags } from '@opentelemetry/api';
import { withRequestContext } from 'isotrace';
import { auditSpans, expectNoCrossRequestLeakage, useTestTracing, type IsolationViolation } from 'isotrace/testing';
import { createToolSystem, Tool, type ToolDispatcher } from 'isotrace/tools';
import { createRandom, delay, testSeed } from '../../helpers/random.ts';
import { Echo, onlySpan, requestSpanOf, HandleReader } from '../tools/tool-test-helpers.ts';

const kit = useTestTracing();

const A = { tenantId: 'tenant-a', userId: 'user-a' };
const B = { tenantId: 'tenant-b', userId: 'user-b' };

class Nested extends Tool<{ dispatcher: ToolDispatcher }, unknown> {
  static override toolName = 'nested';
  run({ dispatcher }: { dispatcher: ToolDispatcher }): Promise<unknown> {
    return Promise.all([dispatcher.execute('echo', 1), dispatcher.execute('echo', 2)]);
  }
}

class ContextReader extends Tool<void, string> {
  static override toolName = 'context-reader';
  run(): string {
    return this.context.requestId;
  }
}

/** The violations of one span, as [check, expected, actual], sorted. */
function violationsOf(violations: IsolationViolation[], spanId: string): string[][] {
  return violations
    .filter((v) => v.spanId === spanId)
    .map((v) => [v.check, v.expected, v.actual])
    .sort();
}

describe('auditSpans on exported tool spans', () => {
  it('passes concurrent correct requests with nested and parallel tools', async () => {
    const seed = testSeed();
    const random = createRandom(seed);
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        withRequestContext({ tenantId: `tenant-${i % 5}`, userId: `user-${i % 8}` }, async () => {
          const { dispatcher } = createToolSystem([Nested, Echo]);
          await delay(random.int(0, 3));
          await dispatcher.execute('nested', { dispatcher });
        }),
      ),
    );
    const report = expectNoCrossRequestLeakage(kit.spans());
    expect(report, `seed ${seed}`).toMatchObject({ ok: true, requests: 40, traces: 40, toolSpans: 120 });
  });

  it('reports the tool spans of a system borrowed by another tenant’s request as ancestry violations, plus the recorded run-time ones, with expected and actual meaning the same in both', async () => {
    const { system, owner } = await withRequestContext(A, (owner) => ({ system: createToolSystem([Echo]), owner }));
    const borrower = await withRequestContext(B, async (borrower) => {
      await system.dispatcher.execute('echo');
      return borrower;
    });

    const span = onlySpan(kit, 'execute_tool echo');
    // The tool span names its owner explicitly, while its nearest request ancestor is the borrower.
    expect(span.attributes['isotrace.request_id']).toBe(owner.requestId);
    expect(span.parentSpanContext?.spanId).toBe(requestSpanOf(kit, borrower.requestId).spanContext().spanId);

    const report = auditSpans(kit.spans());
    expect(report.ok).toBe(false);
    const ofToolSpan = violationsOf(report.violations, span.spanContext().spanId);
    // One meaning for both kinds: expected = the request the span belongs to (the owner), actual = the request it ran inside.
    expect(ofToolSpan).toEqual(
      expect.arrayContaining([
        ['ancestry.request_id', owner.requestId, borrower.requestId],
        ['ancestry.tenant_id', 'tenant-a', 'tenant-b'],
        ['ancestry.user_id', 'user-a', 'user-b'],
        ['context-owner', `request ${owner.requestId} (tenant tenant-a, user user-a)`, `request ${borrower.requestId} (tenant tenant-b, user user-b)`],
        ['shared-state', 'tenant-a/user-a', 'tenant-b/user-b'],
      ]),
    );
    expect(report.violationsByCheck).toEqual({
      'ancestry.request_id': 1,
      'ancestry.tenant_id': 1,
      'ancestry.user_id': 1,
      'context-owner': 1,
      trace: 1,
      'shared-state': 1,
    });
    expect(report.violations.every((v) => v.traceId === borrower.traceId && v.spanName === 'execute_tool echo')).toBe(true);
    expect(() => expectNoCrossRequestLeakage(kit.spans())).toThrow(/ancestry\.request_id/);
  });

  it('reports a system borrowed by a nested request of the same user as ancestry.request_id and context-owner only', async () => {
    const ids = await withRequestContext(A, async (owner) => {
      const { dispatcher } = createToolSystem([Echo]);
      return withRequestContext(A, async (borrower) => {
        await dispatcher.execute('echo');
        return { owner: owner.requestId, borrower: borrower.requestId };
      });
    });
    const report = auditSpans(kit.spans());
    expect(report.violationsByCheck).toEqual({ 'ancestry.request_id': 1, 'context-owner': 1 });
    expect(report.violations.find((v) => v.check === 'ancestry.request_id')).toMatchObject({ expected: ids.owner, actual: ids.borrower });
    expect(report.violations.find((v) => v.check === 'context-owner')).toMatchObject({ expected: expect.stringContaining(ids.owner), actual: expect.stringContaining(ids.borrower) });
  });

  it('reports a SharedState handle used by another tenant’s tool as a recorded shared-state violation (no ancestry violation)', async () => {
    const handleOfA = await withRequestContext(A, async (ctx) => {
      await ctx.sharedState.set('plan', 'gold');
      return ctx.sharedState;
    });
    await withRequestContext(B, () => createToolSystem([HandleReader]).dispatcher.execute('handle-reader', { state: handleOfA, key: 'plan' }));
    const report = auditSpans(kit.spans());
    expect(report.violations).toEqual([
      expect.objectContaining({ check: 'shared-state', spanName: 'execute_tool handle-reader', expected: 'tenant-a/user-a', actual: 'tenant-b/user-b' }),
    ]);
  });

  it('reports a captured tool instance read from another request on that request’s span', async () => {
    const tool = await withRequestContext(A, () => createToolSystem([ContextReader]).registry.get('context-reader') as ContextReader);
    const borrowerId = await withRequestContext({ ...B, name: 'request-b' }, (ctx) => {
      tool.run();
      return ctx.requestId;
    });
    const report = auditSpans(kit.spans());
    expect(report.violations).toEqual([expect.objectContaining({ check: 'context-owner', spanName: 'request-b', spanId: requestSpanOf(kit, borrowerId).spanContext().spanId })]);
  });

  it('reports a tool span moved into another trace by its recorded trace violation and as missing its request span (its parent is not among the spans)', async () => {
    const foreign = trace.wrapSpanContext({ traceId: 'f'.repeat(32), spanId: 'e'.repeat(16), traceFlags: TraceFlags.SAMPLED });
    await withRequestContext(A, async () => {
      const { dispatcher } = createToolSystem([Echo]);
      await context.with(trace.setSpan(context.active(), foreign), () => dispatcher.execute('echo'));
    });
    const report = auditSpans(kit.spans());
    expect(report.violationsByCheck).toEqual({ trace: 1, 'missing-request-span': 1 });
    expect(report.violations.find((v) => v.check === 'missing-request-span')).toMatchObject({
      spanName: 'execute_tool echo',
      actual: `no request span: span ${'e'.repeat(16)} above it is not in the trace (dropped, unsampled or not exported)`,
    });
    expect(report.traces).toBe(2);
  });
});
