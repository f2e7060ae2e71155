import type { IncomingMessage, ServerResponse } from 'node:http';
import { defaultTextMapGetter, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import { W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { directAttributes, putAttribute } from '../../context/internal/checked-attributes.js';
import { BAGGAGE, CORRELATION_ID_PATTERN } from '../../context/internal/keys.js';
import { recordError, runRequest } from '../../context/internal/request-scope.js';
import { reportOnce } from '../../tracing/internal/report.js';
import type { RequestContextInit } from '../../context/types.js';
import type { HttpHandler, HttpRequestContextOptions, Identity } from '../types.js';
import { putServerAttributes, serverSpanAttributes, watchRoute } from './server-attributes.js';

const traceContext = new W3CTraceContextPropagator();
const baggagePropagator = new W3CBaggagePropagator();

/**
 * Serves each HTTP request in its own request context and SERVER span.
 * Works as a node:http listener (`http.createServer(httpRequestContext(opts, handler))`)
 * and as Express-style middleware (`app.use(httpRequestContext(opts))`, which
 * runs the rest of the chain inside the context).
 *
 * - The span continues a valid inbound `traceparent`/`tracestate` (invalid ones
 *   are ignored, as W3C Trace Context says) and ends when the response is done.
 * - It follows the HTTP semantic conventions: `url.path` (the full path, also
 *   under an Express mount point), `url.scheme`, `server.address`/`server.port`,
 *   `http.response.status_code`; `http.route` and the name `GET /items/:id`
 *   when an Express-style router dispatched the request to a route; for a
 *   handler that throws, the exception, its `error.type` and status ERROR (the
 *   client gets a 500, or a cut connection once headers were sent); for any
 *   other 5xx, `error.type` is the status code. A sampler sees the name, the
 *   kind, `http.request.method` and `url.path`; the other attributes are set
 *   as soon as the span has started.
 * - Identity comes only from `identify(req)`; inbound baggage is kept only when
 *   `trustInbound(req)` is true. A correlation id from `x-correlation-id` or
 *   baggage is used when it is valid (1–128 of `A-Za-z0-9_.:@-`), else replaced.
 * - Responses carry `x-request-id`, `x-correlation-id` and `traceresponse`,
 *   added as the response's head is written.
 * - When identify() returns nothing or throws: 401 (or `onUnidentified`), no context.
 *
 * Throws TypeError for bad options.
 */
export function httpRequestContext<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse>(
  options: HttpRequestContextOptions<Req, Res>,
  handler?: HttpHandler<Req, Res>,
): (req: Req, res: Res, next?: (error?: unknown) => void) => void {
  if (options === null || typeof options !== 'object' || typeof options.identify !== 'function') {
    throw new TypeError("httpRequestContext: option 'identify' must be a function returning the request's tenantId and userId.");
  }
  if (options.trustInbound !== undefined && typeof options.trustInbound !== 'function') throw new TypeError("httpRequestContext: option 'trustInbound' must be a function.");
  if (handler !== undefined && typeof handler !== 'function') throw new TypeError('httpRequestContext(options, handler): handler must be a function.');

  return (req, res, next) => {
    try {
      serve(options, handler, req, res, next);
    } catch (error) {
      callbackFailed(res, error);
    }
  };
}

/**
 * Identifies the request, then serves it in its own request context. Not
 * async: with a synchronous identify() (most are) the request starts without
 * a promise or a turn of the microtask queue of its own.
 */
function serve<Req extends IncomingMessage, Res extends ServerResponse>(
  options: HttpRequestContextOptions<Req, Res>,
  handler: HttpHandler<Req, Res> | undefined,
  req: Req,
  res: Res,
  next: ((error?: unknown) => void) | undefined,
): void {
  const trusted = isTrusted(options, req);
  const parent = inboundContext(req, trusted);
  let identified: Identity | undefined | PromiseLike<Identity | undefined>;
  try {
    identified = options.identify(req);
  } catch (error) {
    unidentified(options, req, res, error);
    return;
  }
  if (!isThenable(identified)) {
    admit(options, handler, req, res, next, trusted, parent, identified);
    return;
  }
  Promise.resolve(identified)
    .then(
      (identity) => admit(options, handler, req, res, next, trusted, parent, identity),
      (error: unknown) => unidentified(options, req, res, error),
    )
    .catch((error: unknown) => callbackFailed(res, error));
}

/** Serves an identified request in a new request context and SERVER span; refuses one identify() did not identify. */
function admit<Req extends IncomingMessage, Res extends ServerResponse>(
  options: HttpRequestContextOptions<Req, Res>,
  handler: HttpHandler<Req, Res> | undefined,
  req: Req,
  res: Res,
  next: ((error?: unknown) => void) | undefined,
  trusted: boolean,
  parent: Context,
  identity: Identity | undefined,
): void {
  if (!identity) {
    unidentified(options, req, res, undefined);
    return;
  }
  const correlationId = inboundCorrelationId(req, parent);
  const init: RequestContextInit = { ...identity, name: spanName(options, req) };
  if (correlationId) init.correlationId = correlationId;
  const attributes = serverSpanAttributes(req, trusted);
  const run = (): unknown => (handler ? handler(req, res, next ?? failOn(res)) : next?.());
  runRequest(
    init,
    (ctx) => {
      const span = trace.getActiveSpan();
      if (span) putServerAttributes(span, attributes);
      addHeadersWithHead(res, ctx.requestId, ctx.correlationId, span);
      return untilResponded(req, res, span, run, next, options.name === undefined);
    },
    { kind: SpanKind.SERVER, attributes: attributes.start },
    parent,
  ).catch((error: unknown) => {
    // Handler errors are already recorded and answered; this is for failures before it ran (e.g. isotrace not started).
    if (!res.headersSent && !res.writableEnded) {
      reportOnce('http-request-context-failed', 'httpRequestContext could not create a request context; answering 500.', error);
      res.statusCode = 500;
      res.end();
    }
  });
}

/**
 * Adds `x-request-id`, `x-correlation-id` and `traceresponse` to the response
 * as its head is written (res.writeHead(), which write() and end() call when
 * the handler did not), not before the handler runs: a header set before a
 * handler's writeHead(status, headers) makes Node merge the handler's headers
 * one setHeader() at a time, which cost the HTTP bench's server about a tenth
 * of its requests/s. A header of the same name the handler set wins.
 */
function addHeadersWithHead(res: ServerResponse, requestId: string, correlationId: string, span: Span | undefined): void {
  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, ...args: unknown[]): ServerResponse {
    if (!this.headersSent) {
      const ours: [string, string][] = [['x-request-id', requestId], ['x-correlation-id', correlationId]];
      if (span) ours.push(['traceresponse', traceResponse(span.spanContext())]);
      const last = args.length > 1 ? args[args.length - 1] : undefined;
      // Headers given as an object, and none set before: ours join a copy of them, and Node keeps its one-pass path.
      if (isHeaderObject(last) && this.getHeaderNames().length === 0) args[args.length - 1] = withOwnHeaders(last, ours);
      else for (const [name, value] of ours) if (!this.hasHeader(name)) this.setHeader(name, value);
    }
    return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
  } as ServerResponse['writeHead'];
}

function isHeaderObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `headers` and ours (those it has no name of, in any case), as a new object. */
function withOwnHeaders(headers: Record<string, unknown>, ours: readonly [string, string][]): Record<string, unknown> {
  const merged: Record<string, unknown> = {};
  for (const [name, value] of ours) if (!hasHeaderNamed(headers, name)) merged[name] = value;
  return Object.assign(merged, headers);
}

function hasHeaderNamed(headers: Record<string, unknown>, lowerCaseName: string): boolean {
  for (const key in headers) if (key.length === lowerCaseName.length && key.toLowerCase() === lowerCaseName) return true;
  return false;
}

/** Only app callbacks outside the request (e.g. onUnidentified) get here: answer instead of hanging or crashing. */
function callbackFailed(res: ServerResponse, error: unknown): void {
  reportOnce('http-request-context-callback-threw', 'an httpRequestContext() callback threw outside the request; answering 500.', error);
  if (!res.headersSent) {
    res.statusCode = 500;
    res.end();
  } else res.destroy();
}

/**
 * Runs the handler and settles when the response is finished or the connection
 * closed, never earlier: the span's status code and route are only known then.
 * A handler's error is recorded here and answered (Express: passed to next()),
 * so the request span is never failed twice.
 */
function untilResponded(req: IncomingMessage, res: ServerResponse, span: Span | undefined, run: () => unknown, next: ((error?: unknown) => void) | undefined, nameByRoute: boolean): Promise<void> {
  const route = watchRoute(req);
  return new Promise<void>((resolve) => {
    let threw = false;
    let settled = false;
    const done = (): void => {
      if (settled) return;
      settled = true;
      if (span) recordOutcome(span, req, res, { threw, route: route(), nameByRoute });
      resolve();
    };
    // A response emits 'close' once it is finished (the tick after 'finish') or its connection is gone, whichever
    // comes first: one listener sees both. A plain listener, not once(): it goes away with the response.
    res.on('close', done);
    // A connection closed before the handler ran has already emitted 'close'.
    const ran = (): void => {
      if (res.destroyed) done();
    };
    const failed = (error: unknown): void => {
      try {
        threw = true;
        if (span) recordError(span, error);
        answerError(res, next, error);
      } finally {
        ran();
      }
    };
    let result: unknown;
    try {
      result = run();
    } catch (error) {
      failed(error);
      return;
    }
    // A synchronous handler's request is settled without a promise of its own.
    if (isThenable(result)) Promise.resolve(result).then(ran, failed);
    else ran();
  });
}

/** Answers a handler's error: Express's error handlers get it, else a 500 (or a cut connection once headers were sent). */
function answerError(res: ServerResponse, next: ((error?: unknown) => void) | undefined, error: unknown): void {
  if (next) next(error);
  else if (!res.headersSent) {
    res.statusCode = 500;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ error: 'internal error' }));
  } else res.destroy();
}

