// startTracing() loads NodeSDK and the OTLP exporters only when it runs (so `import 'isotrace'`
// stays light); what it loads must be the very modules a service imports, not a second copy.
import { describe, expect, it } from 'vitest';
import { trace, type ProxyTracerProvider } from '@opentelemetry/api';
import { TracerProvider } from '@opentelemetry/sdk-trace';
import { startTracing } from 'isotrace';

describe('startTracing() loads OpenTelemetry when it runs', () => {
  it('registers a tracer provider of the same @opentelemetry/sdk-trace the service imports', async () => {
    const tracing = await startTracing({ serviceName: 'one-copy', exporter: 'otlp', endpoint: 'http://127.0.0.1:9', instrumentHttp: false });
    try {
      const provider = (trace.getTracerProvider() as ProxyTracerProvider).getDelegate();
      // A CommonJS copy loaded beside the ES modules would register a TracerProvider of its own class.
      expect(provider).toBeInstanceOf(TracerProvider);
    } finally {
      await tracing.shutdown();
    }
  });
});
