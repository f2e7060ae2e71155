import type { IncomingMessage } from 'node:http';
import type { RequestContext } from '../context/types.js';
import type { Identity } from '../http/types.js';

/** Options of handleWebSocketMessages(). */
export interface WebSocketMessageOptions {
  /**
   * Your auth: the tenant and user a message acts for, from the connection's
   * upgrade request (cookies, token) and, if your protocol says so, the message.
   * Undefined refuses the message (an error reply; the socket stays open).
   * A throw or rejection also refuses it (`unauthenticated`) and is reported
   * once on the OpenTelemetry diagnostic logger.
   */
  identify(request: IncomingMessage | undefined, message: unknown): Identity | undefined | Promise<Identity | undefined>;
  /**
   * The upgrade request (`wss.on('connection', (ws, request) => …)`): passed to
   * identify() and trustInbound(). The connection span links to its
   * `traceparent`, or continues it when trustInbound() says so.
   */
  request?: IncomingMessage;
  /**
   * Whether the upgrade request's peer is trusted to choose the parent of the
   * `websocket.connection` span with its `traceparent` (e.g. your own gateway
   * on a private network). Default: nobody. An untrusted upgrade's trace
   * context is only linked: the connection starts its own trace, so a client
   * cannot graft the connection into a trace (or under a request) of its
   * choosing. A throw counts as untrusted.
   */
  trustInbound?(request: IncomingMessage): boolean;
  /**
   * Which handler errors the client may read. A handler error is answered
   * `{ id, error: 'internal error' }` (like HTTP's bare 500) and its details
   * go on the message span only; return a string here to send that text
   * instead (e.g. the message of your own validation errors), or undefined to
   * keep `internal error`. Called with whatever the handler threw; a throw or
   * a non-string answer keeps `internal error`.
   *
   * ```ts
   * exposeError: (error) => (error instanceof BadRequestError ? error.message : undefined)
   * ```
   */
  exposeError?(error: unknown): string | undefined;
  /**
   * How many messages of one socket are handled at once; default 16. Further
   * messages wait, in arrival order, and the socket is paused (nothing more,
   * control frames included, is read from it) until a handler finishes.
   * Nothing is dropped. A positive integer.
   */
  maxConcurrentMessages?: number;
  /** The per-message span's name; default `websocket.message`. */
  name?: string;
}

/** Handles one parsed JSON message inside its own request context; the return value is sent back as JSON. */
export type WebSocketMessageHandler = (message: unknown, ctx: RequestContext) => unknown;
