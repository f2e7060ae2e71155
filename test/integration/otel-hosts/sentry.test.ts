// isotrace in a service that runs Sentry (@sentry/node, current major) with its own
// OpenTelemetry pipeline, set up the way Sentry documents it ("Use your own OpenTelemetry
// pipeline"): the provider first, spans to Sentry's OTLP endpoint via getOtlpTracesEndpoint(),
// then Sentry.init() with openTelemetryIntegration(). The DSN points at a local listener
// that records Sentry's envelopes and OTLP exports.
import { trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import * as Sentry from '@sentry/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withRequestContext } from 'isotrace';
import { HOST_SPAN, OWNER, type ScenarioResult } from '../../fixtures/otel-hosts/scenario.ts';
import { expectAuditedToolSpans, expectBaggageOnlyToAllowed, expectIdentityOnHostSpans } from './host-expectations.ts';
import { OtelHost } from './host-setup.ts';

describe('isotrace inside a Sentry + OpenTelemetry setup', () => {
  const host = new OtelHost();
  let result: ScenarioResult;
  let errorTraceId: string;

  beforeAll(async () => {
    let dsn = '';
    await host.start({
      processor: (sentry) => {
        dsn = `http://public@127.0.0.1:${sentry.port}/1`;
        const otlp = Sentry.getOtlpTracesEndpoint(dsn);
        expect(otlp?.url).toBe(`${sentry.origin}/api/1/integration/otlp/v1/traces/`);
        return new BatchSpanProcessor({ exporter: new OTLPTraceExporter(otlp) });
      },
      afterSdkStart: () => Sentry.init({ dsn, integrations: [Sentry.openTelemetryIntegration()] }),
      beforeSdkShutdown: () => Sentry.close(2000),
    });

    result = await host.runScenario();
    errorTraceId = await withRequestContext({ ...OWNER, name: 'failing.request' }, (ctx) => {
      Sentry.captureException(new Error('tool backend down'));
      return ctx.traceId;
    });
    await Sentry.flush(5000);
    await host.tracing.forceFlush();
  });
  afterAll(() => host.close());

  it("stamps the request identity on the host's spans that reach Sentry's OTLP endpoint", () => {
    expectIdentityOnHostSpans(host.backend.spans(), result, { clientSpans: true });
  });

  it('sends identity baggage only to the propagateTo destination', () => {
    expectBaggageOnlyToAllowed(host.allowed, host.denied, result);
  });

  it("exports isotrace's audited tool spans to Sentry and counts the planted leak", async () => {
    expectAuditedToolSpans(host.backend.spans(), result);
    expect(await host.reader.count('context-owner')).toBeGreaterThanOrEqual(1);
  });

  it("puts Sentry's error event on the request's trace", () => {
    const envelopes = host.backend.requests.filter((request) => request.path.startsWith('/api/1/envelope/'));
    const event = envelopes.map((envelope) => envelope.body).find((body) => body.includes('tool backend down'));
    expect(event, 'the error envelope reached the DSN listener').toBeDefined();
    expect(event).toContain(`"trace_id":"${errorTraceId}"`);
  });

  it("keeps Sentry's tracing pipeline running after isotrace's shutdown", async () => {
    await host.tracing.shutdown();
    trace.getTracer('host-app').startSpan(`${HOST_SPAN} after shutdown`).end();
    await host.tracing.forceFlush();
    await host.backend.waitFor(() => host.backend.spans().some((span) => span.name === `${HOST_SPAN} after shutdown`), 'the host span made after shutdown');
  });
});
