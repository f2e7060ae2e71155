import type { IncomingMessage } from 'node:http';
import { defaultTextMapGetter, ROOT_CONTEXT, SpanKind, trace, type Context, type Link } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { RawData, WebSocket } from 'ws';
import { runRequest } from '../../context/internal/request-scope.js';
import { runWithEventSink } from '../../events/internal/emit.js';
import { webSocketEvents } from '../../events/internal/websocket-events.js';
import type { Identity } from '../../http/types.js';
import { reportOnce } from '../../tracing/internal/report.js';
import { getRuntime } from '../../tracing/internal/runtime.js';
import type { WebSocketMessageHandler, WebSocketMessageOptions } from '../types.js';
import { DEFAULT_MAX_CONCURRENT_MESSAGES, MessageLimit } from './message-limit.js';

const traceContext = new W3CTraceContextPropagator();

/** What a handler error is answered with unless exposeError() says otherwise (HTTP's bare 500). */
const INTERNAL_ERROR = 'internal error';

/** parseMessage()'s answer for a frame that is not JSON text. */
const MALFORMED = Symbol('malformed message');

/**
 * Gives every message on a `ws` socket its own request context and its own
 * trace, linked to the connection's `websocket.connection` span (the seeds'
 * per-message ContextVar binding). Messages are handled concurrently, at most
 * `maxConcurrentMessages` (default 16) per socket, and never share context,
 * on one socket or across sockets. The handler's return value is sent back as
 * JSON. Errors never carry details to the client: a malformed message gets
 * `{ "error": "malformed message" }`, a refused identity
 * `{ id, "error": "unauthenticated" }`, a handler error
 * `{ id, "error": "internal error" }` (its details on the span; see
 * `exposeError`); the socket stays usable. Progress events the message's
 * request emits (emitProgress(), a tool's `emit`, a worker task's) go to this
 * socket only, as `{ id, "event": {…} }` frames before the reply.
 *
 * The upgrade request's `traceparent` is linked from the connection span, and
 * continued only when `trustInbound(request)` says the peer is trusted.
 *
 * Throws TypeError for bad arguments, TracingNotStartedError before startTracing().
 *
 * ```ts
 * wss.on('connection', (ws, request) =>
 *   handleWebSocketMessages(ws, { request, identify: (req) => auth(req) }, async (msg) => agent.answer(msg)));
 * ```
 */
export function handleWebSocketMessages(ws: WebSocket, options: WebSocketMessageOptions, handler: WebSocketMessageHandler): void {
  assertArguments(ws, options, handler);
  const { tracer } = getRuntime('handleWebSocketMessages()');

  const { parent, links } = connectionParent(options);
  const connection = tracer.startSpan('websocket.connection', { kind: SpanKind.SERVER, attributes: { 'network.protocol.name': 'websocket' }, links }, parent);
  const link: Link = { context: connection.spanContext() };
  ws.once('close', (code: number) => {
    connection.setAttribute('websocket.close_code', code);
    connection.end();
  });

  const limit = new MessageLimit(ws, options.maxConcurrentMessages ?? DEFAULT_MAX_CONCURRENT_MESSAGES, (data, isBinary) =>
    handleMessage(ws, options, handler, data, isBinary, link),
  );
  ws.on('message', (data: RawData, isBinary: boolean) => limit.push(data, isBinary));
}

function assertArguments(ws: WebSocket, options: WebSocketMessageOptions, handler: WebSocketMessageHandler): void {
  if (ws === null || typeof ws !== 'object' || typeof ws.on !== 'function') throw new TypeError('handleWebSocketMessages(ws, …): ws must be a WebSocket from the ws library.');
  if (options === null || typeof options !== 'object' || typeof options.identify !== 'function') throw new TypeError("handleWebSocketMessages: option 'identify' must be a function.");
  for (const hook of ['trustInbound', 'exposeError'] as const) {
    if (options[hook] !== undefined && typeof options[hook] !== 'function') throw new TypeError(`handleWebSocketMessages: option '${hook}' must be a function.`);
  }
  const max = options.maxConcurrentMessages;
  if (max !== undefined && !(Number.isSafeInteger(max) && max >= 1)) throw new TypeError("handleWebSocketMessages: option 'maxConcurrentMessages' must be a positive integer.");
  if (typeof handler !== 'function') throw new TypeError('handleWebSocketMessages(ws, options, handler): handler must be a function.');
}

