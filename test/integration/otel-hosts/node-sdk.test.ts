// isotrace inside a service's own NodeSDK (HTTP and undici instrumentations, its own
// OTLP exporter and metric reader): createIsotrace()'s parts go into the host's SDK,
// attach() starts isotrace in it, and its shutdown leaves the host's tracing running.
import { propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IsotraceSetupError, startTracing, type Tracing } from 'isotrace';
import { createIsotrace } from 'isotrace/otel';
import { startRecorder, type Recorder } from '../../fixtures/otel-hosts/recorder.ts';
import { HOST_SPAN, runScenario, type ScenarioResult } from '../../fixtures/otel-hosts/scenario.ts';
import { ViolationCountReader } from '../../fixtures/otel-hosts/violation-reader.ts';
import { expectAuditedToolSpans, expectBaggageOnlyToAllowed, expectIdentityOnHostSpans } from './host-expectations.ts';

describe('isotrace inside a NodeSDK the service already runs', () => {
  let collector: Recorder;
  let allowed: Recorder;
  let denied: Recorder;
  let sdk: NodeSDK;
  let reader: ViolationCountReader;
  let tracing: Tracing;
  let result: ScenarioResult;

  beforeAll(async () => {
    [collector, allowed, denied] = await Promise.all([startRecorder(), startRecorder(), startRecorder()]);
    const isotrace = createIsotrace({ serviceName: 'agent-api', propagateTo: [`127.0.0.1:${allowed.port}`] });
    reader = new ViolationCountReader();
    sdk = new NodeSDK({
      serviceName: 'agent-api',
      spanProcessors: [isotrace.spanProcessor, new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: `${collector.origin}/v1/traces` }) })],
      textMapPropagator: isotrace.propagator,
      instrumentations: [...isotrace.instrumentations],
      metricReaders: [reader],
    });
    sdk.start();
    tracing = await isotrace.attach();
    result = await runScenario({ allowed: allowed.origin, denied: denied.origin });
    await tracing.forceFlush();
  });
  afterAll(async () => {
    await tracing?.shutdown();
    await sdk?.shutdown();
    await Promise.all([collector, allowed, denied].map((recorder) => recorder?.close()));
  });

  it("stamps the request identity on the host's own spans and HTTP client spans", () => {
    expectIdentityOnHostSpans(collector.spans(), result, { clientSpans: true });
  });

  it('sends identity baggage only to the propagateTo destination, and one traceparent everywhere', () => {
    expectBaggageOnlyToAllowed(allowed, denied, result);
  });

  it("exports isotrace's request and audited tool spans through the host's exporter", () => {
    const spans = collector.spans();
    expect(spans.find((span) => span.name === 'scenario.request')?.attributes).toMatchObject({ 'isotrace.request_id': result.requestId, 'isotrace.request_span': true });
    expectAuditedToolSpans(spans, result);
  });

  it("counts the planted leak on the host's meter provider", async () => {
    expect(await reader.count('context-owner')).toBeGreaterThanOrEqual(1);
  });

  it("leaves the host's tracing running after isotrace's shutdown", async () => {
    await tracing.shutdown();
    const after = trace.getTracer('host-app').startSpan(`${HOST_SPAN} after shutdown`);
    after.end();
    const carrier: Record<string, string> = {};
    propagation.inject(trace.setSpan(ROOT_CONTEXT, after), carrier);
    await (await fetch(`${allowed.origin}/after`)).text();
    await tracing.forceFlush();
    await collector.waitFor(() => collector.spans().some((span) => span.name === `${HOST_SPAN} after shutdown`), 'the host span made after shutdown');
    expect(carrier.traceparent).toContain(after.spanContext().traceId);
    expect(carrier.baggage).toBeUndefined();
    const late = allowed.requests.find((request) => request.path === '/after')!;
    expect(late.headers.traceparent).toBeDefined();
    expect(late.headers.baggage).toBeUndefined();
  });

  it('startTracing() beside the host rejects, pointing to createIsotrace, and leaves the host in place', async () => {
    const outcome = startTracing({ serviceName: 'second', exporter: 'none' });
    await expect(outcome).rejects.toThrow(IsotraceSetupError);
    await expect(outcome).rejects.toThrow(/createIsotrace/);
    const span = trace.getTracer('host-app').startSpan('host span after a refused startTracing');
    span.end();
    await tracing.forceFlush();
    await collector.waitFor(() => collector.spans().some((received) => received.name === 'host span after a refused startTracing'), 'the host span');
  });
});
