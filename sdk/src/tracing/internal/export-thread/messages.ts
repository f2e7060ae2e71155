import type { CompactDefinitions } from './compact-span.js';
import type { SpanBatch } from './span-batch.js';

/** OTLP over HTTP with protobuf bodies (the specification's default) or JSON bodies. */
export type OtlpHttpProtocol = 'http/protobuf' | 'http/json';

/**
 * What the export thread is started with (its workerData): everything decided
 * on the main thread, from the options and the environment, so the thread
 * applies the same rules as an in-thread exporter would. The OTLP exporter it
 * runs still reads OTEL_EXPORTER_OTLP_* (headers, TLS files, compression, and
 * endpoint and timeout when these leave them out) from the environment, which
 * a worker thread gets a copy of.
 */
export interface ExportThreadSettings {
  protocol: OtlpHttpProtocol;
  /** The traces URL when the `endpoint` option gave one. */
  url?: string;
  /** Each export's timeout, when not left to OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT. */
  timeoutMillis?: number;
  /** The batch processor's settings (defaults, OTEL_BSP_*, then the options). */
  batch: { maxQueueSize: number; maxExportBatchSize?: number; scheduledDelayMillis?: number; exportTimeoutMillis: number };
}

/** Main thread → export thread. */
export type ToExportThread =
  /** Spans written by SpanBatchWriter (their bytes transferred), with the definitions they are the first to use. */
  | { kind: 'spans'; spans: SpanBatch; definitions?: CompactDefinitions }
  | { kind: 'flush'; id: number }
  /** Flush, waiting at most `withinMs`, then give up on exports still unanswered (counted as failed) and answer. */
  | { kind: 'shutdown'; id: number; withinMs: number };

/** Export thread → main thread. */
export type FromExportThread =
  /** Cumulative counts: spans taken into the batch processor, delivered, and in failed exports; with the buffers of span batches read since the last counts (transferred back, to be reused). */
  | { kind: 'counts'; taken: number; exported: number; failed: number; buffers?: ArrayBuffer[] }
  /** The flush or shutdown `id` asked for is done. */
  | { kind: 'done'; id: number }
  /** A problem to report on the main thread's diagnostic logger (the thread has none of its own). */
  | { kind: 'report'; level: 'warn' | 'error'; message: string };
