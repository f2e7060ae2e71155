import type { Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace';
import { ATTR, REQUEST_CONTEXT_KEY } from './keys.js';
import type { RequestContextImpl } from './request-context.js';

/**
 * Stamps every span started inside a request with that request's identity
 * (`isotrace.request_id`, `isotrace.tenant_id`, `user.id`, …), so any span
 * in Jaeger says whose work it was. Attributes a span already has win: tool
 * spans carry their owning request explicitly, which is what lets the audit
 * see a tool system used by the wrong request.
 */
export class RequestAttributesProcessor implements SpanProcessor {
  onStart(span: Span, parentContext: Context): void {
    const ctx = parentContext.getValue(REQUEST_CONTEXT_KEY) as RequestContextImpl | undefined;
    if (!ctx || span.attributes[ATTR.requestSpan] === true) return;
    setIfAbsent(span, ATTR.requestId, ctx.requestId);
    setIfAbsent(span, ATTR.correlationId, ctx.correlationId);
    setIfAbsent(span, ATTR.tenantId, ctx.tenantId);
    setIfAbsent(span, ATTR.userId, ctx.userId);
    if (ctx.jobId !== undefined) setIfAbsent(span, ATTR.jobId, ctx.jobId);
  }

  onEnd(_span: ReadableSpan): void {}

  async forceFlush(): Promise<void> {}

  async shutdown(): Promise<void> {}
}

function setIfAbsent(span: Span, key: string, value: string): void {
  if (span.attributes[key] === undefined) span.setAttribute(key, value);
}
