import { propagation, ROOT_CONTEXT, trace, type Context, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { BAGGAGE, CORRELATION_ID_PATTERN } from '../../context/internal/keys.js';
import type { Identity } from '../../http/types.js';
import { identityFirst } from '../../propagation/internal/destination-baggage-propagator.js';

/*
 * Trace context in `params._meta` (MCP SEP-414): the W3C `traceparent`,
 * `tracestate` and `baggage` values under those unprefixed keys. isotrace's
 * own propagators, never the global one: that one gives baggage only to
 * HTTP destinations it has checked, and `_meta` has its own rule (the
 * server's name against propagateTo).
 */

const traceContext = new W3CTraceContextPropagator();
const baggagePropagator = new W3CBaggagePropagator();

type Meta = Record<string, unknown>;

const metaSetter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

/** Only string values count: `_meta` is the peer's JSON, and anything else is not a W3C header value. */
const metaGetter: TextMapGetter<Meta> = {
  get: (carrier, key) => {
    const value = carrier[key];
    return typeof value === 'string' ? value : undefined;
  },
  keys: (carrier) => Object.keys(carrier),
};

/**
 * The `_meta` entries for an outbound request: traceparent/tracestate of the
 * span in `spanContext`, and the baggage of `baggageContext` (the caller's
 * context) when one is given, i.e. when the server is allowed to receive it.
 */
export function metaEntries(spanContext: Context, baggageContext: Context | undefined): Record<string, string> {
  const entries: Record<string, string> = {};
  traceContext.inject(spanContext, entries, metaSetter);
  if (baggageContext) baggagePropagator.inject(identityFirst(baggageContext), entries, metaSetter);
  return entries;
}

/** The trace context `_meta` carries (invalid values are ignored, as W3C says), on an empty context. */
export function extractTrace(meta: Meta | undefined): Context | undefined {
  if (!meta) return undefined;
  const extracted = traceContext.extract(ROOT_CONTEXT, meta, metaGetter);
  return trace.getSpanContext(extracted) ? extracted : undefined;
}

/** `context` with the baggage `_meta` carries (for trusted peers only). */
export function withMetaBaggage(context: Context, meta: Meta | undefined): Context {
  return meta ? baggagePropagator.extract(context, meta, metaGetter) : context;
}

/** A valid correlation id from `_meta` baggage: taken even from untrusted peers, like the HTTP header. */
export function metaCorrelationId(meta: Meta | undefined): string | undefined {
  const value = meta && propagation.getBaggage(withMetaBaggage(ROOT_CONTEXT, meta))?.getEntry(BAGGAGE.correlationId)?.value;
  return value !== undefined && CORRELATION_ID_PATTERN.test(value) ? value : undefined;
}

/** The identity a (trusted) baggage names, when it names both a tenant and a user. */
export function baggageIdentity(context: Context): Identity | undefined {
  const baggage = propagation.getBaggage(context);
  const tenantId = baggage?.getEntry(BAGGAGE.tenantId)?.value;
  const userId = baggage?.getEntry(BAGGAGE.userId)?.value;
  if (!tenantId || !userId) return undefined;
  const jobId = baggage?.getEntry(BAGGAGE.jobId)?.value;
  return jobId ? { tenantId, userId, jobId } : { tenantId, userId };
}
