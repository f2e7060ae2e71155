import { context, propagation, SpanStatusCode, type Attributes, type Baggage, type Context, type Link, type Span, type SpanKind } from '@opentelemetry/api';
import { auditSharedStateAccess } from '../../audit/internal/runtime-audit.js';
import { RequestContextMissingError } from '../../errors/errors.js';
import { thrownText } from '../../errors/internal/thrown.js';
import { GEN_AI } from '../../tools/internal/gen-ai.js';
import { getRuntime, processState, type Runtime } from '../../tracing/internal/runtime.js';
import type { RequestContext, RequestContextInit, RequestContextValues, ValueKey } from '../types.js';
import { bindListenersToRequests, markBoundToRequest, type ListenerTarget } from './bind-listeners.js';
import { directAttributes, putAttribute } from './checked-attributes.js';
import { BAGGAGE, CORRELATION_ID_PATTERN, REQUEST_CONTEXT_KEY } from './keys.js';
import { requestContextOf } from './active-request.js';
import { stampIdentity } from './request-attributes-processor.js';
import { RequestBaggage } from './request-baggage.js';
import { randomUuid } from './random-uuid.js';
import { RequestContextImpl } from './request-context.js';
import { ScopeContext } from './scope-context.js';

export { requestContextOf };

/** How the edge adapters (HTTP, WebSocket, workers) shape a request span. */
export interface RequestSpanOptions {
  kind?: SpanKind;
  links?: Link[];
  attributes?: Attributes;
}

const NO_SPAN_OPTIONS: RequestSpanOptions = Object.freeze({});

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
export function withRequestContext<T>(init: RequestContextInit, fn: (ctx: RequestContext) => T | Promise<T>): Promise<T> {
  // Not async itself: runRequest() is, so a bad call still rejects, one promise the fewer per request.
  return runRequest(init, fn);
}

/**
 * withRequestContext() with the span shape and parent an edge adapter chooses.
 * Not an async function: the span ends in a reaction to `fn`'s promise, one
 * promise and one turn fewer per request than awaiting it.
 */
export function runRequest<T>(
  init: RequestContextInit,
  fn: (ctx: RequestContext) => T | Promise<T>,
  spanOptions: RequestSpanOptions = NO_SPAN_OPTIONS,
  parent: Context = context.active(),
): Promise<T> {
  let request: EnteredRequest;
  let result: T | Promise<T>;
  try {
    request = enterRequest(init, fn, spanOptions, parent);
  } catch (error) {
    return Promise.reject(error);
  }
  try {
    result = context.with(request.scope, fn, undefined, request.ctx);
  } catch (error) {
    leaveRequest(request, true, error);
    return Promise.reject(error);
  }
  return Promise.resolve(result).then(
    (value) => {
      leaveRequest(request, false);
      return value;
    },
    (error: unknown) => {
      leaveRequest(request, true, error);
      throw error;
    },
  );
}

/** A request entered by runRequest(): what leaving it needs. */
interface EnteredRequest {
  readonly runtime: Runtime;
  readonly span: Span;
  readonly ctx: RequestContextImpl;
  /** The request's context: its span, request context and baggage. */
  readonly scope: Context;
}

/** Checks `init`, starts the request span and makes the request's context; throws TypeError on a bad init. */
function enterRequest(init: RequestContextInit, fn: unknown, spanOptions: RequestSpanOptions, parent: Context): EnteredRequest {
  const runtime = getRuntime('withRequestContext()');
  assertInit(init);
  if (typeof fn !== 'function') throw new TypeError('withRequestContext(init, fn): fn must be a function.');

  const outer = requestContextOf(parent);
  const inbound = propagation.getBaggage(parent);
  const requestId = init.requestId ?? randomUuid();
  const correlationId = init.correlationId ?? inheritedCorrelationId(inbound, outer) ?? requestId;
  // Started without the enclosing request (if any): the identity processor must not stamp that one's identity on this span.
  const spanParent = outer ? parent.deleteValue(REQUEST_CONTEXT_KEY) : parent;
  // The adapter's options as they are (the SDK reads kind, links and attributes of them): no options object of its own.
  const span = runtime.tracer.startSpan(init.name ?? 'request', spanOptions, spanParent);
  const ctx = new RequestContextImpl(
    { requestId, correlationId, tenantId: init.tenantId, userId: init.userId, jobId: init.jobId, traceId: span.spanContext().traceId, conversationId: init.conversationId },
    init.values === undefined ? undefined : Object.entries(init.values),
    runtime.store,
    auditSharedStateAccess,
    runtime,
  );
  // The marker and the identity (checked above), written without the SDK validating them again; they win over the adapter's attributes.
  const direct = directAttributes(span);
  stampIdentity(span, ctx, true, direct, true);
  if (init.conversationId !== undefined) putAttribute(span, direct, GEN_AI.conversationId, init.conversationId, true);
  // Counted so a runtime replaced by a restart releases its own store only after this request.
  runtime.requests?.enter();
  // One context with the span, the request and its baggage (what trace.setSpan() and propagation.setBaggage() would set).
  return { runtime, span, ctx, scope: ScopeContext.forRequest(parent, span, ctx, identityBaggage(inbound, outer, ctx)) };
}

