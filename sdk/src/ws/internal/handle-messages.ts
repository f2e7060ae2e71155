import { defaultTextMapGetter, ROOT_CONTEXT, SpanKind, type Link } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { RawData, WebSocket } from 'ws';
import { runRequest } from '../../context/internal/request-scope.js';
import { reportOnce } from '../../tracing/internal/report.js';
import { getRuntime } from '../../tracing/internal/runtime.js';
import type { WebSocketMessageHandler, WebSocketMessageOptions } from '../types.js';

const traceContext = new W3CTraceContextPropagator();

/**
 * Gives every message on a `ws` socket its own request context and its own
 * trace, linked to the connection's `websocket.connection` span (the seeds'
 * per-message ContextVar binding). Messages are handled concurrently and never
 * share context, on one socket or across sockets. The handler's return value
 * is sent back as JSON; a malformed message, a refused identity or a handler
 * error gets `{ "error": … }` (with the message's `id` when it had one) and
 * the socket stays usable.
 *
 * Throws TypeError for bad arguments, TracingNotStartedError before startTracing().
 *
 * ```ts
 * wss.on('connection', (ws, request) =>
 *   handleWebSocketMessages(ws, { request, identify: (req) => auth(req) }, async (msg) => agent.answer(msg)));
 * ```
 */
export function handleWebSocketMessages(ws: WebSocket, options: WebSocketMessageOptions, handler: WebSocketMessageHandler): void {
  if (ws === null || typeof ws !== 'object' || typeof ws.on !== 'function') throw new TypeError('handleWebSocketMessages(ws, …): ws must be a WebSocket from the ws library.');
  if (options === null || typeof options !== 'object' || typeof options.identify !== 'function') throw new TypeError("handleWebSocketMessages: option 'identify' must be a function.");
  if (typeof handler !== 'function') throw new TypeError('handleWebSocketMessages(ws, options, handler): handler must be a function.');
  const { tracer } = getRuntime('handleWebSocketMessages()');

  const upgrade = options.request ? traceContext.extract(ROOT_CONTEXT, options.request.headers, defaultTextMapGetter) : ROOT_CONTEXT;
  const connection = tracer.startSpan('websocket.connection', { kind: SpanKind.SERVER, attributes: { 'network.protocol.name': 'websocket' } }, upgrade);
  const link: Link = { context: connection.spanContext() };
  ws.once('close', (code: number) => {
    connection.setAttribute('websocket.close_code', code);
    connection.end();
  });

  ws.on('message', (data: RawData, isBinary: boolean) => {
    void handleMessage(ws, options, handler, data, isBinary, link);
  });
}

async function handleMessage(
  ws: WebSocket,
  options: WebSocketMessageOptions,
  handler: WebSocketMessageHandler,
  data: RawData,
  isBinary: boolean,
  link: Link,
): Promise<void> {
  let message: unknown;
  try {
    if (isBinary) throw new Error('binary frames are not JSON');
    message = JSON.parse(rawText(data));
  } catch (error) {
    reply(ws, { error: `malformed message: ${(error as Error).message}` });
    return;
  }
  const id = messageId(message);
  let identity;
  try {
    identity = await options.identify(options.request, message);
  } catch {
    identity = undefined;
  }
  if (!identity) {
    reply(ws, { ...id, error: 'unauthenticated' });
    return;
  }
  try {
    const result = await runRequest({ ...identity, name: options.name ?? 'websocket.message' }, (ctx) => handler(message, ctx), { kind: SpanKind.SERVER, links: [link] }, ROOT_CONTEXT);
    reply(ws, result ?? null);
  } catch (error) {
    reply(ws, { ...id, error: error instanceof Error ? error.message : String(error) });
  }
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
