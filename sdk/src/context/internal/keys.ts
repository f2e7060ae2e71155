/**
 * Where the RequestContext lives in the OpenTelemetry context. A `Symbol.for`
 * key (createContextKey() makes a fresh symbol per copy), so every copy of
 * isotrace loaded in the process finds the request another copy started.
 */
export const REQUEST_CONTEXT_KEY: symbol = Symbol.for('isotrace.request_context');

/** Span attributes every span of a request carries. */
export const ATTR = {
  requestId: 'isotrace.request_id',
  correlationId: 'isotrace.correlation_id',
  tenantId: 'isotrace.tenant_id',
  userId: 'user.id',
  jobId: 'isotrace.job_id',
  /** Marks the span that opened a request; audits compare descendants with it. */
  requestSpan: 'isotrace.request_span',
} as const;

/** W3C baggage entries isotrace propagates. */
export const BAGGAGE = {
  correlationId: 'isotrace.correlation_id',
  tenantId: 'isotrace.tenant_id',
  userId: 'isotrace.user_id',
  jobId: 'isotrace.job_id',
} as const;

/** A correlation id we accept from outside: short, printable, no separators that break headers. */
export const CORRELATION_ID_PATTERN = /^[\w.:@-]{1,128}$/;
