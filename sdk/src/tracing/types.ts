import type { IMetricReader } from '@opentelemetry/sdk-metrics';
import type { Sampler, SpanExporter } from '@opentelemetry/sdk-trace';
import type { SharedStateStore } from '../shared-state/types.js';

/**
 * An outbound destination allowed to receive isotrace baggage: a host
 * (`api.internal` or `api.internal:8443`), a URL prefix (`https://api.internal/v1/`),
 * a RegExp tested against the full URL, or a predicate.
 */
export type PropagationTarget = string | RegExp | ((url: URL) => boolean);

/** What a redact hook is given besides the value. */
export interface RedactInfo {
  toolName: string;
  kind: 'arguments' | 'result';
}

/** Options of startTracing(). Only serviceName is required. */
export interface TracingOptions {
  /** `service.name` of every span. */
  serviceName: string;
  /** Where spans go: OTLP/HTTP (default), the console, nowhere, or your own exporter. */
  exporter?: 'otlp' | 'console' | 'none' | SpanExporter;
  /** OTLP/HTTP base URL (e.g. http://collector:4318); default from OTEL_EXPORTER_OTLP_* variables, else http://localhost:4318. */
  endpoint?: string;
  /** Outbound targets that may receive baggage; default none (they still get traceparent). */
  propagateTo?: PropagationTarget | readonly PropagationTarget[];
  /** Run-time audits record violations on spans (default) or also throw IsolationViolationError. */
  audit?: 'record' | 'throw';
  /** SharedState backend; default a new MemoryStore. */
  sharedStateStore?: SharedStateStore;
  /** Record tool arguments and results on tool spans (after `redact`); default false. */
  recordToolArguments?: boolean;
  /** Rewrites recorded tool arguments and results; a throwing hook records nothing. */
  redact?: (value: unknown, info: RedactInfo) => unknown;
  /** Which traces are exported; default parent-based, always on. Unsampled spans are still recorded, never exported. */
  sampler?: Sampler;
  /** Instrument outbound node:http and fetch/undici calls (CLIENT spans, traceparent, baggage per propagateTo); default true. */
  instrumentHttp?: boolean;
  /** Bound on forceFlush() and shutdown(), in ms; default 5000. */
  flushTimeoutMs?: number;
  /** Metric readers for isotrace's metrics (`isotrace.isolation.violations`); default OTLP when `exporter` is 'otlp', else none. */
  metricReaders?: IMetricReader[];
  /** Span queue bound of the batch processor; spans beyond it are dropped and counted. Default 2048. */
  maxQueueSize?: number;
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

/** The handle startTracing() returns. */
export interface Tracing {
  readonly serviceName: string;
  /**
   * Counts of exported, failed and dropped spans. Losses are also reported
   * once, as a count, on the OpenTelemetry diagnostic logger at shutdown.
   */
  stats(): ExportStats;
  /** Exports what is queued; resolves within flushTimeoutMs even when the collector is down. */
  forceFlush(): Promise<void>;
  /** Flushes, stops exporting and unregisters isotrace; runs once, resolves within flushTimeoutMs. */
  shutdown(): Promise<void>;
}
