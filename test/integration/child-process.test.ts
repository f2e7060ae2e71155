// Child processes continue the parent's request: contextToEnv() in the parent,
// withContextFromEnv() in a real spawned Node process whose spans travel over
// OTLP/HTTP into a local sink and join the parent's trace.
import { fileURLToPath } from 'node:url';
import { trace } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withRequestContext } from 'isotrace';
import { setupTestTracing, type TestTracing } from 'isotrace/testing';
import { contextToEnv, withContextFromEnv } from 'isotrace/workers';
import { startOtlpSink, type OtlpSink } from '../helpers/otlp-sink.ts';
import { runNode } from '../helpers/process.ts';

const CHILD = fileURLToPath(new URL('../fixtures/workers/child-report.ts', import.meta.url));

describe('child processes', () => {
  let kit: TestTracing;
  let sink: OtlpSink;

  beforeAll(async () => {
    kit = await setupTestTracing();
    sink = await startOtlpSink();
  });
  afterAll(async () => {
    await sink?.close();
    await kit?.shutdown();
  });

  it("a spawned Node process sees the parent's request and its span joins the parent's trace (real OTLP/HTTP)", async () => {
    const parent = await withRequestContext({ tenantId: 'acme', userId: 'ada', jobId: 'job-7', values: { marker: 'from-parent' } }, (ctx) =>
      trace.getTracer('test').startActiveSpan('spawn.report', async (span) => {
        try {
          const env = contextToEnv();
          const run = await runNode([CHILD, sink.url], { env });
          return { run, env, requestId: ctx.requestId, correlationId: ctx.correlationId, traceId: span.spanContext().traceId, spanId: span.spanContext().spanId };
        } finally {
          span.end();
        }
      }),
    );

    expect(parent.run.stderr).toBe('');
    expect(parent.run.code).toBe(0);
    expect(parent.env.TRACEPARENT).toBe(`00-${parent.traceId}-${parent.spanId}-01`);
    expect(parent.env.BAGGAGE).toContain('isotrace.tenant_id=acme');
    const seen = JSON.parse(parent.run.stdout.trim()) as Record<string, unknown>;
    expect(seen).toMatchObject({ requestId: parent.requestId, correlationId: parent.correlationId, tenantId: 'acme', userId: 'ada', jobId: 'job-7', marker: 'from-parent', traceId: parent.traceId });

    const spans = await sink.waitForSpans((received) => received.some((span) => span.name === 'child.work'), 15_000);
    const childSpan = spans.find((span) => span.name === 'child.work')!;
    expect(childSpan.traceId).toBe(parent.traceId);
    expect(childSpan.parentSpanId).toBe(parent.spanId);
    expect(childSpan.spanId).toBe(seen.spanId);
    expect(childSpan.serviceName).toBe('child');
    expect(childSpan.attributes).toMatchObject({ 'isotrace.request_id': parent.requestId, 'isotrace.tenant_id': 'acme', 'user.id': 'ada', 'isotrace.job_id': 'job-7' });
    expect(sink.traceRequests).toBeGreaterThan(0);
  });

  it('a malformed ISOTRACE_REQUEST_CONTEXT makes the child fail with a TypeError naming the variable', async () => {
    const env = { ...withoutCarriers(process.env), ISOTRACE_REQUEST_CONTEXT: '{"requestId": "r1", "tenantId":' };
    const run = await runNode([CHILD, sink.url], { env });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^TypeError: ISOTRACE_REQUEST_CONTEXT is not valid JSON/);
  });

  it.each([
    ['not JSON', '{oops', /ISOTRACE_REQUEST_CONTEXT is not valid JSON/],
    ['not an object', '"acme"', /ISOTRACE_REQUEST_CONTEXT is not a request-context snapshot/],
    ['a field of the wrong type', JSON.stringify({ requestId: 'r', correlationId: 'c', tenantId: 7, userId: 'u', traceId: 't', values: {} }), /ISOTRACE_REQUEST_CONTEXT: field 'tenantId'/],
  ])('withContextFromEnv rejects (in-process) with a TypeError naming the variable for %s', async (_label, value, message) => {
    let called = false;
    const pending = withContextFromEnv(() => (called = true), { ISOTRACE_REQUEST_CONTEXT: value });
    await expect(pending).rejects.toThrow(TypeError);
    await expect(pending).rejects.toThrow(message);
    expect(called).toBe(false);
  });

  it('contextToEnv outside a request carries no request context and removes stale carriers', () => {
    const stale = { PATH: '/usr/bin', TRACEPARENT: '00-stale', TRACESTATE: 'x=1', BAGGAGE: 'isotrace.tenant_id=victim', ISOTRACE_REQUEST_CONTEXT: '{"tenantId":"victim"}' };
    const env = contextToEnv(stale);
    expect(env).toEqual({ PATH: '/usr/bin' });
    expect(stale.TRACEPARENT).toBe('00-stale'); // the input is not modified

    // Inside a span but outside a request: only the trace travels.
    const traced = trace.getTracer('test').startActiveSpan('job', (span) => {
      try {
        return { env: contextToEnv(stale), spanId: span.spanContext().spanId };
      } finally {
        span.end();
      }
    });
    expect(traced.env.TRACEPARENT).toMatch(new RegExp(`^00-[0-9a-f]{32}-${traced.spanId}-01$`));
    expect(traced.env.ISOTRACE_REQUEST_CONTEXT).toBeUndefined();
    expect(traced.env.BAGGAGE).toBeUndefined();
    expect(traced.env.TRACESTATE).toBeUndefined();
  });
});

function withoutCarriers(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { TRACEPARENT: _t, TRACESTATE: _s, BAGGAGE: _b, ISOTRACE_REQUEST_CONTEXT: _r, ...rest } = env;
  return rest;
}
