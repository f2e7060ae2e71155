// startTracing() never half-works: beside another OpenTelemetry setup it rejects, pointing to
// createIsotrace(), and its shutdown unregisters only the globals it registered itself.
import { context, metrics, propagation, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { afterEach, describe, expect, it } from 'vitest';
import { IsotraceSetupError, startTracing, withRequestContext } from 'isotrace';

afterEach(() => {
  trace.disable();
  propagation.disable();
  metrics.disable();
});

async function rejection(): Promise<IsotraceSetupError> {
  const error = await startTracing({ serviceName: 'agent-api', exporter: 'none' }).then(
    async (tracing) => {
      await tracing.shutdown();
      return undefined;
    },
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(IsotraceSetupError);
  return error as IsotraceSetupError;
}

class PullReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

describe('startTracing() beside another OpenTelemetry setup', () => {
  it("rejects after a service's NodeSDK started, pointing to createIsotrace, and leaves that setup working", async () => {
    const exporter = new InMemorySpanExporter();
    const sdk = new NodeSDK({ serviceName: 'host', spanProcessors: [new SimpleSpanProcessor({ exporter })] });
    sdk.start();
    try {
      const error = await rejection();
      expect([...error.missing].sort()).toEqual(['context manager', 'propagator', 'tracer provider']);
      expect(error.message).toMatch(/createIsotrace\(/);
      expect(error.message).toMatch(/isotrace\.attach\(\)/);
      trace.getTracer('host').startSpan('host.after').end();
      await (trace.getTracerProvider() as unknown as { getDelegate(): { forceFlush(): Promise<void> } }).getDelegate().forceFlush();
      expect(exporter.getFinishedSpans().map((span) => span.name)).toContain('host.after');
      await sdk.shutdown();
      await expect(withRequestContext({ tenantId: 't', userId: 'u' }, () => 'ran')).rejects.toThrow(/needs isotrace to be started/);
    } finally {
      context.disable();
    }
  });

  it('rejects when only a propagator is registered', async () => {
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    expect((await rejection()).missing).toEqual(['propagator']);
  });

  it('rejects when only a foreign context manager is registered', async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    try {
      expect((await rejection()).missing).toEqual(['context manager']);
    } finally {
      context.disable();
    }
  });
});

describe("startTracing()'s shutdown", () => {
  it("unregisters only what it registered: the service's own meter provider stays, and so does isotrace's context manager", async () => {
    const reader = new PullReader();
    const hostMeters = new MeterProvider({ readers: [reader] });
    metrics.setGlobalMeterProvider(hostMeters);
    const tracing = await startTracing({ serviceName: 'agent-api', exporter: 'none' });
    expect(trace.getTracer('x').startSpan('y', {}, ROOT_CONTEXT).spanContext().traceId).not.toBe('0'.repeat(32));
    await tracing.shutdown();

    metrics.getMeter('host').createCounter('host.requests').add(1);
    const { resourceMetrics } = await reader.collect();
    expect(resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics.map((metric) => metric.descriptor.name))).toContain('host.requests');
    // isotrace's own tracer provider and propagator are gone: a restart registers its own again.
    expect(propagation.fields()).toEqual([]);
    const restarted = await startTracing({ serviceName: 'agent-api', exporter: 'none' });
    await restarted.shutdown();
    await hostMeters.shutdown();
  });
});
