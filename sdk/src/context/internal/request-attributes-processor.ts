import type { Context, Span as ApiSpan } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace';
import { directAttributes, putAttribute, roomFor, type CheckedValue } from './checked-attributes.js';
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
 * those the span does not have yet; with `requestSpan`, the request span's
 * marker too (always). The values were checked once, when the request started
 * (non-empty strings): they are written without the SDK validating them again
 * on every span (see directAttributes()).
 *
 * Each key is written at a line of its own, not through putAttribute(): a store
 * under a key held in a variable that sees many keys is a megamorphic keyed
 * store in V8, several times slower, and this runs for every span.
 */
export function stampIdentity(
  span: ApiSpan,
  identity: Pick<RequestIdentity, 'requestId' | 'correlationId' | 'tenantId' | 'userId' | 'jobId'>,
  overwrite: boolean,
  direct: ReturnType<typeof directAttributes> = directAttributes(span),
  requestSpan = false,
): void {
  const attributes = allText(identity) ? roomFor(direct, 6) : undefined;
  if (attributes === undefined) {
    // Not the SDK's span, near its attribute count limit, or an identity from elsewhere that lacks a field: key by key, as the SDK would decide.
    if (!span.isRecording()) return;
    if (requestSpan) putAttribute(span, direct, ATTR.requestSpan, true, true);
    for (const [key, value] of Object.entries(identityAttributes(identity))) putAttribute(span, direct, key, value, overwrite);
    return;
  }
  let added = 0;
  if (requestSpan) {
    if (attributes[ATTR.requestSpan] === undefined) added++;
    attributes[ATTR.requestSpan] = true;
  }
  if (attributes[ATTR.requestId] === undefined) {
    attributes[ATTR.requestId] = identity.requestId;
    added++;
  } else if (overwrite) attributes[ATTR.requestId] = identity.requestId;
  if (attributes[ATTR.correlationId] === undefined) {
    attributes[ATTR.correlationId] = identity.correlationId;
    added++;
  } else if (overwrite) attributes[ATTR.correlationId] = identity.correlationId;
  if (attributes[ATTR.tenantId] === undefined) {
    attributes[ATTR.tenantId] = identity.tenantId;
    added++;
  } else if (overwrite) attributes[ATTR.tenantId] = identity.tenantId;
  if (attributes[ATTR.userId] === undefined) {
    attributes[ATTR.userId] = identity.userId;
    added++;
  } else if (overwrite) attributes[ATTR.userId] = identity.userId;
  if (identity.jobId !== undefined) {
    if (attributes[ATTR.jobId] === undefined) {
      attributes[ATTR.jobId] = identity.jobId;
      added++;
    } else if (overwrite) attributes[ATTR.jobId] = identity.jobId;
  }
  direct!._attributesCount! += added;
}

/** Whether every identity value is a string, as withRequestContext() checked (a snapshot from another process may lack one). */
function allText(identity: Pick<RequestIdentity, 'requestId' | 'correlationId' | 'tenantId' | 'userId' | 'jobId'>): boolean {
  return (
    typeof identity.requestId === 'string' &&
    typeof identity.correlationId === 'string' &&
    typeof identity.tenantId === 'string' &&
    typeof identity.userId === 'string' &&
    (identity.jobId === undefined || typeof identity.jobId === 'string')
  );
}

/** A request's identity as span attributes (the job id only when it has one). */
export function identityAttributes(identity: Pick<RequestIdentity, 'requestId' | 'correlationId' | 'tenantId' | 'userId' | 'jobId'>): Record<string, CheckedValue> {
  const attributes: Record<string, CheckedValue> = {
    [ATTR.requestId]: identity.requestId,
    [ATTR.correlationId]: identity.correlationId,
    [ATTR.tenantId]: identity.tenantId,
    [ATTR.userId]: identity.userId,
  };
  if (identity.jobId !== undefined) attributes[ATTR.jobId] = identity.jobId;
  return attributes;
}
