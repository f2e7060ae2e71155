import { describe, it, expect } from 'vitest';
import { context, propagation, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { getRequestContext, tryGetRequestContext, withRequestContext, type RequestContext, type RequestContextInit } from 'isotrace';
import { useTestTracing } from 'isotrace/testing';

const kit = useTestTracing();

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function spanNamed(name: string): ReadableSpan {
  const found = kit.spans().filter((span) => span.name === name);
  expect(found, `spans named '${name}'`).toHaveLength(1);
  return found[0]!;
}

describe('withRequestContext: identity', () => {
  it('binds a context with the given tenant and user and returns fn’s result', async () => {
    const result = await withRequestContext({ tenantId: 't1', userId: 'u1', jobId: 'job-7' }, (ctx) => {
      expect(getRequestContext()).toBe(ctx);
      return { tenantId: ctx.tenantId, userId: ctx.userId, jobId: ctx.jobId };
    });
    expect(result).toEqual({ tenantId: 't1', userId: 'u1', jobId: 'job-7' });
  });

  it('gives every request a fresh UUID request id and defaults the correlation id to it', async () => {
    const seen = await Promise.all(
      Array.from({ length: 20 }, () => withRequestContext({ tenantId: 't1', userId: 'u1' }, (ctx) => ({ requestId: ctx.requestId, correlationId: ctx.correlationId }))),
    );
    for (const { requestId, correlationId } of seen) {
      expect(requestId).toMatch(UUID);
      expect(correlationId).toBe(requestId);
    }
    expect(new Set(seen.map((s) => s.requestId)).size).toBe(seen.length);
  });

  it('honours a given request id and correlation id', async () => {
    const ctx = await withRequestContext({ tenantId: 't1', userId: 'u1', requestId: 'req-given', correlationId: 'corr-given' }, (c) => c);
    expect(ctx.requestId).toBe('req-given');
    expect(ctx.correlationId).toBe('corr-given');
    const span = spanNamed('request');
    expect(span.attributes['isotrace.request_id']).toBe('req-given');
    expect(span.attributes['isotrace.correlation_id']).toBe('corr-given');
  });

  it('leaves jobId undefined when not given', async () => {
    const jobId = await withRequestContext({ tenantId: 't1', userId: 'u1' }, (ctx) => ctx.jobId);
    expect(jobId).toBeUndefined();
  });

  it('exposes the trace id of the request span', async () => {
    const traceId = await withRequestContext({ tenantId: 't1', userId: 'u1' }, (ctx) => {
      expect(trace.getActiveSpan()?.spanContext().traceId).toBe(ctx.traceId);
      return ctx.traceId;
    });
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(spanNamed('request').spanContext().traceId).toBe(traceId);
  });

  it('starts the initial values from init.values and keeps them per request', async () => {
    const values = await withRequestContext({ tenantId: 't1', userId: 'u1', values: { region: 'eu', n: 1 } }, (ctx) => {
      ctx.set('extra', true);
      return { region: ctx.get('region'), all: ctx.values() };
    });
    expect(values).toEqual({ region: 'eu', all: { region: 'eu', n: 1, extra: true } });
  });

  it('returns a copy from values()', async () => {
    await withRequestContext({ tenantId: 't1', userId: 'u1', values: { a: 1 } }, (ctx) => {
      const copy = ctx.values();
      copy.a = 2;
      copy.b = 3;
      expect(ctx.get('a')).toBe(1);
      expect(ctx.get('b')).toBeUndefined();
    });
  });

  it('is no longer bound once fn has settled', async () => {
    await withRequestContext({ tenantId: 't1', userId: 'u1' }, async () => {
      await Promise.resolve();
    });
    expect(tryGetRequestContext()).toBeUndefined();
  });
});

describe('withRequestContext: nesting', () => {
  it('makes a new request with a new request id, the inherited correlation id and a child span; values are not inherited', async () => {
    let outer!: RequestContext;
    let inner!: RequestContext;
    let innerValue: unknown = 'unset';
    await withRequestContext({ tenantId: 't1', userId: 'u1', name: 'outer', values: { secret: 'outer-only' } }, async (o) => {
      outer = o;
      await withRequestContext({ tenantId: 't1', userId: 'u2', name: 'inner' }, async (i) => {
        inner = i;
        innerValue = i.get('secret');
        expect(getRequestContext()).toBe(i);
      });
      expect(getRequestContext()).toBe(o);
    });

    expect(inner.requestId).not.toBe(outer.requestId);
    expect(inner.correlationId).toBe(outer.correlationId);
    expect(inner.userId).toBe('u2');
    expect(innerValue).toBeUndefined();
    expect(inner.traceId).toBe(outer.traceId);

    const outerSpan = spanNamed('outer');
    const innerSpan = spanNamed('inner');
    expect(innerSpan.parentSpanContext?.spanId).toBe(outerSpan.spanContext().spanId);
    expect(innerSpan.attributes['isotrace.request_span']).toBe(true);
    expect(innerSpan.attributes['isotrace.request_id']).toBe(inner.requestId);
    expect(innerSpan.attributes['user.id']).toBe('u2');
  });

  it('uses a correlation id given to the nested request', async () => {
    const correlationId = await withRequestContext({ tenantId: 't1', userId: 'u1' }, () =>
      withRequestContext({ tenantId: 't1', userId: 'u1', correlationId: 'inner-corr' }, (ctx) => ctx.correlationId),
    );
    expect(correlationId).toBe('inner-corr');
  });
});

describe('withRequestContext: correlation id from the active baggage', () => {
  function withBaggageCorrelation<T>(value: string, fn: () => Promise<T>): Promise<T> {
    const baggage = propagation.createBaggage({ 'isotrace.correlation_id': { value } });
    return context.with(propagation.setBaggage(context.active(), baggage), fn);
  }

  it('continues a well-formed correlation id found in the caller’s (already trusted) baggage', async () => {
    const ctx = await withBaggageCorrelation('upstream-corr-42', () => withRequestContext({ tenantId: 't1', userId: 'u1' }, (c) => c));
    expect(ctx.correlationId).toBe('upstream-corr-42');
    expect(ctx.requestId).not.toBe('upstream-corr-42');
  });

  it('ignores a malformed one and falls back to the request id', async () => {
    const ctx = await withBaggageCorrelation('has spaces, and; separators', () => withRequestContext({ tenantId: 't1', userId: 'u1' }, (c) => c));
    expect(ctx.correlationId).toBe(ctx.requestId);
  });
});

describe('withRequestContext: errors from fn', () => {
  class QuotaExceeded extends Error {
    override name = 'QuotaExceeded';
  }

  it('rejects with the very error fn threw and records it on the request span', async () => {
    const thrown = new QuotaExceeded('over quota');
    const outcome = withRequestContext({ tenantId: 't1', userId: 'u1', name: 'failing' }, async () => {
      await Promise.resolve();
      throw thrown;
    });
    await expect(outcome).rejects.toBe(thrown);

    const span = spanNamed('failing');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.status.message).toBe('over quota');
    expect(span.attributes['error.type']).toBe('QuotaExceeded');
    const exception = span.events.find((event) => event.name === 'exception');
    expect(exception?.attributes?.['exception.message']).toBe('over quota');
  });

  it('rejects unchanged when fn throws synchronously or throws a non-Error', async () => {
    await expect(
      withRequestContext({ tenantId: 't1', userId: 'u1' }, () => {
        throw 'plain string';
      }),
    ).rejects.toBe('plain string');
    expect(spanNamed('request').status.code).toBe(SpanStatusCode.ERROR);
  });

  it('rejects unchanged with a thrown value that has no string form (no prototype), and records it', async () => {
    const odd = Object.create(null) as object;
    await expect(
      withRequestContext({ tenantId: 't1', userId: 'u1' }, () => {
        throw odd;
      }),
    ).rejects.toBe(odd);
    const span = spanNamed('request');
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: '[object Object]' });
  });

  it('leaves a successful request span without error status', async () => {
    await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => 'ok');
    const span = spanNamed('request');
    expect(span.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(span.attributes['error.type']).toBeUndefined();
  });
});

