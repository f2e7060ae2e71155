import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';

/** An exporter that accepts and forgets spans: measures instrumentation, not I/O. */
export class DiscardExporter implements SpanExporter {
  exported = 0;

  export(spans: ReadableSpan[], done: (result: { code: 0 }) => void): void {
    this.exported += spans.length;
    done({ code: 0 });
  }

  async shutdown(): Promise<void> {}
}