/** The response's side of the SERVER span, per the HTTP semantic conventions. */
export function recordOutcome(span: Span, req: IncomingMessage, res: ServerResponse, outcome: { threw: boolean; route: string | undefined; nameByRoute: boolean }): void {
  const direct = directAttributes(span);
  // No status line went out on a connection closed before headers: a status code here would be made up.
  if (res.headersSent) putAttribute(span, direct, 'http.response.status_code', res.statusCode, true);
  if (outcome.route !== undefined) {
    putAttribute(span, direct, 'http.route', outcome.route, true);
    if (outcome.nameByRoute) span.updateName(`${req.method ?? 'HTTP'} ${outcome.route}`);
  }
  if (outcome.threw) return; // the exception's type, message and ERROR status are already on the span
  if (res.headersSent && res.statusCode >= 500) {
    span.setAttribute('error.type', String(res.statusCode));
    span.setStatus({ code: SpanStatusCode.ERROR });
  } else if (!res.writableFinished) {
    span.setAttribute('error.type', 'connection_closed');
    span.setStatus({ code: SpanStatusCode.ERROR, message: 'the connection closed before the response was complete' });
  }
}

function isTrusted<Req extends IncomingMessage>(options: HttpRequestContextOptions<Req, never>, req: Req): boolean {
  try {
    return options.trustInbound?.(req) === true;
  } catch (error) {
    reportOnce('trust-inbound-threw', 'trustInbound() threw; treating the peer as untrusted.', error);
    return false;
  }
}

