import { TraceFlags, type Attributes, type Context, type Counter } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, Span, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace';
import { AUDIT } from '../../audit/internal/attributes.js';

/** Where a span array from the kit keeps the run-time violations counted while its spans were recorded. */
export const RUNTIME_VIOLATIONS = Symbol('isotrace.testing.runtimeViolations');

/** Run-time violations by check, counted synchronously as they happen. */
export type ViolationTally = Readonly<Record<string, number>>;

/** A span list that may say how many run-time violations were counted alongside it. */
export type TalliedSpans = ReadableSpan[] & { readonly [RUNTIME_VIOLATIONS]?: ViolationTally };

/**
 * Everything the test kit saw, in the order it happened: every finished span,
 * sampled or not, and every run-time violation, including those no span
 * shows (an unsampled request, no active span). A test kit that audited only
 * the exported spans would pass a leak inside an unsampled request.
 */
export class RecordedSpans {
  #spans: ReadableSpan[] = [];
  #violations: Record<string, number> = {};

  /** The kit's exporter: sampled spans, including those forwarded from worker threads. */
  readonly exporter: SpanExporter = {
    export: (spans: ReadableSpan[], done: (result: ExportResult) => void) => {
      this.#spans.push(...spans);
      done({ code: ExportResultCode.SUCCESS });
    },
    shutdown: async () => {},
  };

  /** Sees every span end; keeps the unsampled ones, which never reach an exporter. */
  readonly unsampled: SpanProcessor = {
    onStart: (_span: Span) => {},
    onEnd: (span: ReadableSpan) => {
      if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) this.#spans.push(span);
    },
    forceFlush: async () => {},
    shutdown: async () => {},
  };

  /** `counter`, also tallying each violation here as it is counted. */
  tallying(counter: Counter): Counter {
    return {
      add: (value: number, attributes?: Attributes, context?: Context) => {
        const check = String(attributes?.[AUDIT.check] ?? 'unknown');
        this.#violations[check] = (this.#violations[check] ?? 0) + value;
        counter.add(value, attributes, context);
      },
    };
  }

  /** A copy of the spans, carrying the violations counted since the last reset. */
  spans(): TalliedSpans {
    return Object.defineProperty([...this.#spans], RUNTIME_VIOLATIONS, { value: { ...this.#violations }, enumerable: false });
  }

  reset(): void {
    this.#spans = [];
    this.#violations = {};
  }
}
