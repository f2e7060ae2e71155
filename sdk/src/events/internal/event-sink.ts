import { metrics, type Counter, type Span } from '@opentelemetry/api';
import { describeRequest, recordViolation } from '../../audit/internal/runtime-audit.js';
import type { RequestIdentity } from '../../context/internal/request-context.js';
import { tryGetRuntime, type Runtime } from '../../tracing/internal/runtime.js';
import type { EventOutcome } from '../types.js';

/** Who a request is, as far as the event owner check compares it. */
export type EventOwner = Pick<RequestIdentity, 'requestId' | 'tenantId' | 'userId'>;

/** A connection's side of a sink: sends one event already serialized as JSON. */
export interface EventTransport {
  /** Whether the connection still takes events. */
  readonly open: boolean;
  /** Sends one event; false when the connection could not take it. */
  send(json: string): boolean;
}

/** Span attributes a request span gets when its sink closes. */
export const EVENT_ATTR = {
  delivered: 'isotrace.events.delivered',
  undelivered: 'isotrace.events.undelivered',
  refused: 'isotrace.events.refused',
} as const;

const EVENTS_METRIC = 'isotrace.events';
const OUTCOME = 'isotrace.events.outcome';

/** How a sink reports its tallies; a worker's sink only forwards, the submitting request's sink counts. */
export interface SinkRecording {
  /** The span that gets the delivered/undelivered tallies when the sink closes (the request span). */
  span: Span | undefined;
  /** Whether to add to the `isotrace.events` counter. */
  count: boolean;
}

/**
 * One request's connection for progress events (the seeds' per-user bridge):
 * owned by exactly one request, it delivers only events whose emitting request
 * is that owner, and nothing once the request has finished.
 */
export class EventSink {
  readonly owner: EventOwner;
  readonly #transport: EventTransport;
  readonly #recording: SinkRecording;
  #closed = false;
  #delivered = 0;
  #undelivered = 0;
  #refused = 0;

  constructor(owner: EventOwner, transport: EventTransport, recording: SinkRecording) {
    this.owner = owner;
    this.#transport = transport;
    this.#recording = recording;
  }

  get connected(): boolean {
    return !this.#closed && this.#transport.open;
  }

  /** How many events the connection took. */
  get delivered(): number {
    return this.#delivered;
  }

  /**
   * Sends one serialized event emitted by `emitter`, after the owner check:
   * an event of another request (or of none) is refused, recorded on `span`
   * as an `event-owner` violation and never reaches this connection.
   */
  deliver(emitter: EventOwner | undefined, json: string, span: Span | undefined): boolean {
    if (!isOwner(this.owner, emitter)) {
      this.#refused++;
      refuseEvent(span, this.owner, emitter, this.#recording.count);
      return false;
    }
    if (this.#closed) {
      // The tallies went out with the request: an event after it is counted on its own.
      if (this.#recording.count) countEvents('undelivered', 1);
      return false;
    }
    if (!this.#transport.open || !this.#transport.send(json)) {
      this.#undelivered++;
      return false;
    }
    this.#delivered++;
    return true;
  }

  /** The request finished: later events are undelivered. Records the tallies once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const { span, count } = this.#recording;
    if (this.#delivered + this.#undelivered + this.#refused === 0) return;
    if (span?.isRecording()) {
      span.setAttribute(EVENT_ATTR.delivered, this.#delivered);
      span.setAttribute(EVENT_ATTR.undelivered, this.#undelivered);
      if (this.#refused > 0) span.setAttribute(EVENT_ATTR.refused, this.#refused);
    }
    if (count) {
      // Refused events were counted as they happened (with their violation).
      countEvents('delivered', this.#delivered);
      countEvents('undelivered', this.#undelivered);
    }
  }
}

/** Whether `emitter` is `owner`: the same request id, tenant and user (an app-given request id may repeat). */
export function isOwner(owner: EventOwner, emitter: EventOwner | undefined): boolean {
  return emitter !== undefined && emitter.requestId === owner.requestId && emitter.tenantId === owner.tenantId && emitter.userId === owner.userId;
}

/** An event stopped by the owner check: an `event-owner` violation, counted `refused`. Throws in `audit: 'throw'` mode. */
export function refuseEvent(span: Span | undefined, owner: EventOwner, emitter: EventOwner | undefined, count = true): void {
  if (count) countEvents('refused', 1);
  recordViolation(span, 'event-owner', describeRequest(owner), emitter ? describeRequest(emitter) : '(no request)');
}

// The counter of each running isotrace (the process's one handle), made on first use.
const counters = new WeakMap<Runtime, Counter>();

/** Adds to `isotrace.events` {`isotrace.events.outcome`}; nothing before startTracing(). */
export function countEvents(outcome: EventOutcome, n: number): void {
  const runtime = tryGetRuntime();
  if (!runtime || n === 0) return;
  let counter = counters.get(runtime);
  if (!counter) {
    counter = metrics.getMeter('isotrace').createCounter(EVENTS_METRIC, { description: 'Progress events emitted inside requests, by outcome.' });
    counters.set(runtime, counter);
  }
  counter.add(n, { [OUTCOME]: outcome });
}
