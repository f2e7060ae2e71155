import { defaultTextMapGetter, defaultTextMapSetter, ROOT_CONTEXT, type Context } from '@opentelemetry/api';
import { auditSharedStateAccess } from '../../audit/internal/runtime-audit.js';
import { internalPropagator } from '../../propagation/internal/destination-baggage-propagator.js';
import { REQUEST_CONTEXT_KEY } from '../../context/internal/keys.js';
import { RequestContextImpl } from '../../context/internal/request-context.js';
import { requestContextOf } from '../../context/internal/request-scope.js';
import type { RequestContextSnapshot } from '../../context/types.js';
import type { SharedStateStore } from '../../shared-state/types.js';

/** Everything needed to continue a context elsewhere: W3C headers plus the request-context snapshot. */
export interface ContextCarrier {
  traceparent?: string;
  tracestate?: string;
  baggage?: string;
  request?: RequestContextSnapshot;
}

/** Captures `ctx` (trace, baggage, request context) as plain data that can cross threads and processes. */
export function captureCarrier(ctx: Context): ContextCarrier {
  const carrier: ContextCarrier = {};
  internalPropagator.inject(ctx, carrier, defaultTextMapSetter);
  const request = requestContextOf(ctx);
  if (request) carrier.request = request.toSnapshot();
  return carrier;
}

/** The OpenTelemetry context a carrier describes: remote parent span, baggage and a copy of the request context. */
export function restoreContext(carrier: ContextCarrier, store: SharedStateStore): Context {
  const { request, ...headers } = carrier;
  const ctx = internalPropagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
  return request ? ctx.setValue(REQUEST_CONTEXT_KEY, RequestContextImpl.fromSnapshot(request, store, auditSharedStateAccess)) : ctx;
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
