import type { Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace';
import { answerProbe } from './setup-probe.js';

/**
 * isotrace's span processor in a host's provider: stamps the request identity
 * (through `stamp`, the same processor startTracing() uses) and answers
 * attach()'s probe. It exports nothing: the host's processors do.
 */
export class HostSpanProcessor implements SpanProcessor {
  readonly #stamp: SpanProcessor;

  constructor(stamp: SpanProcessor) {
    this.#stamp = stamp;
  }

  onStart(span: Span, parentContext: Context): void {
    if (answerProbe(parentContext, this)) return;
    this.#stamp.onStart(span, parentContext);
  }

  onEnd(_span: ReadableSpan): void {}

  async forceFlush(): Promise<void> {}

  async shutdown(): Promise<void> {}
}
