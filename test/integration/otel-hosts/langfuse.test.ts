// isotrace in a service whose LLM observability is Langfuse's OpenTelemetry span processor
// (@langfuse/otel, current major): it sits in the host's NodeSDK beside isotrace's parts
// and exports, with its default filter (LLM spans: gen_ai.* attributes), to a local
// listener standing in for Langfuse's OTLP endpoint.
import { trace } from '@opentelemetry/api';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { SpanProcessor } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tracing } from 'isotrace';
import { createIsotrace } from 'isotrace/otel';
import { LangfuseSpanProcessor } from 'isotrace-fixture-langfuse-host';
import { startRecorder, type Recorder } from '../../fixtures/otel-hosts/recorder.ts';
import { HOST_SPAN, runScenario, type ScenarioResult } from '../../fixtures/otel-hosts/scenario.ts';
import { ViolationCountReader } from '../../fixtures/otel-hosts/violation-reader.ts';
import { expectAuditedToolSpans, expectBaggageOnlyToAllowed, expectIdentityOnHostSpans } from './host-expectations.ts';

describe("isotrace beside Langfuse's span processor", () => {
  let langfuse: Recorder;
  let allowed: Recorder;
  let denied: Recorder;
  let sdk: NodeSDK;
  let reader: ViolationCountReader;
  let tracing: Tracing;
  let result: ScenarioResult;

  beforeAll(async () => {
    [langfuse, allowed, denied] = await Promise.all([startRecorder(), startRecorder(), startRecorder()]);
    const isotrace = createIsotrace({ serviceName: 'agent-api', propagateTo: [`127.0.0.1:${allowed.port}`] });
    // Langfuse's processor is built on OpenTelemetry SDK 2.x; it takes the spans of this 3.x provider as a processor does.
    const langfuseProcessor = new LangfuseSpanProcessor({ publicKey: 'pk-lf-test', secretKey: 'sk-lf-test', baseUrl: langfuse.origin, exportMode: 'immediate', mediaUploadEnabled: false });
    reader = new ViolationCountReader();
    sdk = new NodeSDK({
      serviceName: 'agent-api',
      spanProcessors: [isotrace.spanProcessor, langfuseProcessor as unknown as SpanProcessor],
      textMapPropagator: isotrace.propagator,
      instrumentations: [...isotrace.instrumentations],
      metricReaders: [reader],
    });
    sdk.start();
    tracing = await isotrace.attach();
    result = await runScenario({ allowed: allowed.origin, denied: denied.origin });
    await tracing.forceFlush();
    await langfuse.waitFor(() => langfuse.spans().some((span) => span.name === 'execute_tool lookup'), 'the tool spans');
  });
  afterAll(async () => {
    await tracing?.shutdown();
    await sdk?.shutdown();
    await Promise.all([langfuse, allowed, denied].map((recorder) => recorder?.close()));
  });

  it("exports to Langfuse's OTLP endpoint, with its credentials", () => {
    const exports = langfuse.requests.filter((request) => request.path === '/api/public/otel/v1/traces');
    expect(exports.length).toBeGreaterThan(0);
    expect(exports[0]!.headers.authorization).toBe(`Basic ${Buffer.from('pk-lf-test:sk-lf-test').toString('base64')}`);
  });

  it("stamps the request identity on the host's LLM span that Langfuse exports", () => {
    expectIdentityOnHostSpans(langfuse.spans(), result, { clientSpans: false });
  });

  it('sends identity baggage only to the propagateTo destination', () => {
    expectBaggageOnlyToAllowed(allowed, denied, result);
  });

  it("exports isotrace's audited tool spans (GenAI execute_tool) through Langfuse and counts the planted leak", async () => {
    expectAuditedToolSpans(langfuse.spans(), result);
    expect(await reader.count('context-owner')).toBeGreaterThanOrEqual(1);
  });

  it("keeps Langfuse's export running after isotrace's shutdown", async () => {
    await tracing.shutdown();
    trace.getTracer('host-app').startSpan(`${HOST_SPAN} after shutdown`, { attributes: { 'gen_ai.operation.name': 'chat' } }).end();
    await tracing.forceFlush();
    await langfuse.waitFor(() => langfuse.spans().some((span) => span.name === `${HOST_SPAN} after shutdown`), 'the LLM span made after shutdown');
  });
});
