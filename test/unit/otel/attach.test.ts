// createIsotrace().attach() checks the host's OpenTelemetry setup by behaviour and refuses,
// naming what is missing and how to add it, wherever the setup cannot isolate requests.
import { context, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { AlwaysOffSampler, InMemorySpanExporter, SimpleSpanProcessor, StackContextManager } from '@opentelemetry/sdk-trace';
import { afterEach, describe, expect, it } from 'vitest';
import { IsotraceSetupError, TracingAlreadyStartedError, withRequestContext, type Tracing } from 'isotrace';
import { createIsotrace, type Isotrace, type IsotraceOptions } from 'isotrace/otel';
import { startRecorder } from '../../fixtures/otel-hosts/recorder.ts';

const running: Array<{ sdk?: NodeSDK; tracing?: Tracing; isotrace: Isotrace }> = [];

/** A host NodeSDK built by `configure` from isotrace's parts, started. */
function host(configure: (isotrace: Isotrace, exporter: InMemorySpanExporter) => ConstructorParameters<typeof NodeSDK>[0], options: Partial<IsotraceOptions> = {}) {
  const isotrace = createIsotrace({ serviceName: 'agent-api', ...options });
  const exporter = new InMemorySpanExporter();
  const sdk = new NodeSDK({ serviceName: 'agent-api', ...configure(isotrace, exporter) });
  sdk.start();
  const entry: { sdk: NodeSDK; tracing?: Tracing; isotrace: Isotrace } = { sdk, isotrace };
  running.push(entry);
  return { isotrace, exporter, entry };
}

afterEach(async () => {
  for (const { sdk, tracing, isotrace } of running.splice(0)) {
    await tracing?.shutdown();
    await sdk?.shutdown();
    for (const instrumentation of isotrace.instrumentations) instrumentation.disable();
  }
  trace.disable();
  propagation.disable();
  context.disable();
});

async function refusal(isotrace: Isotrace): Promise<IsotraceSetupError> {
  const error = await isotrace.attach().then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(IsotraceSetupError);
  return error as IsotraceSetupError;
}

describe('attach() refuses a setup that cannot isolate requests', () => {
  it('with no OpenTelemetry set up at all: context manager, propagator and span processor are missing', async () => {
    const isotrace = createIsotrace({ serviceName: 'agent-api' });
    running.push({ isotrace });
    const error = await refusal(isotrace);
    expect([...error.missing].sort()).toEqual(['context-manager', 'propagator', 'span-processor']);
    expect(error.message).toMatch(/AsyncLocalStorageContextManager/);
    expect(error.message).toMatch(/textMapPropagator: isotrace\.propagator/);
    expect(error.message).toMatch(/no tracer provider is registered/);
    await expect(withRequestContext({ tenantId: 't', userId: 'u' }, () => 'ran')).rejects.toThrow(/needs isotrace to be started/);
  });

  it("with the host's default propagator, which sends W3C baggage everywhere", async () => {
    const { isotrace } = host((parts) => ({ spanProcessors: [parts.spanProcessor] }));
    const error = await refusal(isotrace);
    expect([...error.missing].sort()).toEqual(['baggage', 'propagator']);
    expect(error.message).toMatch(/writes W3C baggage, request identity included, to every destination/);
  });

  it("with isotrace's propagator beside a W3CBaggagePropagator in a composite", async () => {
    const { isotrace } = host((parts) => ({
      spanProcessors: [parts.spanProcessor],
      textMapPropagator: new CompositePropagator({ propagators: [parts.propagator, new W3CBaggagePropagator()] }),
    }));
    expect((await refusal(isotrace)).missing).toEqual(['baggage']);
  });

  it("without isotrace's span processor on the active provider", async () => {
    const { isotrace } = host((parts, exporter) => ({ spanProcessors: [new SimpleSpanProcessor({ exporter })], textMapPropagator: parts.propagator }));
    const error = await refusal(isotrace);
    expect(error.missing).toEqual(['span-processor']);
    expect(error.message).toMatch(/spanProcessors: \[isotrace\.spanProcessor/);
  });

  it('with a context manager that loses the context across await', async () => {
    const { isotrace } = host((parts) => ({ spanProcessors: [parts.spanProcessor], textMapPropagator: parts.propagator, contextManager: new StackContextManager() }));
    expect((await refusal(isotrace)).missing).toEqual(['context-manager']);
  });

  it('with a sampler that records nothing: the span processor cannot be verified', async () => {
    const { isotrace } = host((parts) => ({ spanProcessors: [parts.spanProcessor], textMapPropagator: parts.propagator, sampler: new AlwaysOffSampler() }));
    const error = await refusal(isotrace);
    expect(error.missing).toEqual(['span-processor']);
    expect(error.message).toMatch(/records no span/);
  });
});

describe('attach() accepts a setup that isolates', () => {
  it("isotrace's propagator inside a composite, its processor before the host's exporter", async () => {
    const { isotrace, exporter, entry } = host((parts, spanExporter) => ({
      spanProcessors: [parts.spanProcessor, new SimpleSpanProcessor({ exporter: spanExporter })],
      textMapPropagator: new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), parts.propagator] }),
      instrumentations: [...parts.instrumentations],
    }), { propagateTo: ['inventory.internal'] });
    entry.tracing = await isotrace.attach();
    const requestId = await withRequestContext({ tenantId: 'acme', userId: 'ada' }, (ctx) => {
      trace.getTracer('host').startSpan('host.child').end();
      return ctx.requestId;
    });
    await entry.tracing.forceFlush();
    const child = exporter.getFinishedSpans().find((span) => span.name === 'host.child');
    expect(child?.attributes).toMatchObject({ 'isotrace.request_id': requestId, 'isotrace.tenant_id': 'acme', 'user.id': 'ada' });
    // The probes left nothing behind for the host's exporter.
    expect(exporter.getFinishedSpans().map((span) => span.name)).not.toContain('isotrace setup probe');
    await expect(isotrace.attach()).rejects.toThrow(TracingAlreadyStartedError);
  });

  it("its shutdown leaves the host's provider and propagator registered, and can attach again", async () => {
    const { isotrace, exporter, entry } = host((parts, spanExporter) => ({ spanProcessors: [parts.spanProcessor, new SimpleSpanProcessor({ exporter: spanExporter })], textMapPropagator: parts.propagator }));
    const tracing = await isotrace.attach();
    await tracing.shutdown();
    const span = trace.getTracer('host').startSpan('host.after');
    const carrier: Record<string, string> = {};
    propagation.inject(trace.setSpan(ROOT_CONTEXT, span), carrier);
    span.end();
    await tracing.forceFlush();
    expect(exporter.getFinishedSpans().map((finished) => finished.name)).toContain('host.after');
    expect(carrier.traceparent).toContain(span.spanContext().traceId);
    entry.tracing = await isotrace.attach();
    await expect(withRequestContext({ tenantId: 't', userId: 'u' }, (ctx) => ctx.tenantId)).resolves.toBe('t');
  });
});

