import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { ATTR } from '../../context/internal/keys.js';
import type { AncestryCheck, AuditReport, AuditSpan, IsolationViolation } from '../types.js';
import { AUDIT } from './attributes.js';

/** A span the audit accepts: from the SDK (in-memory exporter) or already normalized (Jaeger). */
export type AuditableSpan = AuditSpan | ReadableSpan;

const ANCESTRY: ReadonlyArray<[AncestryCheck, string]> = [
  ['ancestry.request_id', ATTR.requestId],
  ['ancestry.tenant_id', ATTR.tenantId],
  ['ancestry.user_id', ATTR.userId],
];

/**
 * Audits finished spans after the fact: every span whose request id, tenant
 * or user differs from its nearest request-span ancestor is a violation, and
 * so is every span that carries a run-time audit violation. Spans whose
 * parent is not among `spans` (a remote caller) are compared with nothing.
 */
export function auditSpans(spans: Iterable<AuditableSpan>): AuditReport {
  const all = [...spans].map(toAuditSpan);
  const byId = new Map(all.map((span) => [spanKey(span.traceId, span.spanId), span]));
  const violations: IsolationViolation[] = [];
  for (const span of all) {
    violations.push(...recordedViolations(span));
    if (isRequestSpan(span)) continue;
    const owner = nearestRequestAncestor(span, byId);
    if (!owner) continue;
    for (const [check, attribute] of ANCESTRY) {
      const expected = String(owner.attributes[attribute]);
      const actual = span.attributes[attribute];
      if (actual !== owner.attributes[attribute]) violations.push(violation(check, span, expected, actual === undefined ? '(missing)' : String(actual)));
    }
  }
  const violationsByCheck: Record<string, number> = {};
  for (const v of violations) violationsByCheck[v.check] = (violationsByCheck[v.check] ?? 0) + 1;
  return {
    ok: violations.length === 0,
    spans: all.length,
    traces: new Set(all.map((span) => span.traceId)).size,
    requests: all.filter(isRequestSpan).length,
    toolSpans: all.filter((span) => span.attributes['gen_ai.operation.name'] === 'execute_tool').length,
    violations,
    violationsByCheck,
  };
}

/** Normalizes an SDK span to the audit's shape; AuditSpans pass through. */
export function toAuditSpan(span: AuditableSpan): AuditSpan {
  if (!('spanContext' in span)) return span;
  const { traceId, spanId } = span.spanContext();
  return {
    traceId,
    spanId,
    parentSpanId: span.parentSpanContext?.spanId,
    name: span.name,
    attributes: span.attributes,
    events: span.events.map((event) => ({ name: event.name, attributes: event.attributes })),
    serviceName: span.resource.attributes['service.name'] as string | undefined,
  };
}

export function isRequestSpan(span: AuditSpan): boolean {
  return span.attributes[ATTR.requestSpan] === true;
}

function nearestRequestAncestor(span: AuditSpan, byId: Map<string, AuditSpan>): AuditSpan | undefined {
  const visited = new Set<AuditSpan>();
  let parent = span.parentSpanId ? byId.get(spanKey(span.traceId, span.parentSpanId)) : undefined;
  while (parent && !visited.has(parent)) {
    if (isRequestSpan(parent)) return parent;
    visited.add(parent);
    parent = parent.parentSpanId ? byId.get(spanKey(parent.traceId, parent.parentSpanId)) : undefined;
  }
  return undefined;
}

function recordedViolations(span: AuditSpan): IsolationViolation[] {
  const events = (span.events ?? []).filter((event) => event.name === AUDIT.event);
  const found = events.map((event) =>
    violation(String(event.attributes?.[AUDIT.check] ?? 'unknown'), span, String(event.attributes?.[AUDIT.expected] ?? ''), String(event.attributes?.[AUDIT.actual] ?? '')),
  );
  if (found.length === 0 && span.attributes[AUDIT.result] === 'violation') found.push(violation('unknown', span, 'pass', 'violation'));
  return found;
}

function violation(check: string, span: AuditSpan, expected: string, actual: string): IsolationViolation {
  return { check, traceId: span.traceId, spanId: span.spanId, spanName: span.name, expected, actual };
}

function spanKey(traceId: string, spanId: string): string {
  return `${traceId}/${spanId}`;
}
