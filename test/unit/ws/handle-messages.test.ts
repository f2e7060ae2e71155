/**
 * handleWebSocketMessages() with a real `ws` server and real clients: every
 * message its own request context and trace, linked to the connection span;
 * replies as JSON; malformed frames, refused identities and handler errors
 * answered with `{ error }` while the socket stays usable.
 */
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import type { IncomingMessage } from 'node:http';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import type { WebSocket } from 'ws';
import { getRequestContext, tryGetRequestContext, type RequestContext } from 'isotrace';
import type { Identity } from 'isotrace/http';
import { handleWebSocketMessages } from 'isotrace/ws';
import { expectNoCrossRequestLeakage, setupTestTracing, type TestTracing } from 'isotrace/testing';
import { parseTraceHeader, waitFor } from '../../helpers/http.js';
import { delay } from '../../helpers/random.js';
import { startWsServer, TestClient, type TestWsServer } from './ws-test-helpers.js';

let kit: TestTracing;
let server: TestWsServer;
let handlerCalls = 0;
/** The traceparent each upgrade request arrived with, by the `conn` query parameter. */
const upgradeTraceparents = new Map<string, string | undefined>();

interface Message {
  id?: string | number;
  op?: string;
  user?: string;
  value?: unknown;
  delayMs?: number;
}

/** The app's auth: the tenant from the upgrade URL (`?tenant=`), the user from the message. */
function identify(request: IncomingMessage | undefined, message: unknown): Identity | undefined {
  const { user } = message as Message;
  if (user === 'throw') throw new Error('auth backend down');
  const tenantId = new URL(request?.url ?? '/', 'http://x').searchParams.get('tenant');
  return tenantId && typeof user === 'string' ? { tenantId, userId: user } : undefined;
}

async function handler(raw: unknown, ctx: RequestContext): Promise<unknown> {
  handlerCalls++;
  const message = raw as Message;
  switch (message.op) {
    case 'whoami': {
      await delay(message.delayMs ?? 0);
      return {
        id: message.id,
        same: getRequestContext() === ctx,
        requestId: ctx.requestId,
        tenantId: ctx.tenantId,
        userId: ctx.userId,
        traceId: ctx.traceId,
        activeTraceId: trace.getActiveSpan()?.spanContext().traceId,
      };
    }
    case 'echo':
      return message.value;
    case 'nothing':
      return undefined;
    case 'boom':
      await delay(1);
      throw new Error(`tool failed for ${ctx.userId}`);
    case 'bigint':
      return { big: 10n };
    default:
      return { id: message.id, unknownOp: message.op };
  }
}

beforeAll(async () => {
  kit = await setupTestTracing();
  server = await startWsServer((ws, request) => {
    upgradeTraceparents.set(new URL(request.url ?? '/', 'http://x').searchParams.get('conn') ?? '', request.headers.traceparent as string | undefined);
    handleWebSocketMessages(ws, { request, identify }, handler);
  });
});

afterAll(async () => {
  await server?.close();
  await kit?.shutdown();
});

beforeEach(() => {
  kit.reset();
  handlerCalls = 0;
});

let connections = 0;
async function connect(tenant = 'acme'): Promise<{ client: TestClient; conn: string }> {
  const conn = `c${++connections}`;
  return { client: await TestClient.connect(`${server.url}/?tenant=${tenant}&conn=${conn}`), conn };
}

function messageSpans(): ReadableSpan[] {
  return kit.spans().filter((span) => span.name === 'websocket.message');
}

function connectionSpan(): Promise<ReadableSpan> {
  return waitFor(() => kit.spans().find((span) => span.name === 'websocket.connection'), 'the websocket.connection span');
}

describe('handleWebSocketMessages: one request context and trace per message', () => {
  it('runs each message in its own context with the identified tenant and user, and its own trace', async () => {
    const { client } = await connect('acme');
    const replies = [];
    for (let i = 0; i < 4; i++) replies.push(await client.request({ id: i, op: 'whoami', user: `u${i}` }));
    await client.close();
    for (const [i, reply] of replies.entries()) {
      expect(reply).toMatchObject({ id: i, same: true, tenantId: 'acme', userId: `u${i}` });
      expect(reply.activeTraceId).toBe(reply.traceId);
    }
    expect(new Set(replies.map((r) => r.requestId)).size).toBe(4);
    expect(new Set(replies.map((r) => r.traceId)).size).toBe(4);
    expect(tryGetRequestContext()).toBeUndefined();
  });

  it('makes each message a SERVER span with the identity, in its own trace, linked to the connection span', async () => {
    const { client } = await connect('acme');
    const replies = [await client.request({ id: 'a', op: 'whoami', user: 'alice' }), await client.request({ id: 'b', op: 'whoami', user: 'bob' })];
    await client.close();
    const connection = await connectionSpan();
    const spans = await waitFor(() => messageSpans().length === 2 && messageSpans(), 'two message spans');
    for (const [i, reply] of replies.entries()) {
      const span = spans.find((s) => s.attributes['isotrace.request_id'] === reply.requestId);
      expect(span, `span of message ${i}`).toBeDefined();
      expect(span!.kind).toBe(SpanKind.SERVER);
      expect(span!.spanContext().traceId).toBe(reply.traceId);
      expect(span!.spanContext().traceId).not.toBe(connection.spanContext().traceId);
      expect(span!.parentSpanContext).toBeUndefined();
      expect(span!.attributes).toMatchObject({ 'isotrace.tenant_id': 'acme', 'user.id': reply.userId });
      expect(span!.links.map((link) => link.context.spanId)).toEqual([connection.spanContext().spanId]);
    }
    expectNoCrossRequestLeakage(kit.spans());
  });

  it('keeps concurrent messages on one socket apart (replies out of order, each with its own context)', async () => {
    const { client } = await connect('acme');
    const delays = [30, 0, 20, 5, 10, 0, 25, 15];
    const replies = await Promise.all(delays.map((delayMs, i) => client.request({ id: i, op: 'whoami', user: `u${i}`, delayMs })));
    await client.close();
    replies.forEach((reply, i) => expect(reply).toMatchObject({ id: i, same: true, userId: `u${i}`, tenantId: 'acme' }));
    expect(new Set(replies.map((r) => r.traceId)).size).toBe(delays.length);
  });
});

