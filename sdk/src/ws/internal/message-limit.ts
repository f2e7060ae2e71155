import type { RawData, WebSocket } from 'ws';
import { reportOnce } from '../../tracing/internal/report.js';

/** How many messages of one socket are handled at once unless the app says otherwise. */
export const DEFAULT_MAX_CONCURRENT_MESSAGES = 16;

type Frame = readonly [data: RawData, isBinary: boolean];

/**
 * Handles one socket's messages at most `limit` at a time, starting them in
 * arrival order. Pausing the socket stops reading, but frames already read
 * are still delivered: those wait here, so the queue is bounded by one read,
 * not by what the client sends. Nothing is dropped.
 */
export class MessageLimit {
  readonly #ws: WebSocket;
  readonly #limit: number;
  readonly #handle: (data: RawData, isBinary: boolean) => Promise<void>;
  readonly #waiting: Frame[] = [];
  #running = 0;
  #pausedByUs = false;

  constructor(ws: WebSocket, limit: number, handle: (data: RawData, isBinary: boolean) => Promise<void>) {
    this.#ws = ws;
    this.#limit = limit;
    this.#handle = handle;
  }

  /** A message arrived: start it now, or queue it and stop reading the socket. */
  push(data: RawData, isBinary: boolean): void {
    if (this.#running < this.#limit) {
      this.#start(data, isBinary);
      return;
    }
    this.#waiting.push([data, isBinary]);
    if (!this.#pausedByUs) {
      this.#pausedByUs = true;
      this.#ws.pause();
    }
  }

  #start(data: RawData, isBinary: boolean): void {
    this.#running++;
    this.#handle(data, isBinary)
      .catch((error: unknown) => reportOnce('ws-message-failed', 'handling a WebSocket message failed unexpectedly; no reply was sent.', error))
      .finally(() => this.#finished());
  }

  #finished(): void {
    this.#running--;
    const next = this.#waiting.shift();
    if (next) this.#start(...next);
    else if (this.#pausedByUs) {
      // Read again only once everything already read has started: the queue never grows past one read.
      this.#pausedByUs = false;
      this.#ws.resume();
    }
  }
}
