import { createTraceState, isSpanContextValid, propagation, trace, type BaggageEntry, type Context, type SpanContext } from '@opentelemetry/api';
import { auditSharedStateAccess } from '../../audit/internal/runtime-audit.js';
import { REQUEST_CONTEXT_KEY } from '../../context/internal/keys.js';
import { RequestBaggage } from '../../context/internal/request-baggage.js';
import { RequestContextImpl } from '../../context/internal/request-context.js';
import { requestContextOf } from '../../context/internal/request-scope.js';
import type { RequestContextSnapshot } from '../../context/types.js';
import type { SharedStateStore } from '../../shared-state/types.js';
import { TASK_ROOT } from './task-context.js';

/**
 * A context as structured-clone data for a worker-thread hop: the span
 * context, the request context (identity and values) and the baggage entries.
 * Plain values rather than W3C header strings: a thread hop needs no
 * percent-encoding or parsing (child processes, which do, use the env
 * carriers). One flat array of strings and numbers, the values and baggage as
 * key/value runs in it: structured clone pays per object and per property (a
 * values object cost more to send than the six strings of the identity), and
 * nested carriers cost more to send than the task itself.
 */
export type ContextCarrier = [
  traceId: string | undefined,
  spanId: string | undefined,
  traceFlags: number | undefined,
  traceState: string | undefined,
  /** Undefined when the context has no request. */
  requestId: string | undefined,
  correlationId: string | undefined,
  tenantId: string | undefined,
  userId: string | undefined,
  jobId: string | undefined,
  requestTraceId: string | undefined,
  /** How many request-scoped values follow (key, value, …). */
  valueCount: number,
  /** …the values, then how many baggage entries follow (key, value, …): OWN_BAGGAGE or NO_BAGGAGE instead when there are none to send. */
  ...rest: unknown[],
];

/**
 * The baggage is the request's own identity baggage (what withRequestContext()
 * puts in the context, read from the request itself): the worker rebuilds it
 * from the request it restores, as the submitting thread reads it from the
 * request there. Sent only when that is exactly what the context holds, so the
 * worker-entry `baggage` audit reaches the verdict it would reach on the entries.
 */
const OWN_BAGGAGE = -1;
/** The context has no baggage. */
const NO_BAGGAGE = -2;
/** Index of the value count; the values follow it. */
const VALUES = 10;

/** Captures `ctx` (span context, request context, baggage) as plain data; `spanContext` overrides the context's span. */
export function captureCarrier(ctx: Context, spanContext: SpanContext | undefined = trace.getSpanContext(ctx)): ContextCarrier {
  const span = spanContext && isSpanContextValid(spanContext) ? spanContext : undefined;
  const request = requestContextOf(ctx);
  const carrier: ContextCarrier = [
    span?.traceId,
    span?.spanId,
    span?.traceFlags,
    span?.traceState?.serialize(),
    request?.requestId,
    request?.correlationId,
    request?.tenantId,
    request?.userId,
    request?.jobId,
    request?.traceId,
    0,
  ];
  const values = request?.valueMap;
  if (values) {
    // Read in place: values() would copy them into an object first.
    for (const [key, value] of values) carrier.push(key, value);
    carrier[VALUES] = values.size;
  }
  pushBaggage(carrier, ctx, request);
  return carrier;
}

function pushBaggage(carrier: ContextCarrier, ctx: Context, request: RequestContextImpl | undefined): void {
  const baggage = propagation.getBaggage(ctx);
  if (!baggage) carrier.push(NO_BAGGAGE);
  else if (request && baggage instanceof RequestBaggage && baggage.identity === request) carrier.push(OWN_BAGGAGE);
  else {
    const entries = baggage.getAllEntries();
    carrier.push(entries.length);
    for (const [key, entry] of entries) carrier.push(key, entry.value);
  }
}

/**
 * The OpenTelemetry context a carrier describes: remote parent span, baggage
 * and the task's own copy of the request context (a change made in one task
 * never reaches another task of the same request).
 */