describe('withRequestContext: init validation', () => {
  const bad: Array<[string, unknown]> = [
    ['tenantId', { userId: 'u1' }],
    ['tenantId', { tenantId: '', userId: 'u1' }],
    ['tenantId', { tenantId: 7, userId: 'u1' }],
    ['userId', { tenantId: 't1' }],
    ['userId', { tenantId: 't1', userId: '' }],
    ['jobId', { tenantId: 't1', userId: 'u1', jobId: '' }],
    ['requestId', { tenantId: 't1', userId: 'u1', requestId: 42 }],
    ['correlationId', { tenantId: 't1', userId: 'u1', correlationId: '' }],
    ['name', { tenantId: 't1', userId: 'u1', name: '' }],
    ['values', { tenantId: 't1', userId: 'u1', values: null }],
  ];

  it.each(bad)('rejects with a TypeError naming init.%s', async (field, init) => {
    let ran = false;
    const outcome = withRequestContext(init as RequestContextInit, () => {
      ran = true;
    });
    await expect(outcome).rejects.toThrow(TypeError);
    await expect(outcome).rejects.toThrow(`init.${field}`);
    expect(ran).toBe(false);
  });

  it('rejects a missing init and a non-function fn with a TypeError', async () => {
    await expect(withRequestContext(null as unknown as RequestContextInit, () => undefined)).rejects.toThrow(TypeError);
    await expect(withRequestContext({ tenantId: 't1', userId: 'u1' }, 'nope' as unknown as () => void)).rejects.toThrow(/fn/);
  });
});

