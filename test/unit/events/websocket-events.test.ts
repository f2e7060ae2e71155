// Progress events over handleWebSocketMessages(): `{ id, event }` frames on the socket that sent the
// message, in emit order, before its reply; nothing after the reply; nothing for a nested request.
// Real `ws` server on 127.0.0.1 port 0.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingMessage } from 'node:http';
import { emitProgress, getEventStream, withRequestContext, type RequestContext } from 'isotrace';
import type { Identity } from 'isotrace/http';
import { useTestTracing } from 'isotrace/testing';
import { createToolSystem, defineTool } from 'isotrace/tools';
import { handleWebSocketMessages } from 'isotrace/ws';
import { WebSocket } from 'ws';
import { deferred, type Deferred } from '../../helpers/random.js';
import { startWsServer, type TestWsServer } from '../ws/ws-test-helpers.js';
import { EventClient, EventCountReader } from './events-test-helpers.js';

const reader = new EventCountReader();
const kit = useTestTracing({ metricReaders: [reader] });

interface Message {
  id?: string | number;
  user: string;
  kind: 'steps' | 'late' | 'nested' | 'tool';
  steps?: number;
}

const countdown = defineTool({
  name: 'countdown',
  async *execute({ from }: { from: number }, call) {
    for (let n = from; n > 0; n--) {
      call.emit({ type: 'tick', n, user: call.context.userId });
      yield n;
    }
  },
});

// The late emit's outcome, handed to the test (a handler that returns before it emits).
let lateEmit: Deferred<boolean> | undefined;

function identify(_request: IncomingMessage | undefined, message: unknown): Identity | undefined {
  const { user } = message as Partial<Message>;
  return typeof user === 'string' ? { tenantId: 'acme', userId: user } : undefined;
}

async function handle(raw: unknown, ctx: RequestContext): Promise<unknown> {
  const message = raw as Message;
  switch (message.kind) {
    case 'steps':
      for (let step = 1; step <= (message.steps ?? 0); step++) emitProgress({ step, user: ctx.userId });
      return { id: message.id, done: true };
    case 'late': {
      const stream = getEventStream();
      const outcome = lateEmit!;
      setImmediate(() => outcome.resolve(stream.emit({ type: 'too-late' })));
      return { id: message.id, done: true };
    }
    case 'nested': {
      const nested = await withRequestContext({ tenantId: 'acme', userId: ctx.userId }, () => emitProgress({ type: 'from-nested' }));
      const own = emitProgress({ type: 'from-own' });
      return { id: message.id, nested, own };
    }
    case 'tool': {
      const stream = await createToolSystem([countdown]).dispatcher.execute<AsyncIterable<number>>('countdown', { from: message.steps });
      const values: number[] = [];
      for await (const n of stream) values.push(n);
      return { id: message.id, values };
    }
  }
}

let server: TestWsServer;

beforeAll(async () => {
  server = await startWsServer((ws, request) => handleWebSocketMessages(ws, { request, identify }, handle));
});

afterAll(async () => {
  await server?.close();
});

describe('progress events on the WebSocket that sent the message', () => {
  it('arrive as { id, event } frames in emit order, before the reply; the message span counts them', async () => {
    const client = await EventClient.connect(server.url);
    const { events, reply } = await client.request({ id: 'm1', user: 'alice', kind: 'steps', steps: 3 });
    await client.close();

    expect(events).toEqual([1, 2, 3].map((step) => ({ id: 'm1', event: { step, user: 'alice' } })));
    expect(reply).toEqual({ id: 'm1', done: true });
    expect(client.eventsOf('m1')).toHaveLength(3);
    const span = kit.spans().find((s) => s.name === 'websocket.message');
    expect(span?.attributes['isotrace.events.delivered']).toBe(3);
    expect(span?.attributes['isotrace.events.undelivered']).toBe(0);
  });

  it('a numeric id is kept as a number; a message without id gets { event } frames', async () => {
    const client = await EventClient.connect(server.url);
    const numbered = await client.request({ id: 7, user: 'alice', kind: 'steps', steps: 1 });
    await client.close();
    expect(numbered.events).toEqual([{ id: 7, event: { step: 1, user: 'alice' } }]);
    expect(await sendWithoutId(server.url, { user: 'alice', kind: 'steps', steps: 1 })).toEqual([{ event: { step: 1, user: 'alice' } }, { done: true }]);
  });

  it('a streaming tool’s call.emit reaches the client with the tool’s values', async () => {
    const client = await EventClient.connect(server.url);
    const { events, reply } = await client.request({ id: 't', user: 'bob', kind: 'tool', steps: 3 });
    await client.close();
    expect(reply).toEqual({ id: 't', values: [3, 2, 1] });
    expect(events.map((frame) => frame.event)).toEqual([3, 2, 1].map((n) => ({ type: 'tick', n, user: 'bob' })));
  });

  it('an event emitted after the reply is not sent (counted undelivered)', async () => {
    lateEmit = deferred<boolean>();
    const before = await reader.count('undelivered');
    const client = await EventClient.connect(server.url);
    const { events } = await client.request({ id: 'late', user: 'alice', kind: 'late' });
    expect(await lateEmit.promise).toBe(false);
    // A frame sent after the reply would arrive before this round trip's reply.
    await client.request({ id: 'after', user: 'alice', kind: 'steps', steps: 0 });
    await client.close();
    expect(events).toEqual([]);
    expect(client.eventsOf('late')).toEqual([]);
    expect(await reader.count('undelivered')).toBe(before + 1);
  });

  it('a request nested in the message’s request has no connection: its events are not sent', async () => {
    const client = await EventClient.connect(server.url);
    const { events, reply } = await client.request({ id: 'n', user: 'alice', kind: 'nested' });
    await client.close();
    expect(reply).toEqual({ id: 'n', nested: false, own: true });
    expect(events).toEqual([{ id: 'n', event: { type: 'from-own' } }]);
    expect(await kit.violationCount('event-owner')).toBe(0);
  });
});

/** Sends one message without an id on a fresh socket and returns the frames up to its reply. */
async function sendWithoutId(url: string, message: Omit<Message, 'id'>): Promise<unknown[]> {
  const ws = new WebSocket(url);
  await new Promise((resolve) => ws.once('open', resolve));
  const frames: unknown[] = [];
  const done = new Promise<void>((resolve) =>
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as Record<string, unknown>;
      frames.push(frame);
      if (!('event' in frame)) resolve();
    }),
  );
  ws.send(JSON.stringify(message));
  await done;
  ws.close();
  return frames;
}
