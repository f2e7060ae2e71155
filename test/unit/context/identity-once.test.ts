// The request identity is checked once per request and written onto spans without the SDK
// validating it again, and the identity baggage is read from the request when asked. What a
// user sees must not move: every span of a request carries the identity, nested and borrowed
// cases keep their own, baggage answers like any baggage, and the audits still see a leak.
import { describe, expect, it } from 'vitest';
import { context, propagation, trace } from '@opentelemetry/api';
import { W3CBaggagePropagator } from '@opentelemetry/core';
import { withRequestContext } from 'isotrace';
import { auditSpans, useTestTracing } from 'isotrace/testing';
import { createToolSystem } from 'isotrace/tools';
import { Echo, onlySpan } from '../tools/tool-test-helpers.ts';

const kit = useTestTracing();

const IDENTITY_KEYS = ['isotrace.request_id', 'isotrace.correlation_id', 'isotrace.tenant_id', 'user.id', 'isotrace.job_id'];

function identityOf(attributes: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(IDENTITY_KEYS.filter((key) => attributes[key] !== undefined).map((key) => [key, attributes[key]]));
}

describe('identity on spans, written once per request', () => {
  it('a nested request of another tenant: its span and its children carry its identity only, no job id of the outer request', async () => {
    const { outer, inner } = await withRequestContext({ tenantId: 't1', userId: 'u1', jobId: 'job-outer', name: 'outer' }, async (outer) => {
      const inner = await withRequestContext({ tenantId: 't2', userId: 'u2', name: 'inner' }, async (inner) => {
        await Promise.resolve();
        trace.getTracer('lib').startSpan('inner-child').end();
        return inner;
      });
      trace.getTracer('lib').startSpan('outer-child').end();
      return { outer, inner };
    });

    const innerIdentity = { 'isotrace.request_id': inner.requestId, 'isotrace.correlation_id': outer.correlationId, 'isotrace.tenant_id': 't2', 'user.id': 'u2' };
    expect(identityOf(onlySpan(kit, 'inner').attributes)).toEqual(innerIdentity);
    expect(onlySpan(kit, 'inner').attributes['isotrace.request_span']).toBe(true);
    expect(identityOf(onlySpan(kit, 'inner-child').attributes)).toEqual(innerIdentity);
    expect(identityOf(onlySpan(kit, 'outer-child').attributes)).toEqual({
      'isotrace.request_id': outer.requestId,
      'isotrace.correlation_id': outer.correlationId,
      'isotrace.tenant_id': 't1',
      'user.id': 'u1',
      'isotrace.job_id': 'job-outer',
    });
    expect(auditSpans(kit.spans()).ok).toBe(true);
  });

  it('attributes a span already has win over the stamped identity; the request span’s own identity wins over everything', async () => {
    const ctx = await withRequestContext({ tenantId: 't1', userId: 'u1' }, (c) => {
      trace.getTracer('lib').startSpan('preset', { attributes: { 'user.id': 'given-by-the-library' } }).end();
      return c;
    });
    expect(onlySpan(kit, 'preset').attributes).toMatchObject({ 'user.id': 'given-by-the-library', 'isotrace.request_id': ctx.requestId, 'isotrace.tenant_id': 't1' });
  });

  it('a tool system used from another request: its tool span carries the owner’s identity, so auditSpans() reports the span', async () => {
    const { system, owner } = await withRequestContext({ tenantId: 'tenant-a', userId: 'user-a', name: 'request-a' }, (owner) => ({ system: createToolSystem([Echo]), owner }));
    await withRequestContext({ tenantId: 'tenant-b', userId: 'user-b', name: 'request-b' }, () => system.dispatcher.execute('echo', 'x'));

    const tool = onlySpan(kit, 'execute_tool echo');
    expect(identityOf(tool.attributes)).toEqual({ 'isotrace.request_id': owner.requestId, 'isotrace.correlation_id': owner.correlationId, 'isotrace.tenant_id': 'tenant-a', 'user.id': 'user-a' });
    expect(tool.attributes).toMatchObject({ 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'echo', 'isotrace.audit.result': 'violation' });
    const report = auditSpans(kit.spans());
    expect(report.violations.filter((v) => v.spanId === tool.spanContext().spanId).map((v) => v.check)).toEqual(expect.arrayContaining(['ancestry.request_id', 'ancestry.tenant_id', 'ancestry.user_id']));
  });
});

describe('identity baggage, read from the request', () => {
  it('answers like any baggage: entries in order, copies of entries, and changes that return a new baggage', async () => {
    await withRequestContext({ tenantId: 't1', userId: 'u1', jobId: 'j1' }, (ctx) => {
      const baggage = propagation.getBaggage(context.active())!;
      expect(baggage.getAllEntries()).toEqual([
        ['isotrace.correlation_id', { value: ctx.correlationId }],
        ['isotrace.tenant_id', { value: 't1' }],
        ['isotrace.user_id', { value: 'u1' }],
        ['isotrace.job_id', { value: 'j1' }],
      ]);
      const entry = baggage.getEntry('isotrace.tenant_id')!;
      entry.value = 'changed by the reader';
      expect(baggage.getEntry('isotrace.tenant_id')?.value).toBe('t1');
      expect(baggage.getEntry('other')).toBeUndefined();

      const added = baggage.setEntry('app.key', { value: 'v' });
      expect(added.getAllEntries().map(([key]) => key)).toEqual(['isotrace.correlation_id', 'isotrace.tenant_id', 'isotrace.user_id', 'isotrace.job_id', 'app.key']);
      expect(baggage.removeEntry('isotrace.job_id').getEntry('isotrace.job_id')).toBeUndefined();
      expect(baggage.removeEntries('isotrace.tenant_id', 'isotrace.user_id').getAllEntries().map(([key]) => key)).toEqual(['isotrace.correlation_id', 'isotrace.job_id']);
      expect(baggage.clear().getAllEntries()).toEqual([]);
      // The request's own baggage is unchanged by all of that.
      expect(propagation.getBaggage(context.active())!.getAllEntries()).toHaveLength(4);
    });
  });

  it('goes out on the wire as the W3C baggage header with the identity', async () => {
    const wire = await withRequestContext({ tenantId: 't1', userId: 'u1', jobId: 'j 1' }, (ctx) => {
      const carrier: Record<string, string> = {};
      new W3CBaggagePropagator().inject(context.active(), carrier, { set: (c, k, v) => void (c[k] = v) });
      return { baggage: carrier.baggage, ctx };
    });
    expect(wire.baggage).toBe(`isotrace.correlation_id=${wire.ctx.correlationId},isotrace.tenant_id=t1,isotrace.user_id=u1,isotrace.job_id=j%201`);
  });

  it('a request’s baggage replaced inside it is still checked against the request: forged identity fails the baggage check', async () => {
    await withRequestContext({ tenantId: 't1', userId: 'u1' }, async () => {
      const { dispatcher } = createToolSystem([Echo]);
      const forged = propagation.getBaggage(context.active())!.setEntry('isotrace.user_id', { value: 'someone-else' });
      await context.with(propagation.setBaggage(context.active(), forged), () => dispatcher.execute('echo', 'x'));
    });
    expect(onlySpan(kit, 'execute_tool echo').attributes['isotrace.audit.result']).toBe('violation');
  });
});
