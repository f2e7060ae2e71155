// The context carrier a worker-thread hop sends (workers/internal/carrier.ts): what the worker
// restores must be what the submitting thread had: span context, request identity and values,
// and baggage entry for entry, whichever form the baggage travels in, so the worker-entry
// `baggage` audit reaches the verdict the submitting thread's would.
import { context, propagation, trace, TraceFlags, type Context } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withRequestContext } from 'isotrace';
import { setupTestTracing, type TestTracing } from 'isotrace/testing';
import { carriesIdentity } from '../../../sdk/src/audit/internal/runtime-audit.ts';
import { requestContextOf } from '../../../sdk/src/context/internal/request-scope.ts';
import { MemoryStore } from '../../../sdk/src/shared-state/internal/memory-store.ts';
import { captureCarrier, carriedValues, restoreContext } from '../../../sdk/src/workers/internal/carrier.ts';

const store = new MemoryStore();

/** The context as a worker thread restores it, after the structured clone of the hop. */
function hop(ctx: Context): Context {
  return restoreContext(structuredClone(captureCarrier(ctx)), store);
}

function entriesOf(ctx: Context): unknown {
  return propagation.getBaggage(ctx)?.getAllEntries();
}

function baggageCheckPasses(ctx: Context): boolean {
  return carriesIdentity(ctx, requestContextOf(ctx)!);
}

describe('the worker-hop context carrier', () => {
  let kit: TestTracing;

  beforeAll(async () => {
    kit = await setupTestTracing();
  });
  afterAll(() => kit?.shutdown());

  it("restores the request's identity, values and span context; each restore is its own copy", async () => {
    const when = new Date(0);
    await withRequestContext({ tenantId: 'acme', userId: 'ada', jobId: 'job-7', values: { plan: 'pro', when, nested: { tags: ['a', 'b'] }, lookup: new Map([[1, 'one']]) } }, async (request) => {
      const active = context.active();
      const first = hop(active);
      const second = hop(active);
      const restored = requestContextOf(first)!;
      const identity = ({ requestId, correlationId, tenantId, userId, jobId, traceId }: typeof restored): unknown => ({ requestId, correlationId, tenantId, userId, jobId, traceId });
      expect(identity(restored)).toEqual(identity(requestContextOf(active)!));
      expect(restored.requestId).toBe(request.requestId);
      expect(restored.values()).toEqual(request.values());
      expect(restored.get('when')).toBeInstanceOf(Date);
      expect(trace.getSpanContext(first)).toEqual({ ...trace.getSpanContext(active), isRemote: true });
      // A change made in one task reaches neither the other task nor the submitting request.
      restored.set('plan', 'free');
      expect(requestContextOf(second)!.get('plan')).toBe('pro');
      expect(request.get('plan')).toBe('pro');
      expect(requestContextOf(second)).not.toBe(restored);
    });
  });

  it("the request's own baggage arrives entry for entry, and passes the baggage check as it does in the submitting thread", async () => {
    await withRequestContext({ tenantId: 'acme', userId: 'ada', jobId: 'job-7' }, async () => {
      const active = context.active();
      const restored = hop(active);
      expect(entriesOf(restored)).toEqual(entriesOf(active));
      expect(baggageCheckPasses(active)).toBe(true);
      expect(baggageCheckPasses(restored)).toBe(true);
    });
  });

  it('baggage with an entry added arrives with it', async () => {
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, async () => {
      const active = context.active();
      const changed = propagation.setBaggage(active, propagation.getBaggage(active)!.setEntry('app.region', { value: 'eu' }));
      const restored = hop(changed);
      expect(entriesOf(restored)).toEqual(entriesOf(changed));
      expect(propagation.getBaggage(restored)?.getEntry('app.region')?.value).toBe('eu');
      expect(baggageCheckPasses(restored)).toBe(true);
    });
  });

  it("another request's baggage next to this request arrives as it is, and fails the baggage check as it does in the submitting thread", async () => {
    const otherBaggage = await withRequestContext({ tenantId: 'globex', userId: 'bob' }, async () => propagation.getBaggage(context.active())!);
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, async () => {
      const mixed = propagation.setBaggage(context.active(), otherBaggage);
      const restored = hop(mixed);
      expect(entriesOf(restored)).toEqual(otherBaggage.getAllEntries());
      expect(requestContextOf(restored)!.tenantId).toBe('acme');
      expect(baggageCheckPasses(mixed)).toBe(false);
      expect(baggageCheckPasses(restored)).toBe(false);
    });
  });

  it('a context without baggage restores without baggage (and fails the baggage check in both threads)', async () => {
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, async () => {
      const bare = propagation.deleteBaggage(context.active());
      const restored = hop(bare);
      expect(propagation.getBaggage(restored)).toBeUndefined();
      expect(baggageCheckPasses(restored)).toBe(false);
    });
  });

  it('outside any request: span context and baggage only, no request context', () => {
    const parent = trace.setSpanContext(context.active(), { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.SAMPLED });
    const withBaggage = propagation.setBaggage(parent, propagation.createBaggage({ 'app.k': { value: 'v' } }));
    const restored = hop(withBaggage);
    expect(requestContextOf(restored)).toBeUndefined();
    expect(trace.getSpanContext(restored)).toMatchObject({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', isRemote: true });
    expect(entriesOf(restored)).toEqual([['app.k', { value: 'v' }]]);
  });

  it('names the values it carries (for the error about a value that cannot be sent)', async () => {
    await withRequestContext({ tenantId: 'acme', userId: 'ada', values: { a: 1, b: 'two' } }, async () => {
      expect(carriedValues(captureCarrier(context.active()))).toEqual({ a: 1, b: 'two' });
    });
  });
});