export function restoreContext(carrier: ContextCarrier, store: SharedStateStore): Context {
  let ctx = TASK_ROOT;
  const traceId = carrier[0];
  const spanId = carrier[1];
  const traceFlags = carrier[2];
  if (traceId !== undefined && spanId !== undefined && traceFlags !== undefined) {
    const traceState = carrier[3];
    const spanContext: SpanContext = { traceId, spanId, traceFlags, isRemote: true };
    if (traceState) spanContext.traceState = createTraceState(traceState);
    ctx = trace.setSpanContext(ctx, spanContext);
  }
  const request = restoreRequest(carrier, store);
  const baggageAt = VALUES + 1 + 2 * carrier[VALUES];
  const baggage = carrier[baggageAt] as number;
  if (baggage === OWN_BAGGAGE && request) ctx = propagation.setBaggage(ctx, new RequestBaggage(request));
  else if (baggage >= 0) ctx = propagation.setBaggage(ctx, propagation.createBaggage(baggageEntries(carrier, baggageAt + 1, baggage)));
  return request ? ctx.setValue(REQUEST_CONTEXT_KEY, request) : ctx;
}

function restoreRequest(carrier: ContextCarrier, store: SharedStateStore): RequestContextImpl | undefined {
  const requestId = carrier[4];
  if (requestId === undefined) return undefined;
  const identity = { requestId, correlationId: carrier[5]!, tenantId: carrier[6]!, userId: carrier[7]!, jobId: carrier[8], traceId: carrier[9]! };
  const request = new RequestContextImpl(identity, undefined, store, auditSharedStateAccess);
  // Set one by one: no list of entries made for the constructor to walk.
  eachValue(carrier, (key, value) => request.set(key, value));
  return request;
}

/** Calls `use` with each request-scoped value the carrier holds, in order. */
function eachValue(carrier: ContextCarrier, use: (key: string, value: unknown) => void): void {
  for (let i = VALUES + 1; i < VALUES + 1 + 2 * carrier[VALUES]; i += 2) use(carrier[i] as string, carrier[i + 1]);
}

function baggageEntries(carrier: ContextCarrier, start: number, count: number): Record<string, BaggageEntry> {
  const entries: Record<string, BaggageEntry> = {};
  for (let i = start; i < start + 2 * count; i += 2) entries[carrier[i] as string] = { value: carrier[i + 1] as string };
  return entries;
}

/** The request-scoped values a carrier takes to the worker (to name one that cannot be cloned). */
export function carriedValues(carrier: ContextCarrier): Record<string, unknown> {
  const entries: [string, unknown][] = [];
  eachValue(carrier, (key, value) => entries.push([key, value]));
  return Object.fromEntries(entries);
}

/** `ctx` with a request context rebuilt from a snapshot taken in another thread or process. */
export function withRequest(ctx: Context, snapshot: RequestContextSnapshot, store: SharedStateStore): Context {
  return ctx.setValue(REQUEST_CONTEXT_KEY, RequestContextImpl.fromSnapshot(snapshot, store, auditSharedStateAccess));
}

/** Checks that a snapshot read from outside has the shape of one; throws TypeError naming what is wrong. */
export function assertSnapshot(value: unknown, source: string): asserts value is RequestContextSnapshot {
  const snapshot = value as Partial<RequestContextSnapshot> | null;
  if (snapshot === null || typeof snapshot !== 'object') throw new TypeError(`${source} is not a request-context snapshot (expected an object).`);
  for (const field of ['requestId', 'correlationId', 'tenantId', 'userId', 'traceId'] as const) {
    if (typeof snapshot[field] !== 'string' || snapshot[field] === '') throw new TypeError(`${source}: field '${field}' must be a non-empty string.`);
  }
  if (snapshot.jobId !== undefined && typeof snapshot.jobId !== 'string') throw new TypeError(`${source}: field 'jobId' must be a string when present.`);
  if (snapshot.values !== undefined && (snapshot.values === null || typeof snapshot.values !== 'object')) throw new TypeError(`${source}: field 'values' must be an object.`);
}
