/** The run-time audit checks (ARCHITECTURE.md, "Isolation audits"). */
export type RuntimeCheck = 'context-owner' | 'trace' | 'baggage' | 'shared-state' | 'callback-owner' | 'event-owner';

/**
 * The after-the-fact checks: a span's identity against its nearest
 * request-span ancestor, and `missing-request-span` for a span that carries
 * identity but has no request span above it in its trace.
 */
export type AncestryCheck = 'ancestry.request_id' | 'ancestry.tenant_id' | 'ancestry.user_id' | 'missing-request-span';

/**
 * Problems with the trace data itself, which make its parent links
 * untrustworthy: two spans of one trace with the same span id, and ids that
 * are malformed or written in different encodings within one trace.
 */
export type TraceDataCheck = 'duplicate-span-id' | 'id-encoding';

/** A request's identity as a span carries it (`isotrace.request_id`, `isotrace.tenant_id`, `user.id`); absent fields are undefined. */
export interface SpanIdentity {
  requestId?: string | undefined;
  tenantId?: string | undefined;
  userId?: string | undefined;
}

/** A span as the audit sees it: the common shape of SDK spans and traces read back from Jaeger. */
export interface AuditSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string | undefined;
  name: string;
  attributes: Record<string, unknown>;
  events?: ReadonlyArray<{ name: string; attributes?: Record<string, unknown> | undefined }>;
  /** The service that produced the span, when known (Jaeger traces). */
  serviceName?: string | undefined;
  /**
   * How the span's ids were written in OTLP/JSON (set by spansFromOtlpJson):
   * `mixed` when its own ids differ, `invalid` when one is neither hex nor
   * base64 of the right length. The audit reports traces that mix encodings.
   */
  idEncoding?: 'hex' | 'base64' | 'mixed' | 'invalid' | undefined;
}

/**
 * One thing that crossed between requests. `expected` and `actual` mean the
 * same in run-time and after-the-fact reports: `expected` is the request the
 * span (or tool system, tool, SharedState handle, worker task) belongs to,
 * `actual` is what it was found running inside — the active request, trace
 * or baggage at run time, the nearest request span after the fact.
 */
export interface IsolationViolation {
  check: RuntimeCheck | AncestryCheck | TraceDataCheck | (string & {});
  traceId: string;
  spanId: string;
  spanName: string;
  /** The request (or its field, trace, scope) the span belongs to. */
  expected: string;
  /** What the span was found running inside; `no request span: …` (and why) when nothing was above it. */
  actual: string;
  /** After-the-fact checks: the identity the span carries (the `expected` side). */
  spanIdentity?: SpanIdentity | undefined;
  /** After-the-fact checks: the request span the span ran inside (the `actual` side), when there is one. */
  ranInside?: (SpanIdentity & { spanId: string }) | undefined;
}

/** What auditSpans() found. */
export interface AuditReport {
  /** True when there is no violation. */
  ok: boolean;
  spans: number;
  traces: number;
  /** Request spans (one per withRequestContext / HTTP request / WebSocket message). */
  requests: number;
  /** `execute_tool` spans. */
  toolSpans: number;
  /** Every violation, including `missing-request-span` and the trace-data checks. */
  violations: IsolationViolation[];
  violationsByCheck: Record<string, number>;
}
