import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { Span } from '@opentelemetry/api';
import { reportOnce } from '../../tracing/internal/report.js';
import type { EventOwner, EventSink, EventTransport } from './event-sink.js';

// A worker task's progress events travel to the submitting thread over a
// MessageChannel of their own, one per pool.run() whose request has a
// connection: the port goes to the worker with the task, and the submitting
// side delivers each event through the submitting request's sink (owner-checked
// against the worker's request snapshot). The task's reply says how many it
// sent, so run() resolves only after all of them were delivered.

/** How long run() waits, after the reply, for events the worker sent but that have not arrived yet. */
const DRAIN_TIMEOUT_MS = 5_000;

/** One event from a worker task: who emitted it (the task's request snapshot) and the event as JSON. */
interface WorkerEventMessage {
  emitter: EventOwner;
  json: string;
}

/** The worker's side: posts the events of `owner` (its request snapshot) to the submitting thread. */
export class WorkerEventPort implements EventTransport {
  readonly #port: MessagePort;
  readonly #owner: EventOwner;
  #sent = 0;

  constructor(port: MessagePort, owner: EventOwner) {
    this.#port = port;
    this.#owner = { requestId: owner.requestId, tenantId: owner.tenantId, userId: owner.userId };
  }

  get open(): boolean {
    return true;
  }

  /** How many events were posted (the reply tells the submitting side to wait for them). */
  get sent(): number {
    return this.#sent;
  }

  send(json: string): boolean {
    try {
      this.#port.postMessage({ emitter: this.#owner, json } satisfies WorkerEventMessage);
    } catch (error) {
      reportOnce('worker-event-post-failed', 'a worker task could not send a progress event to the submitting thread.', error);
      return false;
    }
    this.#sent++;
    return true;
  }
}

/** The submitting side of one pool.run(): delivers the worker's events through the submitting request's sink. */
export class WorkerEventRelay {
  /** The port to send with the task (in its transfer list). */
  readonly port: MessagePort;
  readonly #local: MessagePort;
  #received = 0;
  #expected = Infinity;
  #drained: (() => void) | undefined;

  constructor(sink: EventSink, span: Span | undefined) {
    const { port1, port2 } = new MessageChannel();
    this.port = port2;
    this.#local = port1;
    port1.on('message', (message: WorkerEventMessage) => {
      this.#received++;
      sink.deliver(message?.emitter, String(message?.json), span);
      if (this.#received >= this.#expected) this.#drained?.();
    });
  }

  /** Resolves once the `sent` events the reply announced have been delivered (bounded), then closes the channel. */
  async drain(sent: number): Promise<void> {
    try {
      if (this.#received >= sent) return;
      this.#expected = sent;
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
        timer = setTimeout(() => {
          reportOnce('worker-events-lost', `a worker task's progress events did not all arrive within ${DRAIN_TIMEOUT_MS} ms of its reply; the rest are undelivered.`);
          resolve();
        }, DRAIN_TIMEOUT_MS);
        timer.unref();
      });
      clearTimeout(timer);
    } finally {
      this.close();
    }
  }

  close(): void {
    this.#local.close();
  }
}
