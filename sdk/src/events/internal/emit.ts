import { context, createContextKey, trace, type Context } from '@opentelemetry/api';
import { requestContextOf } from '../../context/internal/active-request.js';
import { RequestContextMissingError } from '../../errors/errors.js';
import type { EventStream, ProgressEvent } from '../types.js';
import { countEvents, EventSink, isOwner, refuseEvent, type EventOwner, type EventTransport, type SinkRecording } from './event-sink.js';

/** Where a request's event sink lives in the OpenTelemetry context (set by the edge adapter that made the request). */
const EVENT_SINK_KEY = createContextKey('isotrace.event_sink');

/**
 * Sends a progress event to the active request's own connection: the
 * WebSocket that sent the message (a `{ id, event }` frame before the reply),
 * the server-sent-events response of serverSentEvents(), or, inside a worker
 * task, the submitting request's connection. Returns true when the connection
 * took it; false when the request has no connection (plain
 * withRequestContext(), a nested request), the connection closed, or the
 * request has finished: such events are dropped and counted `undelivered`.
 *
 * Throws RequestContextMissingError outside a request and TypeError for an
 * event that is not a JSON object.
 *
 * ```ts
 * emitProgress({ type: 'tool-started', tool: 'search' });
 * ```
 */
export function emitProgress(event: ProgressEvent): boolean {
  const active = context.active();
  const request = requestContextOf(active);
  if (!request) throw new RequestContextMissingError('emitProgress()');
  return emitAs(request, event, 'emitProgress(event)', active);
}

/**
 * The active request's event stream (the seeds' per-user bridge): a handle
 * for code that emits many events. It stays bound to this request; used from
 * another one it delivers nothing and records an `event-owner` violation.
 * Throws RequestContextMissingError outside a request.
 *
 * ```ts
 * const events = getEventStream();
 * for await (const chunk of answer) events.emit({ type: 'delta', text: chunk });
 * ```
 */
export function getEventStream(): EventStream {
  const active = context.active();
  const request = requestContextOf(active);
  if (!request) throw new RequestContextMissingError('getEventStream()');
  return new RequestEventStream({ requestId: request.requestId, tenantId: request.tenantId, userId: request.userId }, active);
}

/** An EventStream: its owner, checked against the active request at every emit. */
class RequestEventStream implements EventStream {
  readonly #owner: EventOwner;
  readonly #sink: EventSink | undefined;

  constructor(owner: EventOwner, active: Context) {
    this.#owner = owner;
    this.#sink = sinkOf(active, owner);
  }

  get requestId(): string {
    return this.#owner.requestId;
  }

  get connected(): boolean {
    return this.#sink?.connected ?? false;
  }

  emit(event: ProgressEvent): boolean {
    return emitAs(this.#owner, event, 'eventStream.emit(event)', context.active(), this.#sink);
  }
}

/**
 * Emits `event` on behalf of `owner` (a tool's owning request, a stream's
 * request): refused with an `event-owner` violation unless the active request
 * is `owner`; else delivered through the owner's sink (`sink`, or the one the
 * active context holds), or counted `undelivered` when there is none.
 */
export function emitAs(owner: EventOwner, event: ProgressEvent, where: string, active: Context = context.active(), sink: EventSink | undefined = sinkOf(active, owner)): boolean {
  assertEvent(event, where);
  const request = requestContextOf(active);
  if (!isOwner(owner, request)) {
    refuseEvent(trace.getSpan(active), owner, request);
    return false;
  }
  const json = serialize(event, where);
  if (!sink) {
    countEvents('undelivered', 1);
    return false;
  }
  return sink.deliver(request, json, trace.getSpan(active));
}

/**
 * Runs `fn` with a new sink owned by `owner` bound to the active context, and
 * closes it when `fn` settles: what an edge adapter calls inside the request
 * it made, with its connection as `transport`. By default the active span
 * (the request span) gets the tallies and the `isotrace.events` counter counts.
 */
export async function runWithEventSink<T>(owner: EventOwner, transport: EventTransport, fn: () => T | Promise<T>, recording?: SinkRecording): Promise<T> {
  const active = context.active();
  const sink = new EventSink(owner, transport, recording ?? { span: trace.getSpan(active), count: true });
  try {
    return await context.with(active.setValue(EVENT_SINK_KEY, sink), fn);
  } finally {
    sink.close();
  }
}

/**
 * `owner`'s sink in `ctx`, or undefined. A nested request sees its enclosing
 * request's sink in the context it inherits: that connection is not its own.
 */
export function sinkOf(ctx: Context, owner: EventOwner | undefined): EventSink | undefined {
  const sink = ctx.getValue(EVENT_SINK_KEY) as EventSink | undefined;
  return sink && isOwner(sink.owner, owner) ? sink : undefined;
}

function assertEvent(event: ProgressEvent, where: string): void {
  if (event === null || typeof event !== 'object' || Array.isArray(event)) {
    throw new TypeError(`${where}: event must be a JSON object, e.g. { type: 'progress', percent: 40 }; got ${Array.isArray(event) ? 'an array' : event === null ? 'null' : typeof event}.`);
  }
}

function serialize(event: ProgressEvent, where: string): string {
  try {
    return JSON.stringify(event);
  } catch (error) {
    throw new TypeError(`${where}: event is not JSON-serializable (${error instanceof Error ? error.message : String(error)}).`, { cause: error });
  }
}