describe('handleWebSocketMessages: replies', () => {
  it.each([
    ['an object', { a: 1, nested: { b: [1, 2] } }],
    ['an array', [1, 'two', null]],
    ['a string', 'hello'],
    ['a number', 42],
    ['false', false],
  ])('sends the handler’s return value (%s) back as JSON', async (_what, value) => {
    const { client } = await connect();
    client.send({ op: 'echo', user: 'u1', value });
    expect(await client.next()).toEqual(value);
    await client.close();
  });

  it('sends null when the handler returns nothing', async () => {
    const { client } = await connect();
    client.send({ op: 'nothing', user: 'u1' });
    expect(await client.next()).toBeNull();
    await client.close();
  });

  it('sends an error when the return value is not JSON-serializable', async () => {
    const { client } = await connect();
    client.send({ op: 'bigint', user: 'u1' });
    expect(await client.next()).toEqual({ error: 'reply is not JSON-serializable' });
    await client.close();
  });
});

describe('handleWebSocketMessages: bad messages and failures keep the socket usable', () => {
  it.each([
    ['malformed JSON', 'not json{', false],
    ['a binary frame', Buffer.from(JSON.stringify({ id: 1, op: 'whoami', user: 'u1' })), true],
  ])('answers %s with {error} and then answers the next message', async (_what, frame, binary) => {
    const { client } = await connect();
    client.send(frame, { binary });
    const reply = await client.next<{ error: string }>();
    expect(reply.error).toMatch(/^malformed message/);
    expect(handlerCalls).toBe(0);
    expect(await client.request({ id: 'after', op: 'whoami', user: 'u1' })).toMatchObject({ id: 'after', tenantId: 'acme' });
    await client.close();
  });

  it.each([
    ['returns undefined', {}],
    ['throws', { user: 'throw' }],
  ])('answers {id, error: "unauthenticated"} without calling the handler or opening a span when identify() %s', async (_what, extra) => {
    const { client } = await connect();
    expect(await client.request({ id: 7, op: 'whoami', ...extra })).toEqual({ id: 7, error: 'unauthenticated' });
    expect(handlerCalls).toBe(0);
    expect(await client.request({ id: 8, op: 'whoami', user: 'u1' })).toMatchObject({ id: 8, userId: 'u1' });
    await client.close();
    await connectionSpan();
    expect(messageSpans()).toHaveLength(1);
  });

  it('answers {id, error} when the handler throws and marks the message span ERROR', async () => {
    const { client } = await connect();
    expect(await client.request({ id: 'x1', op: 'boom', user: 'carol' })).toEqual({ id: 'x1', error: 'tool failed for carol' });
    expect(await client.request({ id: 'x2', op: 'whoami', user: 'carol' })).toMatchObject({ id: 'x2', userId: 'carol' });
    await client.close();
    const failed = await waitFor(() => messageSpans().find((s) => s.status.code === SpanStatusCode.ERROR), 'the failed message span');
    expect(failed.status.message).toBe('tool failed for carol');
    expect(failed.events.find((event) => event.name === 'exception')?.attributes?.['exception.message']).toBe('tool failed for carol');
    expect(messageSpans().filter((s) => s.status.code !== SpanStatusCode.ERROR)).toHaveLength(1);
  });
});

describe('handleWebSocketMessages: the connection span', () => {
  it('continues the upgrade request’s traceparent and ends with the close code when the socket closes', async () => {
    const { client, conn } = await connect();
    await client.request({ id: 1, op: 'whoami', user: 'u1' });
    expect(kit.spans().find((span) => span.name === 'websocket.connection')).toBeUndefined();
    await client.close(4001, 'done');
    const connection = await connectionSpan();
    expect(connection.kind).toBe(SpanKind.SERVER);
    expect(connection.attributes['websocket.close_code']).toBe(4001);
    const upgrade = parseTraceHeader(upgradeTraceparents.get(conn));
    expect(upgrade, 'the ws client’s upgrade request carried a traceparent').toBeDefined();
    expect(connection.spanContext().traceId).toBe(upgrade!.traceId);
    expect(connection.parentSpanContext?.spanId).toBe(upgrade!.spanId);
  });

  it('uses options.name for the message spans', async () => {
    const named = await startWsServer((ws, request) => handleWebSocketMessages(ws, { request, identify, name: 'agent.turn' }, handler));
    try {
      const client = await TestClient.connect(`${named.url}/?tenant=acme`);
      await client.request({ id: 1, op: 'whoami', user: 'u1' });
      await client.close();
      await waitFor(() => kit.spans().find((span) => span.name === 'agent.turn'), 'a span named agent.turn');
    } finally {
      await named.close();
    }
  });

  it('throws TypeError for bad arguments', () => {
    const fakeWs = { on: () => undefined, once: () => undefined } as unknown as WebSocket;
    expect(() => handleWebSocketMessages(null as never, { identify }, handler)).toThrow(TypeError);
    expect(() => handleWebSocketMessages(fakeWs, {} as never, handler)).toThrow(/identify/);
    expect(() => handleWebSocketMessages(fakeWs, { identify }, 'nope' as never)).toThrow(/handler/);
  });
});
