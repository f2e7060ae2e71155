import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { trace } from '@opentelemetry/api';
import { startTracing, TracingAlreadyStartedError, withRequestContext } from 'isotrace';
import { auditSpans, expectNoCrossRequestLeakage, setupTestTracing, type TestTracing } from 'isotrace/testing';

let kit: TestTracing;

beforeAll(async () => {
  kit = await setupTestTracing({ serviceName: 'kit-test' });
});

afterAll(async () => {
  await kit.shutdown();
});

describe('setupTestTracing', () => {
  it('has every finished span in spans() as soon as the request has finished', async () => {
    kit.reset();
    const requestId = await withRequestContext({ tenantId: 't1', userId: 'u1', name: 'kit-request' }, async (ctx) => {
      trace.getTracer('kit').startSpan('inner').end();
      await Promise.resolve();
      return ctx.requestId;
    });
    const names = kit.spans().map((span) => span.name);
    expect(names.sort()).toEqual(['inner', 'kit-request']);
    const request = kit.spans().find((span) => span.name === 'kit-request');
    expect(request?.attributes['isotrace.request_id']).toBe(requestId);
    expect(request?.resource.attributes['service.name']).toBe('kit-test');
  });

  it('reset() forgets the spans collected so far', async () => {
    await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => undefined);
    expect(kit.spans().length).toBeGreaterThan(0);
    kit.reset();
    expect(kit.spans()).toEqual([]);
    await withRequestContext({ tenantId: 't1', userId: 'u1', name: 'after-reset' }, () => undefined);
    expect(kit.spans().map((span) => span.name)).toEqual(['after-reset']);
  });

  it('is a running isotrace: a second startTracing() is refused', async () => {
    await expect(startTracing({ serviceName: 'again', exporter: 'none' })).rejects.toThrow(TracingAlreadyStartedError);
  });

  it('feeds SDK spans straight into auditSpans and expectNoCrossRequestLeakage', async () => {
    kit.reset();
    await Promise.all(
      ['t1', 't2', 't3'].map((tenantId) =>
        withRequestContext({ tenantId, userId: 'u1' }, async () => {
          await Promise.resolve();
          trace.getTracer('kit').startSpan(`work ${tenantId}`).end();
        }),
      ),
    );
    const report = expectNoCrossRequestLeakage(kit.spans());
    expect(report).toMatchObject({ ok: true, spans: 6, requests: 3, traces: 3 });

    // A span that claims another tenant than its request is caught in SDK spans too.
    kit.reset();
    await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => {
      trace.getTracer('kit').startSpan('forged', { attributes: { 'isotrace.tenant_id': 't2' } }).end();
    });
    expect(auditSpans(kit.spans()).violations).toMatchObject([{ check: 'ancestry.tenant_id', spanName: 'forged', expected: 't2', actual: 't1' }]);
    expect(() => expectNoCrossRequestLeakage(kit.spans())).toThrow(/forged/);
  });
});