describe("attach() enables isotrace's instrumentations", () => {
  it('even when the host did not list them and an earlier isotrace left them off: baggage reaches the propagateTo destination', async () => {
    const target = await startRecorder();
    try {
      const { isotrace, entry } = host((parts) => ({ spanProcessors: [parts.spanProcessor], textMapPropagator: parts.propagator }), { propagateTo: [`127.0.0.1:${target.port}`] });
      for (const instrumentation of isotrace.instrumentations) instrumentation.disable();
      entry.tracing = await isotrace.attach();
      await withRequestContext({ tenantId: 'acme', userId: 'ada' }, async () => {
        await (await fetch(`${target.origin}/fetch`)).text();
      });
      expect(target.requests[0]?.headers.baggage).toContain('isotrace.tenant_id=acme');
    } finally {
      await target.close();
    }
  });
});

describe('createIsotrace options', () => {
  it.each(['exporter', 'endpoint', 'sampler', 'metricReaders', 'maxQueueSize'])("rejects '%s', which the host's setup owns, with a TypeError saying where it goes", (option) => {
    expect(() => createIsotrace({ serviceName: 's', [option]: undefined } as IsotraceOptions)).toThrow(new RegExp(`createIsotrace: option '${option}' belongs to the host's OpenTelemetry setup`));
  });

  it('checks the options startTracing() checks, naming createIsotrace', () => {
    expect(() => createIsotrace({ serviceName: 's', audit: 'loud' } as unknown as IsotraceOptions)).toThrow(TypeError);
    expect(() => createIsotrace({ serviceName: 's', audit: 'loud' } as unknown as IsotraceOptions)).toThrow(/^createIsotrace: option 'audit'/);
    expect(() => createIsotrace({ serviceName: 's', propagate_to: ['x'] } as unknown as IsotraceOptions)).toThrow(/createIsotrace: unknown option 'propagate_to' \(did you mean 'propagateTo'\?\)/);
  });
});
