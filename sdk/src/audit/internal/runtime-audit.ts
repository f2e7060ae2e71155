import { context, propagation, SpanStatusCode, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';
import { BAGGAGE } from '../../context/internal/keys.js';
import { RequestBaggage } from '../../context/internal/request-baggage.js';
import type { RequestIdentity } from '../../context/internal/request-context.js';
import { requestContextOf } from '../../context/internal/active-request.js';
import { IsolationViolationError } from '../../errors/errors.js';
import type { SharedStateScope } from '../../shared-state/types.js';
import { tryGetRuntime } from '../../tracing/internal/runtime.js';
import type { RuntimeCheck } from '../types.js';
import { AUDIT } from './attributes.js';

/**
 * The checks at a tool's start and end: the active request is the tool
 * system's owner (`context-owner`), the active span is in the owner's trace
 * (`trace`), baggage carries the active request's identity (`baggage`), and
 * the active request's SharedState scope is the owner's (`shared-state`).
 * Each failure is recorded on `span`, except checks in `alreadyFailed` (the
 * end of a call does not count what its start already did); in
 * `audit: 'throw'` mode the first one throws. Returns the checks that failed.
 */
export function auditToolBoundary(owner: RequestIdentity, span: Span, alreadyFailed: ReadonlySet<RuntimeCheck> = NONE_FAILED): ReadonlySet<RuntimeCheck> {
  const active = context.active();
  const request = requestContextOf(active);
  const traceId = trace.getSpanContext(active)?.traceId;
  // Every tool call passes through here twice: the passing case builds no strings and no set.
  if (request && request.requestId === owner.requestId && traceId === owner.traceId && carriesIdentity(active, request) && request.tenantId === owner.tenantId && request.userId === owner.userId) {
    return NONE_FAILED;
  }
  const failed = new Set<RuntimeCheck>();
  const fail = (check: RuntimeCheck, expected: string, actual: string): void => {
    failed.add(check);
    if (!alreadyFailed.has(check)) recordViolation(span, check, expected, actual);
  };
  if (request?.requestId !== owner.requestId) fail('context-owner', describeRequest(owner), request ? describeRequest(request) : '(no request)');
  if (traceId !== owner.traceId) fail('trace', owner.traceId, traceId ?? '(no span)');
  if (request) {
    // Decided field by field (an id may contain '/'); the joined strings only describe it.
    if (!carriesIdentity(active, request)) fail('baggage', requestIdentity(request), baggageIdentity(active));
    if (request.tenantId !== owner.tenantId || request.userId !== owner.userId) fail('shared-state', `${owner.tenantId}/${owner.userId}`, `${request.tenantId}/${request.userId}`);
  }
  return failed;
}

const NONE_FAILED: ReadonlySet<RuntimeCheck> = new Set();

/** Whether the active baggage carries exactly the request's tenant, user and correlation id (the `baggage` check passes). */
export function carriesIdentity(active: Context, request: RequestIdentity): boolean {
  const baggage = propagation.getBaggage(active);
  // The request's own lazy baggage reads its entries from this very request: they are its identity.
  if (baggage instanceof RequestBaggage && baggage.identity === request) return true;
  return (
    baggage?.getEntry(BAGGAGE.tenantId)?.value === request.tenantId &&
    baggage.getEntry(BAGGAGE.userId)?.value === request.userId &&
    baggage.getEntry(BAGGAGE.correlationId)?.value === request.correlationId
  );
}

/** tenant/user/correlation of a request, as the `baggage` check reports it. */
export function requestIdentity(request: RequestIdentity): string {
  return `${request.tenantId}/${request.userId}/${request.correlationId}`;
}

/** tenant/user/correlation as the active baggage carries them. */
export function baggageIdentity(active: Context): string {
  const baggage = propagation.getBaggage(active);
  if (!baggage) return '(no baggage)';
  const entry = (key: string): string => baggage.getEntry(key)?.value ?? '(none)';
  return `${entry(BAGGAGE.tenantId)}/${entry(BAGGAGE.userId)}/${entry(BAGGAGE.correlationId)}`;
}

/** The `shared-state` check on every SharedState access: the handle's scope is the active request's. */
export function auditSharedStateAccess(scope: SharedStateScope): void {
  const active = context.active();
  const request = requestContextOf(active);
  if (request?.tenantId === scope.tenantId && request.userId === scope.userId) return;
  recordViolation(trace.getSpan(active), 'shared-state', `${scope.tenantId}/${scope.userId}`, request ? `${request.tenantId}/${request.userId}` : '(no request)');
}

/** The `context-owner` check for code that reaches a tool's owning request directly. */
export function auditOwner(owner: RequestIdentity): void {
  const active = context.active();
  const request = requestContextOf(active);
  if (request?.requestId === owner.requestId) return;
  recordViolation(trace.getSpan(active), 'context-owner', describeRequest(owner), request ? describeRequest(request) : '(no request)');
}

/**
 * Records a violation: `isotrace.audit.result=violation`, the
 * `isotrace.isolation_violation` event (once per distinct violation and span),
 * status ERROR, the `isotrace.isolation.violations` counter (every time);
 * throws in `audit: 'throw'` mode. `details` go on the event too (the
 * `callback-owner` check's registration stack). `expected` is the request (trace, scope)
 * the work belongs to and `actual` what it was found running inside, the
 * same meaning auditSpans() gives them (IsolationViolation).
 */
export function recordViolation(span: Span | undefined, check: RuntimeCheck, expected: string, actual: string, details?: Attributes): void {
  const runtime = tryGetRuntime();
  if (span?.isRecording() && !alreadyOn(span, check, expected, actual)) {
    span.setAttribute(AUDIT.result, 'violation');
    span.addEvent(AUDIT.event, { ...details, [AUDIT.check]: check, [AUDIT.expected]: expected, [AUDIT.actual]: actual });
    span.setStatus({ code: SpanStatusCode.ERROR, message: `isolation violation: ${check}` });
  }
  runtime?.violations.add(1, { [AUDIT.check]: check });
  // The message (which frameworks send to clients) names only the check; expected/actual may name another request.
  if (runtime?.audit === 'throw') throw new IsolationViolationError(check, expected, actual, { requestId: requestContextOf(context.active())?.requestId });
}

/** The same violation already recorded on this span (e.g. the dispatcher and the Tool getter both saw it): once is enough. */
function alreadyOn(span: Span | undefined, check: string, expected: string, actual: string): boolean {
  const events = (span as { events?: ReadonlyArray<{ name: string; attributes?: Record<string, unknown> }> } | undefined)?.events;
  return (
    events?.some(
      (event) => event.name === AUDIT.event && event.attributes?.[AUDIT.check] === check && event.attributes[AUDIT.expected] === expected && event.attributes[AUDIT.actual] === actual,
    ) ?? false
  );
}

/** `request <id> (tenant <t>, user <u>)`, as `context-owner` and `callback-owner` report a request. */
export function describeRequest(request: Pick<RequestIdentity, 'requestId' | 'tenantId' | 'userId'>): string {
  return `request ${request.requestId} (tenant ${request.tenantId}, user ${request.userId})`;
}
