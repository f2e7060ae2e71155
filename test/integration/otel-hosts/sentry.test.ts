// isotrace in a service that runs Sentry (@sentry/node, current major) with its own
// OpenTelemetry pipeline, set up the way Sentry documents it ("Use your own OpenTelemetry
// pipeline"): the provider first, spans to Sentry's OTLP endpoint via getOtlpTracesEndpoint(),
// then Sentry.init() with openTelemetryIntegration(). The DSN points at a local listener
// that records Sentry's envelopes and OTLP exports.
import { trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import * as Sentry from '@sentry/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withRequestContext, type Tracing } from 'isotrace';
import { createIsotrace } from 'isotrace/otel';
import { startRecorder, type Recorder } from '../../fixtures/otel-hosts/recorder.ts';
import { HOST_SPAN, OWNER, runScenario, type ScenarioResult } from '../../fixtures/otel-hosts/scenario.ts';
import { ViolationCountReader } from '../../fixtures/otel-hosts/violation-reader.ts';
import { expectAuditedToolSpans, expectBaggageOnlyToAllowed, expectIdentityOnHostSpans } from './host-expectations.ts';

describe('isotrace inside a Sentry + OpenTelemetry setup', () => {
  let sentry: Recorder;
  let allowed: Recorder;
  let denied: Recorder;
  let sdk: NodeSDK;
  let reader: ViolationCountReader;
  let tracing: Tracing;
  let result: ScenarioResult;
  let errorTraceId: string;

  beforeAll(async () => {
    [sentry, allowed, denied] = await Promise.all([startRecorder(), startRecorder(), startRecorder()]);
    const dsn = `http://public@127.0.0.1:${sentry.port}/1`;
    const otlp = Sentry.getOtlpTracesEndpoint(dsn);
    expect(otlp?.url).toBe(`${sentry.origin}/api/1/integration/otlp/v1/traces/`);

    const isotrace = createIsotrace({ serviceName: 'agent-api', propagateTo: [`127.0.0.1:${allowed.port}`] });
    reader = new ViolationCountReader();
    sdk = new NodeSDK({
      serviceName: 'agent-api',
      spanProcessors: [isotrace.spanProcessor, new BatchSpanProcessor({ exporter: new OTLPTraceExporter(otlp) })],
      textMapPropagator: isotrace.propagator,
      instrumentations: [...isotrace.instrumentations],
      metricReaders: [reader],
    });
    sdk.start();
    Sentry.init({ dsn, integrations: [Sentry.openTelemetryIntegration()] });
    tracing = await isotrace.attach();

    result = await runScenario({ allowed: allowed.origin, denied: denied.origin });
    errorTraceId = await withRequestContext({ ...OWNER, name: 'failing.request' }, (ctx) => {
      Sentry.captureException(new Error('tool backend down'));
      return ctx.traceId;
    });
    await Sentry.flush(5000);
    await tracing.forceFlush();
  });
  afterAll(async () => {
    await tracing?.shutdown();
    await Sentry.close(2000);
    await sdk?.shutdown();
    await Promise.all([sentry, allowed, denied].map((recorder) => recorder?.close()));
  });

  it("stamps the request identity on the host's spans that reach Sentry's OTLP endpoint", () => {
    expectIdentityOnHostSpans(sentry.spans(), result, { clientSpans: true });
  });

  it('sends identity baggage only to the propagateTo destination', () => {
    expectBaggageOnlyToAllowed(allowed, denied, result);
  });

  it("exports isotrace's audited tool spans to Sentry and counts the planted leak", async () => {
    expectAuditedToolSpans(sentry.spans(), result);
    expect(await reader.count('context-owner')).toBeGreaterThanOrEqual(1);
  });

  it("puts Sentry's error event on the request's trace", () => {
    const envelopes = sentry.requests.filter((request) => request.path.startsWith('/api/1/envelope/'));
    const event = envelopes.map((envelope) => envelope.body).find((body) => body.includes('tool backend down'));
    expect(event, 'the error envelope reached the DSN listener').toBeDefined();
    expect(event).toContain(`"trace_id":"${errorTraceId}"`);
  });

  it("keeps Sentry's tracing pipeline running after isotrace's shutdown", async () => {
    await tracing.shutdown();
    trace.getTracer('host-app').startSpan(`${HOST_SPAN} after shutdown`).end();
    await tracing.forceFlush();
    await sentry.waitFor(() => sentry.spans().some((span) => span.name === `${HOST_SPAN} after shutdown`), 'the host span made after shutdown');
  });
});
