import type { IncomingMessage } from 'node:http';
import type { RequestContext } from '../context/types.js';
import type { Identity } from '../http/types.js';

/** Options of handleWebSocketMessages(). */
export interface WebSocketMessageOptions {
  /**
   * Your auth: the tenant and user a message acts for, from the connection's
   * upgrade request (cookies, token) and, if your protocol says so, the message.
   * Undefined refuses the message (an error reply; the socket stays open).
   */
  identify(request: IncomingMessage | undefined, message: unknown): Identity | undefined | Promise<Identity | undefined>;
  /** The upgrade request (`wss.on('connection', (ws, request) => …)`): passed to identify, and its traceparent starts the connection's trace. */
  request?: IncomingMessage;
  /** The per-message span's name; default `websocket.message`. */
  name?: string;
}

/** Handles one parsed JSON message inside its own request context; the return value is sent back as JSON. */
export type WebSocketMessageHandler = (message: unknown, ctx: RequestContext) => unknown;
