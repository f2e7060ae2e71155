// The OpenTelemetry SDK environment variables take effect as the specification says, an option
// given in code winning over its variable; and startTracing() passes instrumentations, span
// processors and a resource through. Spans are checked where a collector sees them: a real
// OTLP/HTTP sink on 127.0.0.1. The variables are set before each start and restored after.
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { diag, DiagLogLevel, trace } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { InstrumentationBase } from '@opentelemetry/instrumentation';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, type ReadableSpan, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace';
import { getRequestContext, IsotraceSetupError, startTracing, withRequestContext, type Tracing, type TracingOptions } from 'isotrace';
import { setupTestTracing } from 'isotrace/testing';
import { startOtlpSink, type OtlpSink } from '../../helpers/otlp-sink.js';
import { runNode } from '../../helpers/process.js';

const DISABLED_SERVICE = fileURLToPath(new URL('../../fixtures/otel-env/disabled-service.ts', import.meta.url));

const running: Tracing[] = [];
const savedEnv = new Map<string, string | undefined>();
const sinks: OtlpSink[] = [];

function setEnv(variables: Record<string, string>): void {
  for (const [name, value] of Object.entries(variables)) {
    if (!savedEnv.has(name)) savedEnv.set(name, process.env[name]);
    process.env[name] = value;
  }
}

async function sink(): Promise<OtlpSink> {
  const started = await startOtlpSink();
  sinks.push(started);
  return started;
}

function start(options: TracingOptions): Tracing {
  const tracing = startTracing(options);
  running.push(tracing);
  return tracing;
}

afterEach(async () => {
  for (const tracing of running.splice(0)) await tracing.shutdown();
  for (const [name, value] of savedEnv) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  savedEnv.clear();
  for (const started of sinks.splice(0)) await started.close();
});

/** One request span named `name`, then a flush: what the sink should then hold. */
async function request(tracing: Tracing, name: string): Promise<void> {
  await withRequestContext({ tenantId: 't1', userId: 'u1', name }, () => undefined);
  await tracing.forceFlush();
}

/** The resource attributes of the exports that carry a span named `spanName`, as the collector received them. */
function resourceOf(received: OtlpSink, spanName: string): Record<string, unknown> {
  for (const payload of received.payloads) {
    for (const resourceSpans of payload.resourceSpans ?? []) {
      const names = (resourceSpans.scopeSpans ?? []).flatMap((scope) => (scope.spans ?? []).map((span) => span.name));
      if (!names.includes(spanName)) continue;
      const attributes = (resourceSpans.resource?.attributes ?? []) as ReadonlyArray<{ key: string; value: { stringValue?: string } }>;
      return Object.fromEntries(attributes.map(({ key, value }) => [key, value.stringValue]));
    }
  }
  throw new Error(`no export carried a span named ${spanName}`);
}

/** An exporter that holds the first export until released, so the batch processor's queue fills behind it. */
class GatedExporter implements SpanExporter {
  exported = 0;
  #release: (() => void) | undefined;
  readonly #held = new Promise<void>((resolve) => (this.#release = resolve));
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    void this.#held.then(() => {
      this.exported += spans.length;
      done({ code: ExportResultCode.SUCCESS });
    });
  }
  release(): void {
    this.#release?.();
  }
  async shutdown(): Promise<void> {}
}

