// isotrace in a service whose LLM observability is Langfuse's OpenTelemetry span processor
// (@langfuse/otel, current major): it sits in the host's NodeSDK beside isotrace's parts
// and exports, with its default filter (LLM spans: gen_ai.* attributes), to a local
// listener standing in for Langfuse's OTLP endpoint.
import { trace } from '@opentelemetry/api';
import type { SpanProcessor } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LangfuseSpanProcessor } from 'isotrace-fixture-langfuse-host';
import { HOST_SPAN, type ScenarioResult } from '../../fixtures/otel-hosts/scenario.ts';
import { expectAuditedToolSpans, expectBaggageOnlyToAllowed, expectIdentityOnHostSpans } from './host-expectations.ts';
import { OtelHost } from './host-setup.ts';

describe("isotrace beside Langfuse's span processor", () => {
  const host = new OtelHost();
  let result: ScenarioResult;

  beforeAll(async () => {
    await host.start({
      // Langfuse's processor is built on OpenTelemetry SDK 2.x; it takes the spans of this 3.x provider as a processor does.
      processor: (langfuse) =>
        new LangfuseSpanProcessor({ publicKey: 'pk-lf-test', secretKey: 'sk-lf-test', baseUrl: langfuse.origin, exportMode: 'immediate', mediaUploadEnabled: false }) as unknown as SpanProcessor,
    });
    result = await host.runScenario();
    await host.tracing.forceFlush();
    await host.backend.waitFor(() => host.backend.spans().some((span) => span.name === 'execute_tool lookup'), 'the tool spans');
  });
  afterAll(() => host.close());

  it("exports to Langfuse's OTLP endpoint, with its credentials", () => {
    const exports = host.backend.requests.filter((request) => request.path === '/api/public/otel/v1/traces');
    expect(exports.length).toBeGreaterThan(0);
    expect(exports[0]!.headers.authorization).toBe(`Basic ${Buffer.from('pk-lf-test:sk-lf-test').toString('base64')}`);
  });

  it("stamps the request identity on the host's LLM span that Langfuse exports", () => {
    expectIdentityOnHostSpans(host.backend.spans(), result, { clientSpans: false });
  });

  it('sends identity baggage only to the propagateTo destination', () => {
    expectBaggageOnlyToAllowed(host.allowed, host.denied, result);
  });

  it("exports isotrace's audited tool spans (GenAI execute_tool) through Langfuse and counts the planted leak", async () => {
    expectAuditedToolSpans(host.backend.spans(), result);
    expect(await host.reader.count('context-owner')).toBeGreaterThanOrEqual(1);
  });

  it("keeps Langfuse's export running after isotrace's shutdown", async () => {
    await host.tracing.shutdown();
    trace.getTracer('host-app').startSpan(`${HOST_SPAN} after shutdown`, { attributes: { 'gen_ai.operation.name': 'chat' } }).end();
    await host.tracing.forceFlush();
    await host.backend.waitFor(() => host.backend.spans().some((span) => span.name === `${HOST_SPAN} after shutdown`), 'the LLM span made after shutdown');
  });
});
