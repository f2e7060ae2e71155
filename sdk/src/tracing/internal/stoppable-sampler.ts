import { SamplingDecision, type Attributes, type Context, type Link, type SpanKind } from '@opentelemetry/api';
import type { Sampler, SamplingResult } from '@opentelemetry/sdk-trace';

/**
 * Samples like `inner` until stop(); then no span is recorded. Requests still
 * in flight at shutdown, and requests after it, keep their context and get
 * valid (unsampled) trace and span ids, but nothing is recorded or exported.
 */
export class StoppableSampler implements Sampler {
  readonly #inner: Sampler;
  #stopped = false;

  constructor(inner: Sampler) {
    this.#inner = inner;
  }

  stop(): void {
    this.#stopped = true;
  }

  shouldSample(context: Context, traceId: string, spanName: string, spanKind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
    if (this.#stopped) return { decision: SamplingDecision.NOT_RECORD };
    return this.#inner.shouldSample(context, traceId, spanName, spanKind, attributes, links);
  }

  toString(): string {
    return `StoppableSampler{${this.#inner.toString()}}`;
  }
}