describe('service name and resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES)', () => {
  it('OTEL_SERVICE_NAME names the service when serviceName is left out, over service.name in OTEL_RESOURCE_ATTRIBUTES', async () => {
    const collector = await sink();
    setEnv({ OTEL_SERVICE_NAME: 'from-env', OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attributes,deployment.environment.name=staging' });
    const tracing = start({ endpoint: collector.url });
    expect(tracing.serviceName).toBe('from-env');
    await request(tracing, 'env-named');
    expect(resourceOf(collector, 'env-named')).toMatchObject({ 'service.name': 'from-env', 'deployment.environment.name': 'staging' });
  });

  it('service.name in OTEL_RESOURCE_ATTRIBUTES names the service when neither serviceName nor OTEL_SERVICE_NAME is set', async () => {
    const collector = await sink();
    setEnv({ OTEL_SERVICE_NAME: '', OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attributes' });
    const tracing = start({ endpoint: collector.url });
    await request(tracing, 'attribute-named');
    expect(resourceOf(collector, 'attribute-named')['service.name']).toBe('from-attributes');
  });

  it('the serviceName option wins over OTEL_SERVICE_NAME (code over environment, as in OpenTelemetry JS)', async () => {
    const collector = await sink();
    setEnv({ OTEL_SERVICE_NAME: 'from-env' });
    const tracing = start({ serviceName: 'from-code', endpoint: collector.url });
    await request(tracing, 'code-named');
    expect(resourceOf(collector, 'code-named')['service.name']).toBe('from-code');
  });

  it('without any service name it is still a TypeError naming serviceName', async () => {
    setEnv({ OTEL_SERVICE_NAME: '', OTEL_RESOURCE_ATTRIBUTES: '' });
    await expect(startTracing({ exporter: 'none' })).rejects.toThrow(/'serviceName' must be a non-empty string \(or set OTEL_SERVICE_NAME\)/);
  });

  it('the resource option is merged under OTEL_RESOURCE_ATTRIBUTES and the service name', async () => {
    const collector = await sink();
    setEnv({ OTEL_RESOURCE_ATTRIBUTES: 'team=from-env' });
    const resource = resourceFromAttributes({ 'service.name': 'from-resource', 'service.version': '1.2.3', team: 'from-code' });
    const tracing = start({ serviceName: 'svc', resource, endpoint: collector.url });
    await request(tracing, 'with-resource');
    expect(resourceOf(collector, 'with-resource')).toMatchObject({ 'service.name': 'svc', 'service.version': '1.2.3', team: 'from-env' });
  });
});

describe('sampling (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG)', () => {
  it('OTEL_TRACES_SAMPLER=always_off exports nothing, and requests still run in their context', async () => {
    setEnv({ OTEL_TRACES_SAMPLER: 'always_off' });
    const exporter = new GatedExporter();
    exporter.release();
    const tracing = start({ serviceName: 'sampled-off', exporter });
    const seen = await withRequestContext({ tenantId: 't1', userId: 'u1' }, async () => {
      await new Promise((resolve) => setImmediate(resolve));
      return getRequestContext().tenantId;
    });
    await tracing.forceFlush();
    expect(seen).toBe('t1');
    expect(tracing.stats().ended).toBe(0);
    expect(exporter.exported).toBe(0);
  });

  it('OTEL_TRACES_SAMPLER=traceidratio with OTEL_TRACES_SAMPLER_ARG=0 samples no trace', async () => {
    setEnv({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' });
    const exporter = new GatedExporter();
    exporter.release();
    const tracing = start({ serviceName: 'ratio-zero', exporter });
    for (let i = 0; i < 20; i++) await withRequestContext({ tenantId: 't1', userId: `u${i}` }, () => undefined);
    await tracing.forceFlush();
    expect(tracing.stats().ended).toBe(0);
    expect(exporter.exported).toBe(0);
  });

  it('the sampler option wins over OTEL_TRACES_SAMPLER', async () => {
    const collector = await sink();
    setEnv({ OTEL_TRACES_SAMPLER: 'always_off' });
    const tracing = start({ serviceName: 'code-sampler', sampler: new AlwaysOnSampler(), endpoint: collector.url });
    await request(tracing, 'sampled-by-code');
    expect(collector.spans().map((span) => span.name)).toContain('sampled-by-code');
  });

  it('an unknown OTEL_TRACES_SAMPLER is reported once and means the default (everything sampled)', async () => {
    const collector = await sink();
    const warnings: string[] = [];
    diag.setLogger({ error: () => {}, warn: (message: string) => warnings.push(message), info: () => {}, debug: () => {}, verbose: () => {} }, DiagLogLevel.WARN);
    try {
      setEnv({ OTEL_TRACES_SAMPLER: 'jaeger_remote' });
      const tracing = start({ serviceName: 'unknown-sampler', endpoint: collector.url });
      await request(tracing, 'sampled-by-default');
    } finally {
      diag.disable();
    }
    expect(collector.spans().map((span) => span.name)).toContain('sampled-by-default');
    expect(warnings.filter((message) => message.includes('OTEL_TRACES_SAMPLER="jaeger_remote"'))).toHaveLength(1);
  });
});

describe('batch span processor (OTEL_BSP_*)', () => {
  it('OTEL_BSP_MAX_EXPORT_BATCH_SIZE bounds the spans per export the collector receives', async () => {
    const collector = await sink();
    setEnv({ OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2' });
    const tracing = start({ serviceName: 'small-batches', endpoint: collector.url });
    for (let i = 0; i < 7; i++) await withRequestContext({ tenantId: 't1', userId: 'u1', name: `batched-${i}` }, () => undefined);
    await tracing.forceFlush();
    await collector.waitForSpans((spans) => spans.filter((span) => span.name.startsWith('batched-')).length === 7);
    const perExport = collector.payloads.map((payload) => (payload.resourceSpans ?? []).flatMap((r) => (r.scopeSpans ?? []).flatMap((s) => s.spans ?? [])).length);
    expect(Math.max(...perExport)).toBeLessThanOrEqual(2);
    expect(perExport.length).toBeGreaterThanOrEqual(4);
  });

  it('OTEL_BSP_MAX_QUEUE_SIZE bounds the queue behind a busy exporter; spans beyond it are dropped and counted', async () => {
    setEnv({ OTEL_BSP_MAX_QUEUE_SIZE: '5', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '1' });
    const exporter = new GatedExporter();
    const tracing = start({ serviceName: 'small-queue', exporter });
    // The first span's export is held, so the next ones wait in the queue.
    for (let i = 0; i < 21; i++) await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => undefined);
    exporter.release();
    await tracing.forceFlush();
    expect(tracing.stats()).toMatchObject({ ended: 21, exported: 6, dropped: 15 });
  });

  it('the maxQueueSize option wins over OTEL_BSP_MAX_QUEUE_SIZE', async () => {
    setEnv({ OTEL_BSP_MAX_QUEUE_SIZE: '5', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '1' });
    const exporter = new GatedExporter();
    const tracing = start({ serviceName: 'code-queue', exporter, maxQueueSize: 100 });
    for (let i = 0; i < 21; i++) await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => undefined);
    exporter.release();
    await tracing.forceFlush();
    expect(tracing.stats()).toMatchObject({ ended: 21, exported: 21, dropped: 0 });
  });
});

describe('OTLP exporter variables (OTEL_EXPORTER_OTLP_*)', () => {
  it('OTEL_EXPORTER_OTLP_TRACES_TIMEOUT bounds each export when flushTimeoutMs is not given', async () => {
    const collector = await sink();
    collector.respondWith({ delayMs: 4000 });
    setEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${collector.url}/v1/traces`, OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '200' });
    const tracing = start({ serviceName: 'export-timeout', metricReaders: [] });
    await request(tracing, 'timed-out');
    expect(tracing.stats()).toMatchObject({ ended: 1, exported: 0, failed: 1 });
  });
});

describe('OTEL_SDK_DISABLED=true', () => {
  it('startTracing() exports nothing, and requests still run isolated with their context and SharedState', async () => {
    const collector = await sink();
    // A fresh process: a context manager an earlier start registered (kept after shutdown) must not stand in for isotrace's.
    const run = await runNode([DISABLED_SERVICE], { env: { ...process.env, OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: collector.url } });
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout.trim()) as { seen: string[]; stats: unknown };
    expect(report.seen).toEqual(['t1:t1', 't2:t2', 't3:t3']);
    expect(report.stats).toEqual({ ended: 0, exported: 0, failed: 0, dropped: 0 });
    expect(collector.requests).toBe(0);
  });

  it('setupTestTracing() refuses it: a kit that records nothing would pass every audit', async () => {
    setEnv({ OTEL_SDK_DISABLED: 'TRUE' });
    await expect(setupTestTracing()).rejects.toThrow(IsotraceSetupError);
  });
});

/** An instrumentation of the application's own: its spans go through isotrace's pipeline. */
class WidgetInstrumentation extends InstrumentationBase {
  constructor() {
    super('widget-instrumentation', '1.0.0', {});
  }
  protected init(): [] {
    return [];
  }
  work(): void {
    this.tracer.startSpan('widget.work').end();
  }
}

describe('pass-throughs', () => {
  it('instrumentations are registered on isotrace\'s provider; their spans carry the request identity', async () => {
    const collector = await sink();
    const widget = new WidgetInstrumentation();
    const tracing = start({ serviceName: 'with-instrumentation', endpoint: collector.url, instrumentations: [[widget]] });
    await withRequestContext({ tenantId: 'acme', userId: 'u1' }, () => widget.work());
    await tracing.forceFlush();
    const span = collector.spans().find((s) => s.name === 'widget.work');
    expect(span?.attributes['isotrace.tenant_id']).toBe('acme');
  });

  it('an HTTP instrumentation of the application\'s own is a TypeError while isotrace instruments HTTP', async () => {
    const { HttpInstrumentation } = await import('@opentelemetry/instrumentation-http');
    await expect(startTracing({ serviceName: 's', exporter: 'none', instrumentations: [new HttpInstrumentation()] })).rejects.toThrow(/'instrumentations' holds @opentelemetry\/instrumentation-http/);
  });

  it('spanProcessors run after the identity processor and beside the export, and are shut down with it', async () => {
    const collector = await sink();
    const seen: ReadableSpan[] = [];
    let shutDown = 0;
    const mine: SpanProcessor = {
      onStart: () => {},
      onEnd: (span) => seen.push(span),
      forceFlush: async () => {},
      shutdown: async () => {
        shutDown++;
      },
    };
    const tracing = start({ serviceName: 'with-processor', endpoint: collector.url, spanProcessors: [mine] });
    await withRequestContext({ tenantId: 'acme', userId: 'u1', name: 'processed' }, () => trace.getTracer('app').startSpan('inner').end());
    await tracing.forceFlush();
    expect(seen.find((span) => span.name === 'inner')?.attributes['isotrace.tenant_id']).toBe('acme');
    expect(collector.spans().map((span) => span.name)).toEqual(expect.arrayContaining(['processed', 'inner']));
    await tracing.shutdown();
    expect(shutDown).toBe(1);
  });
});
