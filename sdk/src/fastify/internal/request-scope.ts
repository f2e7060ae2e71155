import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { context, SpanKind, trace, type Context, type Span } from '@opentelemetry/api';
import type { RequestContext } from '../../context/types.js';
import { recordError, runRequest } from '../../context/internal/request-scope.js';
import { inboundContext, inboundCorrelationId, recordOutcome, traceResponse } from '../../http/internal/inbound.js';
import { putServerAttributes, serverSpanAttributes, type ServerAttributes } from '../../http/internal/server-attributes.js';
import type { Identity } from '../../http/types.js';
import { reportOnce } from '../../tracing/internal/report.js';
import type { FastifyRequestContextOptions } from '../types.js';

/** Where the plugin keeps a request's own scope on the Fastify request (a request decorator). */
export const REQUEST_SCOPE = Symbol('isotrace.fastify.requestScope');

/** What the plugin keeps per request. */
export interface RequestScope {
  /** The OpenTelemetry context holding the request context and its SERVER span, where the route's handler runs. */
  readonly context: Context;
  /** The first error Fastify's error handler was given for this request. */
  error: unknown;
  errored: boolean;
}

interface ScopedRequest extends FastifyRequest {
  [REQUEST_SCOPE]: RequestScope | undefined;
}

/** The request's scope, or undefined before the plugin admitted it. */
export function scopeOf(request: FastifyRequest): RequestScope | undefined {
  return (request as ScopedRequest)[REQUEST_SCOPE];
}

/** Keeps the first error of the request, recorded on its span if it decides a 5xx answer. */
export function rememberError(request: FastifyRequest, error: unknown): void {
  const scope = scopeOf(request);
  if (!scope || scope.errored) return;
  scope.errored = true;
  scope.error = error;
}

/**
 * The `onRequest` hook: identifies the request, then continues Fastify's
 * lifecycle (`next`) inside a new request context and SERVER span that ends
 * when the response is done. A refused request is answered here and never
 * reaches the route.
 */
export function enterRequest(options: FastifyRequestContextOptions, request: FastifyRequest, reply: FastifyReply, next: HookHandlerDoneFunction): void {
  serve(options, request, reply, next).catch((error: unknown) => {
    // Only app callbacks outside the request (e.g. onUnidentified) get here: answer instead of hanging.
    reportOnce('fastify-plugin-callback-threw', 'an isotracePlugin callback threw outside the request; answering 500.', error);
    answerInternalError(reply);
  });
}

async function serve(options: FastifyRequestContextOptions, request: FastifyRequest, reply: FastifyReply, next: HookHandlerDoneFunction): Promise<void> {
  const trusted = isTrusted(options, request);
  const parent = inboundContext(request.raw, trusted);
  let identity: Identity | undefined;
  let refusal: unknown;
  try {
    const identified = options.identify(request);
    // Most identify() hooks answer synchronously: awaiting only a thenable saves every request a turn of the microtask queue.
    identity = isThenable(identified) ? await identified : identified;
  } catch (error) {
    refusal = error;
  }
  if (!identity) {
    await unidentified(options, request, reply, refusal);
    return;
  }
  const correlationId = inboundCorrelationId(request.raw, parent);
  const route = request.routeOptions.url;
  const attributes = serverSpanAttributes(request.raw, trusted);
  const start = route === undefined ? attributes.start : { ...attributes.start, 'http.route': route };
  let entered = false;
  try {
    await runRequest(
      { ...identity, ...(correlationId ? { correlationId } : {}), name: spanName(options, request, route) },
      (ctx) => {
        entered = true;
        return continueInContext(request, reply, ctx, attributes, next);
      },
      { kind: SpanKind.SERVER, attributes: start },
      parent,
    );
  } catch (error) {
    if (entered) return; // the lifecycle ran; Fastify answered and the span recorded it
    // Failures before the context existed (isotrace not started, an identity that is no valid init): never run the route without one.
    reportOnce('fastify-request-context-failed', 'isotracePlugin could not create a request context; answering 500.', error);
    answerInternalError(reply);
  }
}

/**
 * Continues Fastify's lifecycle inside the request context and settles when
 * the response is finished or the connection closed, never earlier: the
 * span's status code and outcome are only known then.
 */
function continueInContext(request: FastifyRequest, reply: FastifyReply, ctx: RequestContext, attributes: ServerAttributes, next: HookHandlerDoneFunction): Promise<void> {
  const span = trace.getActiveSpan();
  if (span) putServerAttributes(span, attributes);
  const scope: RequestScope = { context: context.active(), error: undefined, errored: false };
  (request as ScopedRequest)[REQUEST_SCOPE] = scope;
  request.isotrace = ctx;
  reply.header('x-request-id', ctx.requestId);
  reply.header('x-correlation-id', ctx.correlationId);
  if (span) reply.header('traceresponse', traceResponse(span.spanContext()));
  const res = reply.raw;
  return new Promise<void>((resolve) => {
    let settled = false;
    const done = (): void => {
      if (settled) return;
      settled = true;
      if (span) recordFastifyOutcome(span, reply, scope);
      resolve();
    };
    // 'close' follows 'finish' on every answered request: the outcome is recorded once. Plain listeners, not
    // once(): done() acts once anyway, and they go away with the response.
    res.on('finish', done);
    res.on('close', done);
    // A client gone while identify() ran has already emitted 'close'.
    if (res.destroyed) done();
    next();
  });
}

/** The response's side of the SERVER span: an error the error handler got decides it when it led to a 5xx or a cut response. */
function recordFastifyOutcome(span: Span, reply: FastifyReply, scope: RequestScope): void {
  const res = reply.raw;
  const failed = scope.errored && (!res.headersSent || res.statusCode >= 500 || !res.writableFinished);
  if (failed) recordError(span, scope.error);
  recordOutcome(span, reply.request.raw, res, { threw: failed, route: undefined, nameByRoute: false });
}

async function unidentified(options: FastifyRequestContextOptions, request: FastifyRequest, reply: FastifyReply, error: unknown): Promise<void> {
  if (options.onUnidentified) await options.onUnidentified(request, reply, error);
  // Fail closed: a refused request never continues to the route, whatever onUnidentified did.
  if (!reply.sent) void reply.code(401).send({ error: 'unauthenticated' });
}

function isTrusted(options: FastifyRequestContextOptions, request: FastifyRequest): boolean {
  try {
    return options.trustInbound?.(request) === true;
  } catch (error) {
    reportOnce('fastify-trust-inbound-threw', 'trustInbound() threw; treating the peer as untrusted.', error);
    return false;
  }
}

function spanName(options: FastifyRequestContextOptions, request: FastifyRequest, route: string | undefined): string {
  if (typeof options.name === 'function') return options.name(request);
  if (options.name !== undefined) return options.name;
  return route === undefined ? request.method : `${request.method} ${route}`;
}

function answerInternalError(reply: FastifyReply): void {
  if (!reply.sent) void reply.code(500).send({ error: 'internal error' });
  else if (!reply.raw.writableEnded) reply.raw.destroy();
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | undefined)?.then === 'function';
}
