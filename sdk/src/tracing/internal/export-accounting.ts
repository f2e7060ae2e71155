import { TraceFlags, type Context } from '@opentelemetry/api';
import type * as CoreModule from '@opentelemetry/core';
import type { ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, Span, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace';
import type { ExportStats } from '../types.js';
import { loadModule } from './load-module.js';

const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 15_000;

/**
 * Counts what happens to finished spans, so losses can be reported as one
 * number, and backs off from a failing collector: after a failed export,
 * scheduled exports are skipped (counted as failed, never serialized or sent)
 * for a backoff that doubles up to 15 s and resets on success. An outage then
 * costs the application almost nothing; forceFlush() and shutdown() always try.
 *
 * Once shutdown begins, spans that end (requests still in flight) are counted
 * and dropped; exports still unanswered when shutdown gives up on them count as
 * failed, so stats() is final when shutdown() resolves.
 */
export class ExportAccounting {
  ended = 0;
  exported = 0;
  failed = 0;
  #resumeAt = 0;
  #backoffMs = FIRST_BACKOFF_MS;
  #explicitFlushes = 0;
  #shutDown = false;
  /** Exports handed to the exporter and not answered yet: their span counts. */
  readonly #pending = new Set<{ spans: number }>();

  stats(): ExportStats {
    return { ended: this.ended, exported: this.exported, failed: this.failed, dropped: Math.max(0, this.ended - this.exported - this.failed) };
  }

  /** The exporter, counting delivered and failed spans, and skipping exports while backing off. */
  wrapExporter(inner: SpanExporter): SpanExporter {
    const { ExportResultCode } = loadModule<typeof CoreModule>('@opentelemetry/core');
    return {
      export: (spans: ReadableSpan[], done: (result: ExportResult) => void) => {
        if (this.#explicitFlushes === 0 && Date.now() < this.#resumeAt) {
          this.failed += spans.length;
          done({ code: ExportResultCode.FAILED, error: new Error('isotrace: the collector failed recently; export skipped while backing off') });
          return;
        }
        const attempt = { spans: spans.length };
        this.#pending.add(attempt);
        inner.export(spans, (result) => {
          // An answer after abandonPending() changes nothing: those spans were counted as failed.
          if (!this.#pending.delete(attempt)) return done(result);
          if (result.code === ExportResultCode.SUCCESS) {
            this.exported += spans.length;
            this.#resumeAt = 0;
            this.#backoffMs = FIRST_BACKOFF_MS;
          } else {
            this.failed += spans.length;
            this.#resumeAt = Date.now() + this.#backoffMs;
            this.#backoffMs = Math.min(this.#backoffMs * 2, MAX_BACKOFF_MS);
          }
          done(result);
        });
      },
      shutdown: () => inner.shutdown(),
      ...(inner.forceFlush ? { forceFlush: () => inner.forceFlush!() } : {}),
    };
  }

  /** The processor, counting the sampled spans handed to it; its flush and shutdown export even while backing off. */
  wrapProcessor(inner: SpanProcessor): SpanProcessor {
    return {
      onStart: (span: Span, parent: Context) => inner.onStart(span, parent),
      onEnd: (span: ReadableSpan) => {
        if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) !== 0) this.ended++;
        // After shutdown the span is dropped here (counted: ended but never exported), whatever the processor would do.
        if (!this.#shutDown) inner.onEnd(span);
      },
      forceFlush: () => this.#explicitly(() => inner.forceFlush()),
      shutdown: () => {
        this.#shutDown = true;
        return this.#explicitly(() => inner.shutdown());
      },
    };
  }

  /** Counts the exports still unanswered as failed (shutdown stopped waiting and closed their connections). */
  abandonPending(): void {
    for (const attempt of this.#pending) this.failed += attempt.spans;
    this.#pending.clear();
  }

  async #explicitly(flush: () => Promise<void>): Promise<void> {
    this.#explicitFlushes++;
    try {
      await flush();
    } finally {
      this.#explicitFlushes--;
    }
  }
}
