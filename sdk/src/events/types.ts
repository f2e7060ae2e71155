import type { RequestContext } from '../context/types.js';

/**
 * A progress event: a JSON object ("tool started", a partial output, a
 * percentage). It reaches the client as JSON, exactly as given.
 *
 * ```ts
 * emitProgress({ type: 'tool-started', tool: 'search' });
 * ```
 */
export interface ProgressEvent {
  readonly [key: string]: unknown;
}

/**
 * One request's event stream: the seeds' per-user WebSocket bridge. It
 * belongs to the request that got it from getEventStream() and delivers only
 * while that request is the active one: used from another request (a bridge
 * kept in a module-level variable, say), an event is not delivered and a
 * `event-owner` violation is recorded.
 */
export interface EventStream {
  /** The request this stream belongs to. */
  readonly requestId: string;
  /** Whether the request has a connection that still takes events (its WebSocket, its server-sent-events response, or, in a worker task, the submitting request's). */
  readonly connected: boolean;
  /**
   * Sends `event` to the request's own connection. Returns true when the
   * connection took it; false when the request has no connection, the
   * connection closed or the request has finished (counted `undelivered`), or
   * when the active request is not this stream's (counted `refused`, with a
   * `event-owner` violation; in `audit: 'throw'` mode it throws
   * IsolationViolationError instead). Throws TypeError for an event that is
   * not a JSON object.
   */
  emit(event: ProgressEvent): boolean;
}

/** How an emitted event ended, the `isotrace.events.outcome` of the `isotrace.events` counter. */
export type EventOutcome = 'delivered' | 'undelivered' | 'refused';

/** Options of serverSentEvents(). */
export interface ServerSentEventsOptions {
  /**
   * Which errors of `run` the client may read. The `error` event says
   * `{ "error": "internal error" }` unless this returns a string to send
   * instead. A throw or a non-string answer keeps `internal error`.
   */
  exposeError?(error: unknown): string | undefined;
}

/** The work a serverSentEvents() response streams: its progress events go out as it runs, its result last. */
export type ServerSentEventsRun<T> = (ctx: RequestContext, signal: AbortSignal) => T | Promise<T>;
