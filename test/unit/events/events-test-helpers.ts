/**
 * Helpers of the event-stream tests: a WebSocket client that files every
 * frame it receives under its message id (progress events apart from the
 * reply), a server-sent-events reader, and a metric reader for the
 * `isotrace.events` counter.
 */
import { once } from 'node:events';
import { MetricReader } from '@opentelemetry/sdk-metrics';
import { WebSocket } from 'ws';

/** Everything one message got back: its `{ id, event }` frames in arrival order, then its reply. */
export interface MessageOutcome<R = Record<string, unknown>> {
  events: Record<string, unknown>[];
  reply: R;
}

type Frame = Record<string, unknown>;

/** A client that keeps every frame: events by message id, replies by message id, and anything else. */
export class EventClient {
  readonly #ws: WebSocket;
  readonly #events = new Map<unknown, Frame[]>();
  readonly #waiting = new Map<unknown, (reply: Frame) => void>();
  #eventWaiters: Array<{ id: unknown; count: number; resolve: () => void }> = [];
  /** Every frame received, in order (to look for frames of messages this client never sent). */
  readonly frames: Frame[] = [];

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data) => this.#receive(JSON.parse(String(data)) as Frame));
  }

  static async connect(url: string, headers?: Record<string, string>): Promise<EventClient> {
    const ws = new WebSocket(url, { headers });
    const client = new EventClient(ws);
    await once(ws, 'open');
    return client;
  }

  /** Sends `message` and resolves with its events and reply once the reply arrived. */
  async request<R = Frame>(message: { id: string | number; [key: string]: unknown }): Promise<MessageOutcome<R>> {
    const reply = new Promise<Frame>((resolve) => this.#waiting.set(message.id, resolve));
    this.#ws.send(JSON.stringify(message));
    const answer = await reply;
    // A copy: frames arriving after the reply still go to eventsOf(id), where a test can find them.
    return { events: [...this.eventsOf(message.id)], reply: answer as R };
  }

  /** Resolves once `count` event frames of message `id` have arrived. */
  untilEvents(id: unknown, count: number): Promise<void> {
    if (this.eventsOf(id).length >= count) return Promise.resolve();
    return new Promise((resolve) => this.#eventWaiters.push({ id, count, resolve }));
  }

  /** The event frames received so far for message `id` (all of them, also after its reply). */
  eventsOf(id: unknown): Frame[] {
    return this.#events.get(id) ?? [];
  }

  async close(): Promise<void> {
    if (this.#ws.readyState === WebSocket.CLOSED) return;
    this.#ws.close();
    await once(this.#ws, 'close');
  }

  #receive(frame: Frame): void {
    this.frames.push(frame);
    if ('event' in frame) {
      const list = this.#events.get(frame.id) ?? [];
      list.push(frame);
      this.#events.set(frame.id, list);
      const ready = this.#eventWaiters.filter((waiter) => waiter.id === frame.id && list.length >= waiter.count);
      this.#eventWaiters = this.#eventWaiters.filter((waiter) => !ready.includes(waiter));
      for (const waiter of ready) waiter.resolve();
      return;
    }
    const waiter = this.#waiting.get(frame.id);
    this.#waiting.delete(frame.id);
    waiter?.(frame);
  }
}

/** One server-sent event as a client parses it. */
export interface ServerSentEvent {
  event: string;
  data: unknown;
}

/** Parses a `text/event-stream` body (`event:` and `data:` lines, blank-line separated). */
export function parseServerSentEvents(body: string): ServerSentEvent[] {
  const events: ServerSentEvent[] = [];
  for (const block of body.split('\n\n')) {
    if (block.trim() === '') continue;
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) event = line.slice('event: '.length);
      else if (line.startsWith('data: ')) data.push(line.slice('data: '.length));
    }
    events.push({ event, data: JSON.parse(data.join('\n')) as unknown });
  }
  return events;
}

/** A pull reader for the `isotrace.events` counter, by outcome. */
export class EventCountReader extends MetricReader {
  async count(outcome: 'delivered' | 'undelivered' | 'refused'): Promise<number> {
    const { resourceMetrics } = await this.collect();
    let total = 0;
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const metric of scope.metrics) {
        if (metric.descriptor.name !== 'isotrace.events') continue;
        for (const point of metric.dataPoints) if (point.attributes['isotrace.events.outcome'] === outcome) total += point.value as number;
      }
    }
    return total;
  }

  protected override async onShutdown(): Promise<void> {}

  protected override async onForceFlush(): Promise<void> {}
}
