import type { IsolationViolation, SpanIdentity } from '../types.js';

/** Violations of one span that one sentence describes: its ancestry checks together, every other check alone. */
export interface DescribedViolation {
  checks: string[];
  traceId: string;
  spanId: string;
  /** Plain words, e.g. "span 2222… 'execute_tool lookup' of request r1 (tenant t1, user u1) ran inside request r0 (tenant t0, user u0)". */
  text: string;
}

/**
 * Says in plain words what crossed, one sentence per span and check; the
 * three `ancestry.*` checks of one span share one sentence, since they are
 * one fact: the span ran inside another request.
 */
export function describeViolations(violations: readonly IsolationViolation[]): DescribedViolation[] {
  const described: DescribedViolation[] = [];
  const ancestryOf = new Map<string, DescribedViolation>();
  for (const v of violations) {
    const key = `${v.traceId}/${v.spanId}/${v.spanName}`;
    const sameSpan = v.check.startsWith('ancestry.') ? ancestryOf.get(key) : undefined;
    if (sameSpan) {
      sameSpan.checks.push(v.check);
      continue;
    }
    const entry = { checks: [v.check], traceId: v.traceId, spanId: v.spanId, text: describeViolation(v) };
    if (v.check.startsWith('ancestry.')) ancestryOf.set(key, entry);
    described.push(entry);
  }
  return described;
}

/** One violation in plain words. */
export function describeViolation(v: IsolationViolation): string {
  const span = `span ${v.spanId} '${v.spanName}'`;
  if (v.check.startsWith('ancestry.') && v.spanIdentity && v.ranInside) {
    return `${span} of ${describeRequest(v.spanIdentity)} ran inside ${describeRequest(v.ranInside)}, whose request span is ${v.ranInside.spanId}`;
  }
  switch (v.check) {
    case 'missing-request-span':
      return `${span} of ${v.expected} ran inside ${v.actual}`;
    case 'context-owner':
      return `${span}: work of ${v.expected} ran inside ${v.actual}`;
    case 'callback-owner':
      return `${span}: a callback registered by ${v.expected} ran inside ${v.actual}`;
    case 'event-owner':
      return `${span}: a progress event for the connection of ${v.expected} was emitted inside ${v.actual} (not delivered)`;
    case 'trace':
      return `${span}: work of trace ${v.expected} ran inside trace ${v.actual}`;
    case 'baggage':
      return `${span}: the request of tenant/user/correlation ${v.expected} ran with the baggage of ${v.actual}`;
    case 'shared-state':
      return `${span}: the SharedState of tenant/user ${v.expected} was used inside a request of tenant/user ${v.actual}`;
    case 'duplicate-span-id':
      return `${span}: expected ${v.expected}, but ${v.actual}; parent links in this trace cannot be trusted`;
    case 'id-encoding':
      return `${span}: expected ${v.expected}, found ${v.actual}; parent links in this trace cannot be trusted`;
    default:
      return `${span}: check ${v.check} failed: expected ${v.expected}, actual ${v.actual}`;
  }
}

/** `request r1 (tenant t1, user u1)`, with `(none)` for a field the span does not carry. */
export function describeRequest(identity: SpanIdentity): string {
  return `request ${identity.requestId ?? '(none)'} (tenant ${identity.tenantId ?? '(none)'}, user ${identity.userId ?? '(none)'})`;
}
