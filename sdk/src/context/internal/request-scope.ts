import { randomUUID } from 'node:crypto';
import { context, propagation, SpanStatusCode, trace, type Attributes, type Baggage, type BaggageEntry, type Context, type Link, type Span, type SpanKind } from '@opentelemetry/api';
import { auditSharedStateAccess } from '../../audit/internal/runtime-audit.js';
import { RequestContextMissingError } from '../../errors/errors.js';
import { GEN_AI } from '../../tools/internal/gen-ai.js';
import { getRuntime } from '../../tracing/internal/runtime.js';
import type { RequestContext, RequestContextInit, RequestContextValues, ValueKey } from '../types.js';
import { bindListenersToRequests, markBoundToRequest, type ListenerTarget } from './bind-listeners.js';
import { ATTR, BAGGAGE, CORRELATION_ID_PATTERN, REQUEST_CONTEXT_KEY } from './keys.js';
import { requestContextOf } from './active-request.js';
import { RequestContextImpl } from './request-context.js';

export { requestContextOf };

/** How the edge adapters (HTTP, WebSocket, workers) shape a request span. */
export interface RequestSpanOptions {
  kind?: SpanKind;
  links?: Link[];
  attributes?: Attributes;
}

/**
 * Runs `fn` in a new request context: a fresh request id, a request span, the
 * context under an OpenTelemetry context key and its identity in W3C baggage.
 * The span ends when `fn` settles and records its error. Nesting makes a new
 * request (new request id; the correlation id is inherited unless given);
 * values are not inherited.
 *
 * Rejects with TypeError on a bad `init`, TracingNotStartedError before
 * startTracing(), and with whatever `fn` throws.
 *
 * ```ts
 * await withRequestContext({ tenantId: 'acme', userId: 'u1' }, async (ctx) => {
 *   await ctx.sharedState.set('last-seen', Date.now());
 * });
 * ```
 */
export async function withRequestContext<T>(init: RequestContextInit, fn: (ctx: RequestContext) => T | Promise<T>): Promise<T> {
  return runRequest(init, fn);
}

/** withRequestContext() with the span shape and parent an edge adapter chooses. */
export async function runRequest<T>(
  init: RequestContextInit,
  fn: (ctx: RequestContext) => T | Promise<T>,
  spanOptions: RequestSpanOptions = {},
  parent: Context = context.active(),
): Promise<T> {
  const runtime = getRuntime('withRequestContext()');
  assertInit(init);
  if (typeof fn !== 'function') throw new TypeError('withRequestContext(init, fn): fn must be a function.');

  const requestId = init.requestId ?? randomUUID();
  const correlationId = init.correlationId ?? inheritedCorrelationId(parent) ?? requestId;
  // One attribute object, the edge adapter's first: identity keys win (as a spread of both would).
  const attributes: Attributes = spanOptions.attributes ? { ...spanOptions.attributes } : {};
  attributes[ATTR.requestId] = requestId;
  attributes[ATTR.correlationId] = correlationId;
  attributes[ATTR.tenantId] = init.tenantId;
  attributes[ATTR.userId] = init.userId;
  attributes[ATTR.requestSpan] = true;
  if (init.jobId !== undefined) attributes[ATTR.jobId] = init.jobId;
  if (init.conversationId !== undefined) attributes[GEN_AI.conversationId] = init.conversationId;
  const span = runtime.tracer.startSpan(init.name ?? 'request', { kind: spanOptions.kind, links: spanOptions.links, attributes }, parent);
  const ctx = new RequestContextImpl(
    { requestId, correlationId, tenantId: init.tenantId, userId: init.userId, jobId: init.jobId, traceId: span.spanContext().traceId, conversationId: init.conversationId },
    init.values === undefined ? undefined : Object.entries(init.values),
    runtime.store,
    auditSharedStateAccess,
  );
  const bound = propagation.setBaggage(trace.setSpan(parent, span).setValue(REQUEST_CONTEXT_KEY, ctx), identityBaggage(parent, ctx));
  // Counted so a runtime replaced by a restart releases its own store only after this request.
  runtime.requests?.enter();
  try {
    return await context.with(bound, fn, undefined, ctx);
  } catch (error) {
    recordError(span, error);
    throw error;
  } finally {
    span.end();
    runtime.requests?.leave();
  }
}

/**
 * The request context bound to the running code.
 * Throws RequestContextMissingError outside a request.
 */
export function getRequestContext(): RequestContext {
  const ctx = tryGetRequestContext();
  if (!ctx) throw new RequestContextMissingError('getRequestContext()');
  return ctx;
}

/** The request context bound to the running code, or undefined outside a request. */
export function tryGetRequestContext(): RequestContext | undefined {
  return requestContextOf(context.active());
}

/**
 * A request-scoped value of the current request, or `fallback` when unset.
 * Throws RequestContextMissingError outside a request.
 */
export function getFromContext<K extends ValueKey>(key: K, fallback?: RequestContextValues[K]): RequestContextValues[K] | undefined {
  const ctx = tryGetRequestContext();
  if (!ctx) throw new RequestContextMissingError(`getFromContext('${key}')`);
  const value = ctx.get(key);
  return value === undefined ? fallback : value;
}

