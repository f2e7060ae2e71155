import { TraceFlags, type Context } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, Span, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace';
import type { ExportStats } from '../types.js';

/** Counts what happens to finished spans, so losses can be reported as one number. */
export class ExportAccounting {
  ended = 0;
  exported = 0;
  failed = 0;

  stats(): ExportStats {
    return { ended: this.ended, exported: this.exported, failed: this.failed, dropped: Math.max(0, this.ended - this.exported - this.failed) };
  }

  /** The exporter, counting the spans it delivered and the ones whose export failed. */
  wrapExporter(inner: SpanExporter): SpanExporter {
    return {
      export: (spans: ReadableSpan[], done: (result: ExportResult) => void) => {
        inner.export(spans, (result) => {
          if (result.code === ExportResultCode.SUCCESS) this.exported += spans.length;
          else this.failed += spans.length;
          done(result);
        });
      },
      shutdown: () => inner.shutdown(),
      ...(inner.forceFlush ? { forceFlush: () => inner.forceFlush!() } : {}),
    };
  }

  /** The processor, counting the sampled spans handed to it. */
  wrapProcessor(inner: SpanProcessor): SpanProcessor {
    return {
      onStart: (span: Span, parent: Context) => inner.onStart(span, parent),
      onEnd: (span: ReadableSpan) => {
        if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) !== 0) this.ended++;
        inner.onEnd(span);
      },
      forceFlush: () => inner.forceFlush(),
      shutdown: () => inner.shutdown(),
    };
  }
}
