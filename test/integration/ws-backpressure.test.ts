/**
 * Per-socket bound on concurrent message handlers: a client that floods one
 * socket with 2,000 messages never has more than `maxConcurrentMessages`
 * handlers running at once (default 16); the rest wait, in order, while the
 * socket is paused, and every message is still answered. Other sockets are
 * not held up by a saturated one.
 */
import { describe, it, expect, beforeEach } from 'vitest';
import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import type { RequestContext } from 'isotrace';
import type { Identity } from 'isotrace/http';
import { handleWebSocketMessages } from 'isotrace/ws';
import { waitFor } from '../helpers/http.js';
import { useTestTracing } from 'isotrace/testing';
import { startWsServer, TestClient } from '../unit/ws/ws-test-helpers.js';

const MESSAGES = 2_000;
const DEFAULT_BOUND = 16;

useTestTracing();

/** What the handlers saw: how many ran at once, and in which order they started. */
let running = 0;
let peak = 0;
let started: number[] = [];
let gate: Promise<void>;
let openGate: () => void;

beforeEach(() => {
  running = 0;
  peak = 0;
  started = [];
  gate = new Promise((resolve) => (openGate = resolve));
});

function identify(request: IncomingMessage | undefined): Identity | undefined {
  const tenantId = new URL(request?.url ?? '/', 'http://x').searchParams.get('tenant');
  return tenantId ? { tenantId, userId: 'u1' } : undefined;
}

/** Holds every message at the gate; `free` messages (another socket's) pass straight through. */
async function gatedHandler(raw: unknown, ctx: RequestContext): Promise<unknown> {
  const message = raw as { id: number; free?: boolean };
  if (message.free) return { id: message.id, tenantId: ctx.tenantId };
  running++;
  peak = Math.max(peak, running);
  started.push(message.id);
  try {
    await gate;
    return { id: message.id, tenantId: ctx.tenantId };
  } finally {
    running--;
  }
}

/** A server whose sockets use `maxConcurrentMessages`; `sockets` holds the server side of each connection. */
async function serve(maxConcurrentMessages: number | undefined): Promise<{ url: string; sockets: WebSocket[]; close(): Promise<void> }> {
  const sockets: WebSocket[] = [];
  const server = await startWsServer((ws, request) => {
    sockets.push(ws);
    handleWebSocketMessages(ws, { request, identify, ...(maxConcurrentMessages === undefined ? {} : { maxConcurrentMessages }) }, gatedHandler);
  });
  return { url: server.url, sockets, close: () => server.close() };
}

describe('handleWebSocketMessages: concurrent handlers per socket are bounded', () => {
  it.each([
    ['the default', undefined, DEFAULT_BOUND],
    ['maxConcurrentMessages: 3', 3, 3],
  ])(`runs at most the bound (%s) of ${MESSAGES} flooded messages at once, pauses the socket, and answers all in order`, async (_what, option, bound) => {
    const server = await serve(option);
    try {
      const client = await TestClient.connect(`${server.url}/?tenant=acme`);
      const replies = Array.from({ length: MESSAGES }, (_, id) => client.request<{ id: number; tenantId: string }>({ id }));

      const socket = await waitFor(() => running === bound && server.sockets[0]?.isPaused && server.sockets[0], 'the bound reached and the socket paused');
      expect(started).toEqual(Array.from({ length: bound }, (_, id) => id));

      openGate();
      const answered = await Promise.all(replies);
      expect(answered.map((reply) => reply.id)).toEqual(Array.from({ length: MESSAGES }, (_, id) => id));
      expect(answered.every((reply) => reply.tenantId === 'acme')).toBe(true);
      expect(peak).toBe(bound);
      expect(started).toEqual(Array.from({ length: MESSAGES }, (_, id) => id));
      expect(socket.isPaused).toBe(false);
      await client.close();
    } finally {
      await server.close();
    }
  });

  it('keeps answering other sockets while one socket is saturated', async () => {
    const server = await serve(2);
    try {
      const flooder = await TestClient.connect(`${server.url}/?tenant=acme`);
      const held = Array.from({ length: 50 }, (_, id) => flooder.request({ id }));
      await waitFor(() => running === 2 && server.sockets[0]?.isPaused, 'the first socket saturated');

      const other = await TestClient.connect(`${server.url}/?tenant=globex`);
      expect(await other.request({ id: 1, free: true })).toEqual({ id: 1, tenantId: 'globex' });
      expect(started).toHaveLength(2);

      openGate();
      expect(await Promise.all(held)).toHaveLength(50);
      await Promise.all([flooder.close(), other.close()]);
    } finally {
      await server.close();
    }
  });
});