/**
 * Merges values into the current request's context (visible to the rest of
 * this request only) and returns the context.
 * Throws RequestContextMissingError outside a request.
 */
export function updateRequestContext(values: Partial<RequestContextValues>): RequestContext {
  const ctx = tryGetRequestContext();
  if (!ctx) throw new RequestContextMissingError('updateRequestContext()');
  if (values === null || typeof values !== 'object') throw new TypeError('updateRequestContext(values): values must be an object of request-scoped values.');
  for (const [key, value] of Object.entries(values)) ctx.set(key, value);
  return ctx;
}

/**
 * Binds `fn` to the current request, for callback and pooled APIs that run
 * callbacks outside the caller's async context, or in another request's.
 * Throws RequestContextMissingError outside a request.
 *
 * Given an EventEmitter or EventTarget (a stream, socket, AbortSignal, an
 * app-wide bus), binds every listener added to it from then on, inside a
 * request, to the request that adds it: the listener runs as that request
 * whoever emits (OpenTelemetry's `context.bind(ctx, emitter)`, per listener).
 * Listeners added outside requests are left alone; this form may be called
 * anywhere, and returns the emitter.
 *
 * ```ts
 * bus.on('price', bindToRequest((price) => getSharedState().set('price', price)));
 * const events = bindToRequest(new EventEmitter()); // module level: each listener keeps its request
 * ```
 */
export function bindToRequest<F extends (...args: never[]) => unknown>(fn: F): F;
export function bindToRequest<E extends ListenerTarget>(emitter: E): E;
export function bindToRequest(target: ((...args: never[]) => unknown) | ListenerTarget): unknown {
  if (typeof target !== 'function') return bindListenersToRequests(target);
  if (!tryGetRequestContext()) throw new RequestContextMissingError('bindToRequest()');
  return markBoundToRequest(context.bind(context.active(), target));
}

const REQUIRED_FIELDS = ['tenantId', 'userId'] as const;
const OPTIONAL_FIELDS = ['jobId', 'requestId', 'correlationId', 'name', 'conversationId'] as const;

function assertInit(init: RequestContextInit): void {
  if (init === null || typeof init !== 'object') throw new TypeError('withRequestContext(init, fn): init must be an object with tenantId and userId.');
  for (const field of REQUIRED_FIELDS) {
    if (typeof init[field] !== 'string' || init[field].length === 0) throw new TypeError(`withRequestContext: init.${field} must be a non-empty string.`);
  }
  for (const field of OPTIONAL_FIELDS) {
    const value = init[field];
    if (value !== undefined && (typeof value !== 'string' || value.length === 0)) throw new TypeError(`withRequestContext: init.${field} must be a non-empty string when given.`);
  }
  if (init.values !== undefined && (init.values === null || typeof init.values !== 'object')) throw new TypeError('withRequestContext: init.values must be an object when given.');
}

/** The enclosing request's correlation id, else a valid one from (already trusted) baggage. */
function inheritedCorrelationId(parent: Context): string | undefined {
  const enclosing = requestContextOf(parent);
  if (enclosing) return enclosing.correlationId;
  const inbound = propagation.getBaggage(parent)?.getEntry(BAGGAGE.correlationId)?.value;
  return inbound !== undefined && CORRELATION_ID_PATTERN.test(inbound) ? inbound : undefined;
}

/**
 * The new request's baggage: its identity, after the entries it inherits from
 * `parent`. A request nested in another tenant's or user's request inherits
 * nothing else: the outer request's other entries (a trusted peer's included)
 * were trusted for that tenant and user only.
 */
function identityBaggage(parent: Context, ctx: RequestContextImpl): Baggage {
  const outer = requestContextOf(parent);
  const inherited = outer && (outer.tenantId !== ctx.tenantId || outer.userId !== ctx.userId) ? undefined : propagation.getBaggage(parent);
  // Each setEntry copies the baggage: without inherited entries, build it in one go (same entries, same order).
  if (!inherited) {
    const entries: Record<string, BaggageEntry> = {
      [BAGGAGE.correlationId]: { value: ctx.correlationId },
      [BAGGAGE.tenantId]: { value: ctx.tenantId },
      [BAGGAGE.userId]: { value: ctx.userId },
    };
    if (ctx.jobId !== undefined) entries[BAGGAGE.jobId] = { value: ctx.jobId };
    return propagation.createBaggage(entries);
  }
  const baggage = inherited
    .setEntry(BAGGAGE.correlationId, { value: ctx.correlationId })
    .setEntry(BAGGAGE.tenantId, { value: ctx.tenantId })
    .setEntry(BAGGAGE.userId, { value: ctx.userId });
  if (ctx.jobId !== undefined) return baggage.setEntry(BAGGAGE.jobId, { value: ctx.jobId });
  return inherited.getEntry(BAGGAGE.jobId) === undefined ? baggage : baggage.removeEntry(BAGGAGE.jobId);
}

/** Ends a span's story with the error: status, `error.type` and the exception event. */
export function recordError(span: Span, error: unknown): void {
  const err = error instanceof Error ? error : new Error(String(error));
  span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
  span.setAttribute('error.type', err.name || 'Error');
}