/**
 * The connection span's parent and links. An untrusted upgrade's traceparent
 * is only linked: as a parent, a client could put the connection under any
 * span it names, e.g. a request span, where the audit would see a span of no
 * request inside that request.
 */
function connectionParent(options: WebSocketMessageOptions): { parent: Context; links: Link[] } {
  const { request } = options;
  if (!request) return { parent: ROOT_CONTEXT, links: [] };
  const upgrade = traceContext.extract(ROOT_CONTEXT, request.headers, defaultTextMapGetter);
  const remote = trace.getSpanContext(upgrade);
  if (!remote) return { parent: ROOT_CONTEXT, links: [] };
  if (isTrusted(options, request)) return { parent: upgrade, links: [] };
  return { parent: ROOT_CONTEXT, links: [{ context: remote }] };
}

function isTrusted(options: WebSocketMessageOptions, request: IncomingMessage): boolean {
  try {
    return options.trustInbound?.(request) === true;
  } catch (error) {
    reportOnce('ws-trust-inbound-threw', 'trustInbound() threw for a WebSocket upgrade; treating the peer as untrusted.', error);
    return false;
  }
}

async function handleMessage(
  ws: WebSocket,
  options: WebSocketMessageOptions,
  handler: WebSocketMessageHandler,
  data: RawData,
  isBinary: boolean,
  link: Link,
): Promise<void> {
  const message = parseMessage(data, isBinary);
  if (message === MALFORMED) {
    // Parser messages quote the input: the reply stays generic.
    reply(ws, { error: 'malformed message' });
    return;
  }
  const id = messageId(message);
  const identity = await identifyMessage(options, message);
  if (!identity) {
    reply(ws, { ...id, error: 'unauthenticated' });
    return;
  }
  try {
    // The message's progress events go to this socket only, before the reply (the seeds' per-user bridge).
    const result = await runRequest(
      { ...identity, name: options.name ?? 'websocket.message' },
      (ctx) => runWithEventSink(ctx, webSocketEvents(ws, id), () => handler(message, ctx)),
      { kind: SpanKind.SERVER, links: [link] },
      ROOT_CONTEXT,
    );
    reply(ws, result ?? null);
  } catch (error) {
    // runRequest recorded the error on the message span; the client gets only what the app chose to expose.
    reply(ws, { ...id, error: exposedError(options, error) });
  }
}

function parseMessage(data: RawData, isBinary: boolean): unknown {
  if (isBinary) return MALFORMED;
  try {
    return JSON.parse(rawText(data)) as unknown;
  } catch {
    return MALFORMED;
  }
}

/** identify()'s answer; a throw or rejection refuses the message and is reported once. */
async function identifyMessage(options: WebSocketMessageOptions, message: unknown): Promise<Identity | undefined> {
  try {
    return await options.identify(options.request, message);
  } catch (error) {
    reportOnce('ws-identify-threw', 'identify() threw for a WebSocket message; answered it "unauthenticated".', error);
    return undefined;
  }
}

/** The text a handler error is answered with: `internal error` unless exposeError() returns a string. */
function exposedError(options: WebSocketMessageOptions, error: unknown): string {
  if (!options.exposeError) return INTERNAL_ERROR;
  try {
    const exposed = options.exposeError(error);
    if (typeof exposed === 'string') return exposed;
    if (exposed !== undefined) reportOnce('ws-expose-error-not-string', 'exposeError() returned neither a string nor undefined; answered "internal error".');
  } catch (hookError) {
    reportOnce('ws-expose-error-threw', 'exposeError() threw; answered "internal error".', hookError);
  }
  return INTERNAL_ERROR;
}

function reply(ws: WebSocket, value: unknown): void {
  if (ws.readyState !== ws.OPEN) return;
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    reportOnce('ws-reply-unserializable', 'a WebSocket handler returned a value that is not JSON; sent an error instead.', error);
    text = JSON.stringify({ error: 'reply is not JSON-serializable' });
  }
  ws.send(text);
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data as ArrayBuffer).toString('utf8');
}

function messageId(message: unknown): { id?: unknown } {
  if (message !== null && typeof message === 'object' && 'id' in message) {
    const { id } = message as { id: unknown };
    if (typeof id === 'string' || typeof id === 'number') return { id };
  }
  return {};
}
