/**
 * The repository's collector configs, run by the real Jaeger v2 binary:
 * jaeger.yaml stores OTLP and serves it through api/v3, and otel-collector.yaml
 * in front of it deletes tool arguments and results unless told to keep them.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { ExportResult } from '@opentelemetry/core';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import {
  JaegerHarnessError,
  attributesOf,
  ensureJaegerBinary,
  getTrace,
  listSpans,
  startJaeger,
  waitForTraces,
} from '../helpers/jaeger.js';
import type { CollectorProcess, JaegerProcess } from '../helpers/jaeger.js';

const TOOL_ARGUMENTS = '{"orderId":"A-1001","email":"ada@example.com"}';
const TOOL_RESULT = '{"status":"shipped"}';
const ARRIVAL_TIMEOUT_MS = 20_000;

interface SentSpan {
  readonly service: string;
  readonly traceId: string;
  readonly spanId: string;
}

/** Sends one tool span over OTLP/HTTP with the OpenTelemetry JS SDK; fails unless the receiver accepted it. */
async function sendToolSpan(otlpHttpUrl: string, label: string): Promise<SentSpan> {
  const service = `isotrace-e2e-${label}-${randomUUID().slice(0, 8)}`;
  const results: ExportResult[] = [];
  const otlp = new OTLPTraceExporter({ url: `${otlpHttpUrl}/v1/traces` });
  const recording: SpanExporter = {
    export: (spans, done) =>
      otlp.export(spans, (result) => {
        results.push(result);
        done(result);
      }),
    shutdown: () => otlp.shutdown(),
    forceFlush: () => otlp.forceFlush(),
  };
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': service }),
    spanProcessors: [new SimpleSpanProcessor({ exporter: recording })],
  });
  const span = provider.getTracer('isotrace-e2e').startSpan('execute_tool lookup_order', {
    attributes: {
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'lookup_order',
      'gen_ai.tool.call.id': 'call-7',
      'gen_ai.tool.call.arguments': TOOL_ARGUMENTS,
      'gen_ai.tool.call.result': TOOL_RESULT,
      'isotrace.tenant': 'tenant-a',
    },
  });
  span.end();
  await provider.shutdown();
  expect(results.map((result) => result.code), `export to ${otlpHttpUrl} failed: ${String(results[0]?.error)}`).toEqual([
    ExportResultCode.SUCCESS,
  ]);
  const { traceId, spanId } = span.spanContext();
  return { service, traceId, spanId };
}

/** Waits until Jaeger has the span and returns its attributes. */
async function storedAttributes(jaeger: JaegerProcess, sent: SentSpan): Promise<Record<string, unknown>> {
  const found = await waitForTraces(jaeger.queryUrl, sent.service, (r) => listSpans(r).length > 0, ARRIVAL_TIMEOUT_MS);
  const spans = listSpans(found);
  expect(spans.map(({ span }) => [span.traceId, span.spanId, span.name])).toEqual([
    [sent.traceId, sent.spanId, 'execute_tool lookup_order'],
  ]);
  expect(attributesOf(spans[0]?.resourceAttributes)['service.name']).toBe(sent.service);
  return attributesOf(spans[0]?.span.attributes);
}

describe('collector-config/*.yaml on the real Jaeger v2 binary', () => {
  let jaeger: JaegerProcess | undefined;
  let redacting: CollectorProcess | undefined;
  let keeping: CollectorProcess | undefined;

  // Separate from the starts below: only a machine without the cached binary builds it (minutes).
  beforeAll(async () => {
    await ensureJaegerBinary();
  }, 30 * 60_000);

  beforeAll(async () => {
    jaeger = await startJaeger();
    const exportTo = jaeger.otlpGrpcEndpoint;
    [redacting, keeping] = await Promise.all([
      startJaeger({ config: 'collector', exportTo }),
      startJaeger({ config: 'collector', exportTo, keepToolArguments: true }),
    ]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([redacting?.stop(), keeping?.stop()]);
    await jaeger?.stop();
  }, 60_000);

  function running<T>(started: T | undefined): T {
    if (started === undefined) throw new Error('beforeAll did not start Jaeger; see its error above');
    return started;
  }

  it('jaeger.yaml stores OTLP/HTTP spans and serves them by trace id through api/v3', async () => {
    const store = running(jaeger);
    const sent = await sendToolSpan(store.otlpHttpUrl, 'direct');

    const attributes = await storedAttributes(store, sent);
    expect(attributes['gen_ai.tool.call.arguments']).toBe(TOOL_ARGUMENTS);

    const byId = await getTrace(store.queryUrl, sent.traceId);
    expect(listSpans(byId).map(({ span }) => span.spanId)).toEqual([sent.spanId]);
    expect(await getTrace(store.queryUrl, '0123456789abcdef0123456789abcdef')).toBeUndefined();
  });

  it('otel-collector.yaml deletes tool arguments and results by default, keeping every other attribute', async () => {
    const sent = await sendToolSpan(running(redacting).otlpHttpUrl, 'redacted');

    const attributes = await storedAttributes(running(jaeger), sent);
    expect(attributes).toMatchObject({
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'lookup_order',
      'gen_ai.tool.call.id': 'call-7',
      'isotrace.tenant': 'tenant-a',
    });
    expect(attributes).not.toHaveProperty(['gen_ai.tool.call.arguments']);
    expect(attributes).not.toHaveProperty(['gen_ai.tool.call.result']);
  });

  it('otel-collector.yaml passes tool arguments and results through with ISOTRACE_COLLECTOR_KEEP_TOOL_ARGUMENTS=true', async () => {
    const sent = await sendToolSpan(running(keeping).otlpHttpUrl, 'kept');

    const attributes = await storedAttributes(running(jaeger), sent);
    expect(attributes).toMatchObject({
      'gen_ai.tool.name': 'lookup_order',
      'gen_ai.tool.call.arguments': TOOL_ARGUMENTS,
      'gen_ai.tool.call.result': TOOL_RESULT,
    });
  });

  it('otel-collector.yaml refuses to start when the keep flag is neither true nor false', async () => {
    const started = startJaeger({
      config: 'collector',
      exportTo: running(jaeger).otlpGrpcEndpoint,
      env: { ISOTRACE_COLLECTOR_KEEP_TOOL_ARGUMENTS: 'yes' },
    });

    await expect(started).rejects.toThrow(JaegerHarnessError);
    await expect(started).rejects.toThrow(/keep_tool_arguments_yes/);
  });

  it('startJaeger rejects with the loader error when a config does not load', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'isotrace-jaeger-'));
    try {
      const configFile = join(dir, 'broken.yaml');
      await writeFile(
        configFile,
        [
          'receivers: { otlp: { protocols: { http: { endpoint: "${env:ISOTRACE_JAEGER_OTLP_HTTP_ENDPOINT}" } } } }',
          'exporters: { no_such_exporter: {} }',
          'service: { pipelines: { traces: { receivers: [otlp], exporters: [no_such_exporter] } } }',
          '',
        ].join('\n'),
      );

      const started = startJaeger({ configFile });

      await expect(started).rejects.toThrow(JaegerHarnessError);
      await expect(started).rejects.toThrow(/no_such_exporter/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
