import type * as CoreModule from '@opentelemetry/core';
import { loadModule } from '../load-module.js';
import { reportOnce } from '../report.js';
import type { OtlpHttpProtocol } from './messages.js';

/**
 * The OTLP protocol of span exports: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else
 * OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf (the specification's
 * default). isotrace speaks OTLP over HTTP only: `grpc` or an unknown value is
 * reported once and means http/protobuf, which every OpenTelemetry Collector
 * and Jaeger accept on port 4318.
 */
export function tracesProtocolFromEnv(): OtlpHttpProtocol {
  // Loaded here, not imported: `import 'isotrace'` (a worker thread's too) loads no SDK package.
  const { getStringFromEnv } = loadModule<typeof CoreModule>('@opentelemetry/core');
  const variable = ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL'].find((name) => getStringFromEnv(name)?.trim());
  const protocol = variable && getStringFromEnv(variable)!.trim();
  if (!protocol || protocol === 'http/protobuf') return 'http/protobuf';
  if (protocol === 'http/json') return 'http/json';
  reportOnce('env-otlp-protocol-TRACES', `${variable}=${JSON.stringify(protocol)} is not a protocol isotrace exports spans with (http/protobuf, http/json); using http/protobuf.`);
  return 'http/protobuf';
}