/** Trace context always (W3C rules drop invalid values); baggage only from trusted peers. */
export function inboundContext(req: IncomingMessage, trusted: boolean): Context {
  const withTrace = traceContext.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter);
  return trusted ? baggagePropagator.extract(withTrace, req.headers, defaultTextMapGetter) : withTrace;
}

/** A valid inbound correlation id: the header first, then (even from untrusted peers) the baggage entry. */
export function inboundCorrelationId(req: IncomingMessage, parent: Context): string | undefined {
  const header = req.headers['x-correlation-id'];
  if (typeof header === 'string' && CORRELATION_ID_PATTERN.test(header)) return header;
  const fromBaggage = (propagation.getBaggage(parent) ?? propagation.getBaggage(baggagePropagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter)))
    ?.getEntry(BAGGAGE.correlationId)?.value;
  return fromBaggage !== undefined && CORRELATION_ID_PATTERN.test(fromBaggage) ? fromBaggage : undefined;
}

function unidentified<Req extends IncomingMessage, Res extends ServerResponse>(options: HttpRequestContextOptions<Req, Res>, req: Req, res: Res, error: unknown): void {
  if (options.onUnidentified) {
    options.onUnidentified(req, res, error);
    return;
  }
  res.statusCode = 401;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ error: 'unauthenticated' }));
}

function spanName<Req extends IncomingMessage>(options: HttpRequestContextOptions<Req, never>, req: Req): string {
  if (typeof options.name === 'function') return options.name(req);
  return options.name ?? req.method ?? 'HTTP';
}

/** W3C Trace Context Level 2 `traceresponse`: version-traceid-spanid-flags of the server span. */
export function traceResponse({ traceId, spanId, traceFlags }: { traceId: string; spanId: string; traceFlags: number }): string {
  return `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

/** Without Express, a handler's next(error) answers 500. */
function failOn(res: ServerResponse): (error?: unknown) => void {
  return (error) => {
    if (error === undefined || res.headersSent) return;
    res.statusCode = 500;
    res.end();
  };
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | undefined)?.then === 'function';
}
