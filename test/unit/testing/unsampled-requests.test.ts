// The test kit audits what the code did, not what the sampler kept: a leak inside a request whose
// inbound trace is unsampled, or one that no span shows, must still fail expectNoCrossRequestLeakage.
import { describe, it, expect } from 'vitest';
import { context, ROOT_CONTEXT, trace, TraceFlags } from '@opentelemetry/api';
import { withRequestContext, type RequestContext } from 'isotrace';
import { expectNoCrossRequestLeakage, useTestTracing } from 'isotrace/testing';
import { createRandom, testSeed } from '../../helpers/random.ts';

type Handler = (item: string, random: () => number) => Promise<unknown>;

const kit = useTestTracing();

/** An inbound caller's context that says "not sampled" (traceparent flags 00). */
function unsampledParent(i: number): typeof ROOT_CONTEXT {
  const traceId = (i + 1).toString(16).padStart(32, 'a');
  return trace.setSpanContext(ROOT_CONTEXT, { traceId, spanId: 'b'.repeat(16), traceFlags: TraceFlags.NONE, isRemote: true });
}

/** `count` concurrent requests under unsampled remote parents, in a seeded random order. */
async function runUnsampledRequests(handler: Handler, count: number): Promise<void> {
  const random = createRandom(testSeed());
  await Promise.allSettled(
    random.shuffle(Array.from({ length: count }, (_, i) => i)).map((i) =>
      context.with(unsampledParent(i), () => withRequestContext({ tenantId: `tenant-${i % 5}`, userId: `user-${i % 10}` }, () => handler(`item-${i % 3}`, random.next))),
    ),
  );
}

describe('the test kit and unsampled requests', () => {
  it('records the spans of requests whose inbound trace is unsampled', async () => {
    await runUnsampledRequests(async () => undefined, 3);
    const requests = kit.spans().filter((span) => span.attributes['isotrace.request_span'] === true);
    expect(requests).toHaveLength(3);
    for (const span of requests) expect(span.spanContext().traceFlags & TraceFlags.SAMPLED).toBe(0);
    expect(expectNoCrossRequestLeakage(kit.spans())).toMatchObject({ ok: true, requests: 3 });
  });

  it.each(['global-registry', 'current-request-variable'])('fails on a planted leak (%s) inside unsampled requests', async (fixture) => {
    const { handleRequest } = (await import(`../../fixtures/planted-leaks/${fixture}.ts`)) as { handleRequest: Handler };
    await runUnsampledRequests(handleRequest, 50);
    expect(() => expectNoCrossRequestLeakage(kit.spans())).toThrow(/context-owner/);
  });

  it('fails when the run-time audit counted a violation that no span shows', async () => {
    const captured = await withRequestContext({ tenantId: 't1', userId: 'u1' }, (ctx) => ctx);
    // After its request ended, outside any span: the shared-state audit counts it, but no span can carry it.
    await context.with(ROOT_CONTEXT, () => (captured as RequestContext).sharedState.get('k'));
    expect(await kit.violationCount('shared-state')).toBeGreaterThan(0);
    expect(() => expectNoCrossRequestLeakage(kit.spans())).toThrow(/run-time audits counted 1 isolation violation.*shared-state 1/);
  });

  it('starts each test with no recorded spans or run-time violations (reset before each test)', async () => {
    expect(kit.spans()).toEqual([]);
    await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => undefined);
    expect(expectNoCrossRequestLeakage(kit.spans())).toMatchObject({ ok: true, requests: 1 });
  });
});