describe('withRequestContext: span attributes and baggage', () => {
  it('puts identity attributes on the request span', async () => {
    const ctx = await withRequestContext({ tenantId: 't1', userId: 'u1', jobId: 'job-1', name: 'handle' }, (c) => c);
    expect(spanNamed('handle').attributes).toMatchObject({
      'isotrace.request_id': ctx.requestId,
      'isotrace.correlation_id': ctx.correlationId,
      'isotrace.tenant_id': 't1',
      'user.id': 'u1',
      'isotrace.job_id': 'job-1',
      'isotrace.request_span': true,
    });
  });

  it('stamps the same identity on a span a user starts inside the request, and not on the one outside', async () => {
    const ctx = await withRequestContext({ tenantId: 't1', userId: 'u1', jobId: 'job-1' }, async (c) => {
      await Promise.resolve();
      trace.getTracer('x').startSpan('user-child').end();
      return c;
    });
    trace.getTracer('x').startSpan('outside').end();

    const child = spanNamed('user-child');
    expect(child.attributes).toMatchObject({
      'isotrace.request_id': ctx.requestId,
      'isotrace.correlation_id': ctx.correlationId,
      'isotrace.tenant_id': 't1',
      'user.id': 'u1',
      'isotrace.job_id': 'job-1',
    });
    expect(child.attributes['isotrace.request_span']).toBeUndefined();
    expect(child.parentSpanContext?.spanId).toBe(spanNamed('request').spanContext().spanId);
    expect(spanNamed('outside').attributes['isotrace.tenant_id']).toBeUndefined();
  });

  it('puts correlation id, tenant, user and job id into baggage', async () => {
    const ctx = await withRequestContext({ tenantId: 't1', userId: 'u1', jobId: 'job-1' }, async (c) => {
      await Promise.resolve();
      const baggage = propagation.getBaggage(context.active());
      expect(baggage?.getEntry('isotrace.correlation_id')?.value).toBe(c.correlationId);
      expect(baggage?.getEntry('isotrace.tenant_id')?.value).toBe('t1');
      expect(baggage?.getEntry('isotrace.user_id')?.value).toBe('u1');
      expect(baggage?.getEntry('isotrace.job_id')?.value).toBe('job-1');
      return c;
    });
    expect(ctx.correlationId).toBe(ctx.requestId);
    expect(propagation.getBaggage(context.active())).toBeUndefined();
  });

  it('gives a nested request its own baggage identity (no job id left over from the outer one)', async () => {
    await withRequestContext({ tenantId: 't1', userId: 'u1', jobId: 'job-outer' }, async () => {
      await withRequestContext({ tenantId: 't2', userId: 'u2' }, () => {
        const baggage = propagation.getBaggage(context.active());
        expect(baggage?.getEntry('isotrace.tenant_id')?.value).toBe('t2');
        expect(baggage?.getEntry('isotrace.user_id')?.value).toBe('u2');
        expect(baggage?.getEntry('isotrace.job_id')).toBeUndefined();
      });
      expect(propagation.getBaggage(context.active())?.getEntry('isotrace.job_id')?.value).toBe('job-outer');
    });
  });
});
