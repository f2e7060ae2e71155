/** The run-time audit checks (ARCHITECTURE.md, "Isolation audits"). */
export type RuntimeCheck = 'context-owner' | 'trace' | 'baggage' | 'shared-state';

/** The after-the-fact checks: a span's identity against its nearest request-span ancestor. */
export type AncestryCheck = 'ancestry.request_id' | 'ancestry.tenant_id' | 'ancestry.user_id';

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
}

/** One thing that crossed between requests. */
export interface IsolationViolation {
  check: RuntimeCheck | AncestryCheck | (string & {});
  traceId: string;
  spanId: string;
  spanName: string;
  expected: string;
  actual: string;
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
  violations: IsolationViolation[];
  violationsByCheck: Record<string, number>;
}
