// isotrace inside a service's own NodeSDK (HTTP and undici instrumentations, its own
// OTLP exporter and metric reader): createIsotrace()'s parts go into the host's SDK,
// attach() starts isotrace in it, and its shutdown leaves the host's tracing running.
import { propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IsotraceSetupError, startTracing } from 'isotrace';
import { HOST_SPAN, type ScenarioResult } from '../../fixtures/otel-hosts/scenario.ts';
import { expectAuditedToolSpans, expectBaggageOnlyToAllowed, expectIdentityOnHostSpans } from './host-expectations.ts';
import { OtelHost } from './host-setup.ts';

describe('isotrace inside a NodeSDK the service already runs', () => {
  const host = new OtelHost();
  let result: ScenarioResult;

  beforeAll(async () => {
    await host.start({ processor: (collector) => new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: `${collector.origin}/v1/traces` }) }) });
    result = await host.runScenario();
    await host.tracing.forceFlush();
  });
  afterAll(() => host.close());

  it("stamps the request identity on the host's own spans and HTTP client spans", () => {
    expectIdentityOnHostSpans(host.backend.spans(), result, { clientSpans: true });
  });

  it('sends identity baggage only to the propagateTo destination, and one traceparent everywhere', () => {
    expectBaggageOnlyToAllowed(host.allowed, host.denied, result);
  });

  it("exports isotrace's request and audited tool spans through the host's exporter", () => {
    const spans = host.backend.spans();
    expect(spans.find((span) => span.name === 'scenario.request')?.attributes).toMatchObject({ 'isotrace.request_id': result.requestId, 'isotrace.request_span': true });
    expectAuditedToolSpans(spans, result);
  });

  it("counts the planted leak on the host's meter provider", async () => {
    expect(await host.reader.count('context-owner')).toBeGreaterThanOrEqual(1);
  });

  it("leaves the host's tracing running after isotrace's shutdown", async () => {
    await host.tracing.shutdown();
    const after = trace.getTracer('host-app').startSpan(`${HOST_SPAN} after shutdown`);
    after.end();
    const carrier: Record<string, string> = {};
    propagation.inject(trace.setSpan(ROOT_CONTEXT, after), carrier);
    await (await fetch(`${host.allowed.origin}/after`)).text();
    await host.tracing.forceFlush();
    await host.backend.waitFor(() => host.backend.spans().some((span) => span.name === `${HOST_SPAN} after shutdown`), 'the host span made after shutdown');
    expect(carrier.traceparent).toContain(after.spanContext().traceId);
    expect(carrier.baggage).toBeUndefined();
    const late = host.allowed.requests.find((request) => request.path === '/after')!;
    expect(late.headers.traceparent).toBeDefined();
    expect(late.headers.baggage).toBeUndefined();
  });

  it('startTracing() beside the host rejects, pointing to createIsotrace, and leaves the host in place', async () => {
    const outcome = startTracing({ serviceName: 'second', exporter: 'none' });
    await expect(outcome).rejects.toThrow(IsotraceSetupError);
    await expect(outcome).rejects.toThrow(/createIsotrace/);
    const span = trace.getTracer('host-app').startSpan('host span after a refused startTracing');
    span.end();
    await host.tracing.forceFlush();
    await host.backend.waitFor(() => host.backend.spans().some((received) => received.name === 'host span after a refused startTracing'), 'the host span');
  });
});
