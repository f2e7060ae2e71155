/**
 * A real `ws` server on 127.0.0.1 port 0 and a test client that matches
 * replies by message id (replies to concurrent messages arrive in any order).
 */
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import { WebSocket, WebSocketServer } from 'ws';

export interface TestWsServer {
  readonly wss: WebSocketServer;
  /** `ws://127.0.0.1:<port>` */
  readonly url: string;
  close(): Promise<void>;
}

export async function startWsServer(onConnection: (ws: WebSocket, request: IncomingMessage) => void): Promise<TestWsServer> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  wss.on('connection', onConnection);
  await once(wss, 'listening');
  const { port } = wss.address() as AddressInfo;
  return {
    wss,
    url: `ws://127.0.0.1:${port}`,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

type Reply = Record<string, unknown> | unknown;

/** A connected client: send JSON or raw frames, await replies by id or in order. */
export class TestClient {
  readonly #ws: WebSocket;
  readonly #unclaimed: Reply[] = [];
  readonly #waiters: Array<{ accepts: (reply: Reply) => boolean; resolve: (reply: Reply) => void }> = [];

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data) => this.#deliver(JSON.parse(String(data)) as Reply));
  }

  /**
   * Opens a socket. A `traceparent` in `headers` is sent as given: the upgrade
   * request is made with tracing suppressed, so the HTTP instrumentation
   * neither replaces it nor records a client span (the client chooses it, as
   * an untrusted peer can).
   */
  static async connect(url: string, headers?: Record<string, string>): Promise<TestClient> {
    const open = (): WebSocket => new WebSocket(url, { headers });
    const ws = headers?.traceparent === undefined ? open() : context.with(suppressTracing(context.active()), open);
    const client = new TestClient(ws);
    await once(ws, 'open');
    return client;
  }

  /** Sends `message` as JSON text (or a string/Buffer as given) and resolves with the reply carrying its `id`. */
  request<T = Record<string, unknown>>(message: { id: string | number; [key: string]: unknown }): Promise<T> {
    const reply = this.next((r) => isObject(r) && r.id === message.id);
    this.send(message);
    return reply as Promise<T>;
  }

  send(message: unknown, options: { binary?: boolean } = {}): void {
    const raw = typeof message === 'string' || Buffer.isBuffer(message) ? message : JSON.stringify(message);
    this.#ws.send(raw, { binary: options.binary ?? false });
  }

  /** The next reply (matching `accepts`), whether it already arrived or not. */
  next<T = Reply>(accepts: (reply: Reply) => boolean = () => true): Promise<T> {
    const index = this.#unclaimed.findIndex(accepts);
    if (index !== -1) return Promise.resolve(this.#unclaimed.splice(index, 1)[0] as T);
    return new Promise((resolve) => this.#waiters.push({ accepts, resolve: resolve as (reply: Reply) => void }));
  }

  async close(code = 1000, reason = ''): Promise<void> {
    if (this.#ws.readyState === WebSocket.CLOSED) return;
    this.#ws.close(code, reason);
    await once(this.#ws, 'close');
  }

  #deliver(reply: Reply): void {
    const index = this.#waiters.findIndex((waiter) => waiter.accepts(reply));
    if (index === -1) this.#unclaimed.push(reply);
    else this.#waiters.splice(index, 1)[0]!.resolve(reply);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object';
}
