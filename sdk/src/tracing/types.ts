import type { Instrumentation } from '@opentelemetry/instrumentation';
import type { Resource } from '@opentelemetry/resources';
import type { IMetricReader } from '@opentelemetry/sdk-metrics';
import type { Sampler, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace';
import type { SharedStateStore } from '../shared-state/types.js';

/**
 * An outbound destination allowed to receive isotrace baggage:
 *
 * - a host: `api.internal` (any port), `api.internal:8443`, `[::1]:9000`;
 * - a host pattern: `*.internal` (any port) or `*.internal:8443` matches any
 *   host under the domain on a label boundary (`a.internal`, `x.a.internal`),
 *   never `internal` itself nor `evilinternal`; no other wildcard exists;
 * - a URL prefix: `https://api.internal/v1` matches that scheme, host and port
 *   with the path `/v1` or under it on a segment boundary (`/v1/x`, not `/v10`);
 * - a RegExp tested against the destination's full URL, or a predicate given it.
 *
 * The destination is where each request really goes — the origin fetch/undici
 * dispatches to, the host and port node:http connects to (`hostname` over
 * `host`; a `Host` header changes nothing) — decided again for every redirect
 * hop. When isotrace cannot tell, no baggage is sent: requests over a unix
 * socket (`socketPath`), through a `createConnection` option or an agent that
 * makes its own connections, with a path that is not origin-form
 * (`@host/x`), a hand-written `propagation.inject()`, and calls from worker
 * threads. startTracing() rejects any other wildcard, a host with a path or
 * user info, and a URL prefix with a query, with a TypeError.
 */
export type PropagationTarget = string | RegExp | ((url: URL) => boolean);

/** What a redact hook is given besides the value. */
export interface RedactInfo {
  toolName: string;
  kind: 'arguments' | 'result';
}

/** How the `callback-owner` check runs (TracingOptions.auditCallbacks). */
export interface CallbackAuditOptions {
  /**
   * Share of the listeners added inside requests that are checked, 0–1;
   * default 1. Decided when the listener is added: an unchecked listener costs
   * nothing when it runs.
   */
  sampleRate?: number;
  /** Keep where each checked listener was added, shown on the violation as `isotrace.audit.registered_at`; default false (true in the test kit). */
  stacks?: boolean;
}

/**
 * Options of startTracing(). Only a service name is required: `serviceName`,
 * or OTEL_SERVICE_NAME (or `service.name` in OTEL_RESOURCE_ATTRIBUTES).
 *
 * The OpenTelemetry SDK variables apply as the specification says, with an
 * option given in code winning over its variable (as in OpenTelemetry JS):
 * OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG),
 * OTEL_BSP_*, OTEL_EXPORTER_OTLP_* (endpoint, headers, timeout, TLS files) and
 * OTEL_SDK_DISABLED (docs/composing.md lists them).
 */
export interface TracingOptions {
  /**
   * `service.name` of every span. Wins over OTEL_SERVICE_NAME; may be left out
   * when OTEL_SERVICE_NAME, `service.name` in OTEL_RESOURCE_ATTRIBUTES or in
   * `resource` gives one (a TypeError naming serviceName when none does).
   */
  serviceName?: string;
  /** Where spans go: OTLP/HTTP (default), the console, nowhere, or your own exporter. */
  exporter?: 'otlp' | 'console' | 'none' | SpanExporter;
  /**
   * OTLP/HTTP base URL (e.g. http://collector:4318), or its traces URL
   * (http://collector:4318/v1/traces): spans go to `<base>/v1/traces`, metrics
   * to `<base>/v1/metrics`. Default from OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]ENDPOINT,
   * else http://localhost:4318. Headers, timeouts and TLS files come from the
   * other OTEL_EXPORTER_OTLP_* variables.
   */
  endpoint?: string;
  /**
   * Outbound targets that may receive baggage (see PropagationTarget); default
   * none (they still get traceparent). Worker threads get the same policy
   * (a predicate cannot cross threads: with one, workers allow no target), and
   * since isotrace does not instrument HTTP there, worker tasks send no baggage.
   */
  propagateTo?: PropagationTarget | readonly PropagationTarget[];
  /** Run-time audits record violations on spans (default) or also throw IsolationViolationError. */
  audit?: 'record' | 'throw';
  /**
   * The `callback-owner` check: a listener added by one request (EventEmitter
   * `on`/`once`/`prependListener`…, EventTarget `addEventListener`, AbortSignal
   * and streams included) that runs inside another request is a violation.
   * Default off (`setupTestTracing()`: on, with stacks); `{ sampleRate }`
   * bounds its cost in production. It patches the listener methods of
   * EventEmitter.prototype and EventTarget.prototype while isotrace runs.
   */
  auditCallbacks?: boolean | CallbackAuditOptions;
  /** SharedState backend; default a new MemoryStore. */
  sharedStateStore?: SharedStateStore;
  /** Record tool arguments and results on tool spans (after `redact`); default false. */
  recordToolArguments?: boolean;
  /** Rewrites recorded tool arguments and results; a throwing hook records nothing. */
  redact?: (value: unknown, info: RedactInfo) => unknown;
  /**
   * Which traces are exported; default OTEL_TRACES_SAMPLER (with
   * OTEL_TRACES_SAMPLER_ARG), else parent-based, always on. Unsampled spans are
   * still recorded, never exported.
   */
  sampler?: Sampler;
  /** Instrument outbound node:http and fetch/undici calls (CLIENT spans, traceparent, baggage per propagateTo); default true. */
  instrumentHttp?: boolean;
  /**
   * Bound on forceFlush() and shutdown(), in ms; default 5000. When given it is
   * also each export's timeout; when not, OTEL_BSP_EXPORT_TIMEOUT and
   * OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT set those (else 5000).
   */
  flushTimeoutMs?: number;
  /** Metric readers for isotrace's metrics (`isotrace.isolation.violations`); default OTLP when `exporter` is 'otlp', else none. */
  metricReaders?: IMetricReader[];
  /**
   * Span queue bound of the batch processor; spans beyond it are dropped and
   * counted. Default OTEL_BSP_MAX_QUEUE_SIZE, else 2048. (OTEL_BSP_SCHEDULE_DELAY
   * and OTEL_BSP_MAX_EXPORT_BATCH_SIZE apply too.)
   */
  maxQueueSize?: number;
  /**
   * More OpenTelemetry instrumentations (database clients, frameworks, …),
   * registered beside isotrace's own outbound HTTP/undici ones; their spans
   * carry the request identity. Nested arrays are flattened, as NodeSDK does
   * (`[getNodeAutoInstrumentations({ … })]`). An HTTP or undici
   * instrumentation is a TypeError while `instrumentHttp` is on: isotrace's
   * own make the CLIENT spans and decide where baggage may go. shutdown()
   * disables them.
   */
  instrumentations?: ReadonlyArray<Instrumentation | readonly Instrumentation[]>;
  /**
   * More span processors (a second backend, an LLM-observability processor),
   * after isotrace's request-identity processor, so they see the identity
   * attributes, and beside its export processor. They are given every recorded
   * span, unsampled ones included (isotrace records those, never exports
   * them): the SDK's processors export only sampled spans. shutdown() shuts
   * them down.
   */
  spanProcessors?: readonly SpanProcessor[];
  /**
   * Resource attributes of every span, as NodeSDK's `resource`: detected
   * attributes and OTEL_RESOURCE_ATTRIBUTES are merged over it, and the
   * service name (see serviceName) over those.
   */
  resource?: Resource;
}

/** What became of the sampled spans this process finished (cumulative). */
export interface ExportStats {
  /** Spans handed to the export pipeline. */
  ended: number;
  /** Spans the exporter delivered. */
  exported: number;
  /** Spans in exports that failed (collector down, 5xx, timeout). */
  failed: number;
  /** Spans neither delivered nor failed: dropped by the full queue, or still queued. */
  dropped: number;
}

/** The handle startTracing() returns (createIsotrace()'s attach() too). */
export interface Tracing {
  readonly serviceName: string;
  /**
   * Counts of exported, failed and dropped spans. Losses are also reported
   * once, as a count, on the OpenTelemetry diagnostic logger at shutdown.
   */
  stats(): ExportStats;
  /** Exports what is queued; resolves within flushTimeoutMs even when the collector is down. */
  forceFlush(): Promise<void>;
  /**
   * Flushes, stops exporting and unregisters isotrace's OpenTelemetry globals;
   * runs once and resolves within flushTimeoutMs, even when the collector hangs
   * or trickles its answer (its sockets are then closed and those spans count
   * as failed). It never breaks a request: one in flight keeps its context,
   * SharedState and tools, and its spans that end later are dropped (counted
   * in stats()); requests arriving afterwards are served the same way, with no
   * telemetry. Stop accepting requests and drain them first to export them all.
   * startTracing() may be called again afterwards.
   *
   * ```ts
   * process.once('SIGTERM', async () => {
   *   await new Promise((resolve) => server.close(resolve)); // drain: in-flight requests finish, traced
   *   await tracing.shutdown();
   * });
   * ```
   */
  shutdown(): Promise<void>;
}

/**
 * What startTracing() returns: the Tracing handle, ready on return (isotrace is
 * set up synchronously, so code on the next line already runs traced), that
 * can also be awaited, as before: `await startTracing(options)` gives the same
 * handle. A start that fails comes back as a rejected promise in its place
 * (never a synchronous throw): awaited, it throws; left unhandled, Node's
 * unhandled-rejection handling stops the process with the error.
 */
export interface StartedTracing extends Tracing, PromiseLike<Tracing> {}
