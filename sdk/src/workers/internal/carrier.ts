import { createTraceState, isSpanContextValid, propagation, ROOT_CONTEXT, trace, type BaggageEntry, type Context, type SpanContext } from '@opentelemetry/api';
import { auditSharedStateAccess } from '../../audit/internal/runtime-audit.js';
import { REQUEST_CONTEXT_KEY } from '../../context/internal/keys.js';
import { RequestContextImpl } from '../../context/internal/request-context.js';
import { requestContextOf } from '../../context/internal/request-scope.js';
import type { RequestContextSnapshot } from '../../context/types.js';
import type { SharedStateStore } from '../../shared-state/types.js';

/**
 * A context as structured-clone data for a worker-thread hop: the span
 * context, the request context (identity and values) and the baggage entries.
 * Plain values rather than W3C header strings: a thread hop needs no
 * percent-encoding or parsing (child processes, which do, use the env
 * carriers). One flat array rather than nested objects: structured clone pays
 * per object and per property, and nested carriers cost more to send than
 * the task itself.
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
  /** The request-scoped values; undefined when there are none. */
  values: Record<string, unknown> | undefined,
  /** How many baggage entries follow; undefined when the context has no baggage. */
  baggageEntries: number | undefined,
  /** key, value, key, value, … */
  ...baggage: string[],
];

/** Index of the first baggage key in a carrier. */
const BAGGAGE_START = 12;

/** Captures `ctx` (span context, request context, baggage) as plain data; `spanContext` overrides the context's span. */
export function captureCarrier(ctx: Context, spanContext: SpanContext | undefined = trace.getSpanContext(ctx)): ContextCarrier {
  const span = spanContext && isSpanContextValid(spanContext) ? spanContext : undefined;
  const request = requestContextOf(ctx);
  const values = request?.values();
  const baggage = propagation.getBaggage(ctx);
  const entries = baggage?.getAllEntries();
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
    values && hasKeys(values) ? values : undefined,
    entries?.length,
  ];
  if (entries) for (const [key, entry] of entries) carrier.push(key, entry.value);
  return carrier;
}

/** The OpenTelemetry context a carrier describes: remote parent span, baggage and a copy of the request context. */
export function restoreContext(carrier: ContextCarrier, store: SharedStateStore): Context {
  const [traceId, spanId, traceFlags, traceState, requestId, correlationId, tenantId, userId, jobId, requestTraceId, values, baggageEntries] = carrier;
  let ctx = ROOT_CONTEXT;
  if (traceId !== undefined && spanId !== undefined && traceFlags !== undefined) {
    ctx = trace.setSpanContext(ctx, { traceId, spanId, traceFlags, isRemote: true, ...(traceState ? { traceState: createTraceState(traceState) } : {}) });
  }
  if (baggageEntries !== undefined) {
    const entries: Record<string, BaggageEntry> = {};
    for (let i = BAGGAGE_START; i < carrier.length; i += 2) entries[carrier[i] as string] = { value: carrier[i + 1] as string };
    ctx = propagation.setBaggage(ctx, propagation.createBaggage(entries));
  }
  if (requestId === undefined) return ctx;
  const identity = { requestId, correlationId: correlationId!, tenantId: tenantId!, userId: userId!, jobId, traceId: requestTraceId! };
  return ctx.setValue(REQUEST_CONTEXT_KEY, new RequestContextImpl(identity, values && Object.entries(values), store, auditSharedStateAccess));
}

/** The request-scoped values a carrier takes to the worker (to name one that cannot be cloned). */
export function carriedValues(carrier: ContextCarrier): Record<string, unknown> {
  return carrier[10] ?? {};
}

function hasKeys(object: object): boolean {
  for (const _ in object) return true;
  return false;
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
