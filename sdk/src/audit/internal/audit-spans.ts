import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { ATTR } from '../../context/internal/keys.js';
import type { AncestryCheck, AuditReport, AuditSpan, IsolationViolation, SpanIdentity } from '../types.js';
import { AUDIT } from './attributes.js';
import { describeRequest } from './describe-violation.js';
import { traceDataViolations } from './trace-data.js';

/** A span the audit accepts: from the SDK (in-memory exporter) or already normalized (Jaeger). */
export type AuditableSpan = AuditSpan | ReadableSpan;

const ANCESTRY: ReadonlyArray<[AncestryCheck, keyof SpanIdentity]> = [
  ['ancestry.request_id', 'requestId'],
  ['ancestry.tenant_id', 'tenantId'],
  ['ancestry.user_id', 'userId'],
];

/**
 * What is above a span: the request span it ran inside, or why there is none
 * (`absent`: its parent, or an ancestor's, is not among the spans; `root`: the
 * chain ends without one; `loop`: the parent links go round in a circle).
 */
type Owner = { request: AuditSpan } | { missing: 'absent'; parentSpanId: string } | { missing: 'root' | 'loop' };

/**
 * Audits finished spans after the fact. Reports every span whose request id,
 * tenant or user differs from its nearest request-span ancestor (`ancestry.*`),
 * every span that carries identity but has no request span above it in its
 * trace (`missing-request-span`: the request span was dropped, unsampled or not
 * exported, or never existed), every span that carries a run-time audit
 * violation, and trace data whose parent links cannot be trusted (duplicate
 * span ids, malformed or mixed id encodings). Runs in time linear in the
 * number of spans.
 */
export function auditSpans(spans: Iterable<AuditableSpan>): AuditReport {
  const all = [...spans].map(toAuditSpan);
  const { byId, duplicates } = indexSpans(all);
  const violations = traceDataViolations(all, duplicates);
  const owners = new OwnerResolver(byId);
  for (const span of all) {
    violations.push(...recordedViolations(span));
    if (!isRequestSpan(span)) violations.push(...ancestryViolations(span, owners.ownerOf(span)));
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

/** A request span: `isotrace.request_span` is true, or the string "true" (other SDKs, transformed data). */
export function isRequestSpan(span: AuditSpan): boolean {
  const marker = span.attributes[ATTR.requestSpan];
  return marker === true || marker === 'true';
}

/** The identity fields a span carries, as strings; absent ones undefined. */
export function identityOf(span: AuditSpan): SpanIdentity {
  const text = (key: string): string | undefined => (span.attributes[key] === undefined ? undefined : String(span.attributes[key]));
  return { requestId: text(ATTR.requestId), tenantId: text(ATTR.tenantId), userId: text(ATTR.userId) };
}

/** Spans by trace and span id; a span id seen again in the same trace is a duplicate of the first, which keeps the id. */
function indexSpans(all: readonly AuditSpan[]): { byId: Map<string, AuditSpan>; duplicates: Array<[AuditSpan, AuditSpan]> } {
  const byId = new Map<string, AuditSpan>();
  const duplicates: Array<[AuditSpan, AuditSpan]> = [];
  for (const span of all) {
    const key = spanKey(span.traceId, span.spanId);
    const first = byId.get(key);
    if (first) duplicates.push([span, first]);
    else byId.set(key, span);
  }
  return { byId, duplicates };
}

/**
 * Finds each span's nearest request-span ancestor, remembering the answer for
 * every span on the way, so a whole trace costs one walk (a 20,000-span chain
 * is linear, not quadratic) and no recursion (no stack overflow on deep chains).
 */
class OwnerResolver {
  readonly #byId: ReadonlyMap<string, AuditSpan>;
  /** For each plain span already walked: the nearest request span at or above it, or why there is none. */
  readonly #atOrAbove = new Map<AuditSpan, Owner>();

  constructor(byId: ReadonlyMap<string, AuditSpan>) {
    this.#byId = byId;
  }

  ownerOf(span: AuditSpan): Owner {
    if (!span.parentSpanId) return { missing: 'root' };
    const parent = this.#byId.get(spanKey(span.traceId, span.parentSpanId));
    return parent ? this.#nearestAtOrAbove(parent) : { missing: 'absent', parentSpanId: span.parentSpanId };
  }

  #nearestAtOrAbove(start: AuditSpan): Owner {
    const path: AuditSpan[] = [];
    const onPath = new Set<AuditSpan>();
    let owner: Owner | undefined;
    let span = start;
    while (owner === undefined) {
      owner = this.#atOrAbove.get(span) ?? (isRequestSpan(span) ? { request: span } : onPath.has(span) ? { missing: 'loop' } : undefined);
      if (owner !== undefined) break;
      path.push(span);
      onPath.add(span);
      const parent = span.parentSpanId ? this.#byId.get(spanKey(span.traceId, span.parentSpanId)) : undefined;
      if (!span.parentSpanId) owner = { missing: 'root' };
      else if (!parent) owner = { missing: 'absent', parentSpanId: span.parentSpanId };
      else span = parent;
    }
    for (const walked of path) this.#atOrAbove.set(walked, owner);
    return owner;
  }
}

/** The ancestry checks of one non-request span against what is above it. */
function ancestryViolations(span: AuditSpan, owner: Owner): IsolationViolation[] {
  const identity = identityOf(span);
  if ('missing' in owner) {
    // A span with no isotrace identity and no request above it is not isotrace's (another library, another service).
    if (span.attributes[ATTR.requestId] === undefined && span.attributes[ATTR.tenantId] === undefined) return [];
    return [{ ...violation('missing-request-span', span, describeRequest(identity), missingReason(owner)), spanIdentity: identity }];
  }
  const request = identityOf(owner.request);
  const found: IsolationViolation[] = [];
  for (const [check, field] of ANCESTRY) {
    if (span.attributes[attributeOf(field)] === owner.request.attributes[attributeOf(field)]) continue;
    found.push({
      ...violation(check, span, identity[field] ?? '(missing)', request[field] ?? '(missing)'),
      spanIdentity: identity,
      ranInside: { ...request, spanId: owner.request.spanId },
    });
  }
  return found;
}

function attributeOf(field: keyof SpanIdentity): string {
  return { requestId: ATTR.requestId, tenantId: ATTR.tenantId, userId: ATTR.userId }[field];
}

function missingReason(owner: Exclude<Owner, { request: AuditSpan }>): string {
  if (owner.missing === 'absent') return `no request span: span ${owner.parentSpanId} above it is not in the trace (dropped, unsampled or not exported)`;
  if (owner.missing === 'loop') return 'no request span: its parent links form a loop';
  return 'no request span: its trace has none above it';
}

function recordedViolations(span: AuditSpan): IsolationViolation[] {
  const events = (span.events ?? []).filter((event) => event.name === AUDIT.event);
  const found = events.map((event) =>
    violation(String(event.attributes?.[AUDIT.check] ?? 'unknown'), span, String(event.attributes?.[AUDIT.expected] ?? ''), String(event.attributes?.[AUDIT.actual] ?? '')),
  );
  if (found.length === 0 && span.attributes[AUDIT.result] === 'violation') found.push(violation('unknown', span, 'pass', 'violation'));
  return found;
}

export function violation(check: string, span: AuditSpan, expected: string, actual: string): IsolationViolation {
  return { check, traceId: span.traceId, spanId: span.spanId, spanName: span.name, expected, actual };
}

function spanKey(traceId: string, spanId: string): string {
  return `${traceId}/${spanId}`;
}
