import type { TextMapPropagator } from '@opentelemetry/api';
import type { Instrumentation } from '@opentelemetry/instrumentation';
import type { SpanProcessor } from '@opentelemetry/sdk-trace';
import type { Tracing, TracingOptions } from '../tracing/types.js';

/**
 * Options of createIsotrace(): those of startTracing() but the ones the host's
 * own setup owns (`exporter`, `endpoint`, `sampler`, `metricReaders`,
 * `maxQueueSize`, `instrumentations`, `spanProcessors`, `resource`).
 * `flushTimeoutMs` bounds the handle's forceFlush(). `serviceName` may be left
 * out when OTEL_SERVICE_NAME (or `service.name` in OTEL_RESOURCE_ATTRIBUTES) gives one.
 */
export type IsotraceOptions = Omit<TracingOptions, 'exporter' | 'endpoint' | 'sampler' | 'metricReaders' | 'maxQueueSize' | 'instrumentations' | 'spanProcessors' | 'resource'>;

/**
 * isotrace's parts for a host's own OpenTelemetry setup (NodeSDK,
 * NodeTracerProvider, a Sentry or LLM-observability setup), from createIsotrace().
 */
export interface Isotrace {
  /**
   * Stamps the request identity (`isotrace.request_id`, `isotrace.tenant_id`,
   * `user.id`, …) on every span started inside a request, the host's own spans
   * included. Put it first in the host's `spanProcessors`, before the ones
   * that export, so they export the stamped spans.
   */
  readonly spanProcessor: SpanProcessor;
  /**
   * W3C traceparent to every destination, and isotrace's identity baggage only
   * to the `propagateTo` destinations. The host's `textMapPropagator`, alone or
   * inside a CompositePropagator; no other propagator may write W3C baggage.
   * It writes baggage only while attached.
   */
  readonly propagator: TextMapPropagator;
  /**
   * isotrace's outbound HTTP (node:http) and undici (fetch) instrumentations:
   * CLIENT spans, and the hooks through which baggage reaches the `propagateTo`
   * destinations. Give them to the host instead of its own HTTP/undici
   * instrumentations. Empty with `instrumentHttp: false`.
   */
  readonly instrumentations: Instrumentation[];
  /**
   * Checks that the host's setup really uses these parts, then starts isotrace
   * in it and returns the same handle as startTracing(). Call it after the
   * host's SDK started. The checks are behavioural, so they hold whatever
   * copies of the OpenTelemetry packages the host uses:
   *
   * - the registered context manager keeps each flow's context across `await`
   *   (AsyncLocalStorage-based, as NodeSDK's and Sentry's are);
   * - isotrace's propagator is in effect (alone or inside a composite) and no
   *   other propagator writes W3C baggage;
   * - isotrace's span processor is registered on the active tracer provider
   *   (and the provider records sampled spans).
   *
   * It then enables isotrace's instrumentations (on the host's provider, even
   * when the host did not list them). A second HTTP or undici instrumentation
   * (the host's own, getNodeAutoInstrumentations()'s) is not detected: it would
   * make a second CLIENT span per call; leave it out (docs/composing.md).
   *
   * Rejects with IsotraceSetupError listing what is missing and the line that
   * adds it, and with TracingAlreadyStartedError while isotrace already runs.
   * The handle's shutdown() stops only isotrace's own parts: the host's
   * provider, propagator, context manager and instrumentations keep working.
   * Its stats() stay zero: the host's exporters own export.
   *
   * ```ts
   * const isotrace = createIsotrace({ serviceName: 'agent-api', propagateTo: ['inventory.internal'] });
   * const sdk = new NodeSDK({
   *   spanProcessors: [isotrace.spanProcessor, new BatchSpanProcessor(exporter)],
   *   textMapPropagator: isotrace.propagator,
   *   instrumentations: [...isotrace.instrumentations, ...mine],
   * });
   * sdk.start();
   * const tracing = await isotrace.attach();
   * ```
   */
  attach(): Promise<Tracing>;
}