/** Ends the request's span (recording `error` when it failed) and releases it. */
function leaveRequest({ runtime, span }: EnteredRequest, failed: boolean, error?: unknown): void {
  if (failed) recordError(span, error);
  span.end();
  runtime.requests?.leave();
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
  const ctx = requestContextOf(context.active());
  // Another copy of isotrace may have started the request: only a compatible one reads it (IsotraceSetupError otherwise).
  if (ctx) processState();
  return ctx;
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

/** The one check of a request's identity: every span of the request carries these values without another one. */
function assertInit(init: RequestContextInit): void {
  if (init === null || typeof init !== 'object') throw new TypeError('withRequestContext(init, fn): init must be an object with tenantId and userId.');
  assertText(init.tenantId, 'tenantId', true);
  assertText(init.userId, 'userId', true);
  assertText(init.jobId, 'jobId', false);
  assertText(init.requestId, 'requestId', false);
  assertText(init.correlationId, 'correlationId', false);
  assertText(init.name, 'name', false);
  assertText(init.conversationId, 'conversationId', false);
  if (init.values !== undefined && (init.values === null || typeof init.values !== 'object')) throw new TypeError('withRequestContext: init.values must be an object when given.');
}

function assertText(value: unknown, field: string, required: boolean): void {
  if (typeof value === 'string' ? value.length > 0 : !required && value === undefined) return;
  throw new TypeError(`withRequestContext: init.${field} must be a non-empty string${required ? '' : ' when given'}.`);
}

/** The enclosing request's correlation id, else a valid one from the (already trusted) baggage it is entered with. */
function inheritedCorrelationId(inbound: Baggage | undefined, enclosing: RequestContextImpl | undefined): string | undefined {
  if (enclosing) return enclosing.correlationId;
  const value = inbound?.getEntry(BAGGAGE.correlationId)?.value;
  return value !== undefined && CORRELATION_ID_PATTERN.test(value) ? value : undefined;
}

/**
 * The new request's baggage: its identity, after the entries it inherits from
 * `inbound`, the baggage it is entered with. A request nested in another
 * tenant's or user's request inherits nothing else: the outer request's other
 * entries (a trusted peer's included) were trusted for that tenant and user only.
 */
function identityBaggage(inbound: Baggage | undefined, outer: RequestContextImpl | undefined, ctx: RequestContextImpl): Baggage {
  const inherited = outer && (outer.tenantId !== ctx.tenantId || outer.userId !== ctx.userId) ? undefined : inbound;
  // Without inherited entries (the usual case) the identity is read from the request when someone asks for it.
  if (!inherited) return new RequestBaggage(ctx);
  const baggage = inherited
    .setEntry(BAGGAGE.correlationId, { value: ctx.correlationId })
    .setEntry(BAGGAGE.tenantId, { value: ctx.tenantId })
    .setEntry(BAGGAGE.userId, { value: ctx.userId });
  if (ctx.jobId !== undefined) return baggage.setEntry(BAGGAGE.jobId, { value: ctx.jobId });
  return inherited.getEntry(BAGGAGE.jobId) === undefined ? baggage : baggage.removeEntry(BAGGAGE.jobId);
}

/** Ends a span's story with the error: status, `error.type` and the exception event. */
export function recordError(span: Span, error: unknown): void {
  const err = error instanceof Error ? error : new Error(thrownText(error));
  span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
  span.setAttribute('error.type', err.name || 'Error');
}
