import { isSpanContextValid, propagation, ROOT_CONTEXT, trace, type BaggageEntry, type Context } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { auditSharedStateAccess } from '../../audit/internal/runtime-audit.js';
import { REQUEST_CONTEXT_KEY } from '../../context/internal/keys.js';
import { RequestContextImpl } from '../../context/internal/request-context.js';
import { requestContextOf } from '../../context/internal/request-scope.js';
import type { RequestContextSnapshot } from '../../context/types.js';
import type { SharedStateStore } from '../../shared-state/types.js';

/**
 * A context as structured-clone data for a worker-thread hop: the span
 * context, the baggage entries and the request-context snapshot. Plain values
 * rather than W3C header strings: a thread hop needs no percent-encoding or
 * parsing (child processes, which do, use the env carriers).
 */
export interface ContextCarrier {
  span?: { traceId: string; spanId: string; traceFlags: number; traceState?: string };
  baggage?: Array<[key: string, value: string]>;
  request?: RequestContextSnapshot;
}

/** Captures `ctx` (span context, baggage, request context) as plain data. */
export function captureCarrier(ctx: Context): ContextCarrier {
  const carrier: ContextCarrier = {};
  const spanContext = trace.getSpanContext(ctx);
  if (spanContext && isSpanContextValid(spanContext)) {
    const { traceId, spanId, traceFlags, traceState } = spanContext;
    carrier.span = traceState ? { traceId, spanId, traceFlags, traceState: traceState.serialize() } : { traceId, spanId, traceFlags };
  }
  const baggage = propagation.getBaggage(ctx);
  if (baggage) carrier.baggage = baggage.getAllEntries().map(([key, entry]) => [key, entry.value]);
  const request = requestContextOf(ctx);
  if (request) carrier.request = request.toSnapshot();
  return carrier;
}

/** The OpenTelemetry context a carrier describes: remote parent span, baggage and a copy of the request context. */
export function restoreContext(carrier: ContextCarrier, store: SharedStateStore): Context {
  let ctx = ROOT_CONTEXT;
  if (carrier.span) {
    const { traceState, ...ids } = carrier.span;
    ctx = trace.setSpanContext(ctx, { ...ids, isRemote: true, ...(traceState ? { traceState: new TraceState(traceState) } : {}) });
  }
  if (carrier.baggage) {
    const entries: Record<string, BaggageEntry> = {};
    for (const [key, value] of carrier.baggage) entries[key] = { value };
    ctx = propagation.setBaggage(ctx, propagation.createBaggage(entries));
  }
  return carrier.request ? withRequest(ctx, carrier.request, store) : ctx;
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
