import type { Context, Span as ApiSpan } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace';
import { directAttributes, putAttribute } from './checked-attributes.js';
import { ATTR, REQUEST_CONTEXT_KEY } from './keys.js';
import type { RequestContextImpl, RequestIdentity } from './request-context.js';

/**
 * Stamps every span started inside a request with that request's identity
 * (`isotrace.request_id`, `isotrace.tenant_id`, `user.id`, …), so any span
 * in Jaeger says whose work it was. Attributes a span already has win: tool
 * spans carry their owning request explicitly, which is what lets the audit
 * see a tool system used by the wrong request.
 *
 * It runs first among the processors, at start: every later processor (an
 * exporter's, a host's Sentry or Langfuse processor) and every audit sees the
 * identity on the span, from onStart to export.
 */
export class RequestAttributesProcessor implements SpanProcessor {
  onStart(span: Span, parentContext: Context): void {
    const ctx = parentContext.getValue(REQUEST_CONTEXT_KEY) as RequestContextImpl | undefined;
    if (!ctx || span.attributes[ATTR.requestSpan] === true) return;
    stampIdentity(span, ctx, false);
  }

  onEnd(_span: ReadableSpan): void {}

  async forceFlush(): Promise<void> {}

  async shutdown(): Promise<void> {}
}

/**
 * Sets a request's identity attributes on a span; with `overwrite` false only
 * those the span does not have yet. The values were checked once, when the
 * request started (non-empty strings): they are written without the SDK
 * validating them again on every span (see directAttributes()).
 */
export function stampIdentity(
  span: ApiSpan,
  identity: Pick<RequestIdentity, 'requestId' | 'correlationId' | 'tenantId' | 'userId' | 'jobId'>,
  overwrite: boolean,
  direct: ReturnType<typeof directAttributes> = directAttributes(span),
): void {
  putAttribute(span, direct, ATTR.requestId, identity.requestId, overwrite);
  putAttribute(span, direct, ATTR.correlationId, identity.correlationId, overwrite);
  putAttribute(span, direct, ATTR.tenantId, identity.tenantId, overwrite);
  putAttribute(span, direct, ATTR.userId, identity.userId, overwrite);
  if (identity.jobId !== undefined) putAttribute(span, direct, ATTR.jobId, identity.jobId, overwrite);
}
