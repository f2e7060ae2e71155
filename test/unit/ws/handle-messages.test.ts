/**
 * handleWebSocketMessages() with a real `ws` server and real clients: every
 * message its own request context and trace, linked to the connection span;
 * replies as JSON; malformed frames, refused identities and handler errors
 * answered with `{ error }` (generic texts: details go on the span, never to
 * the client, unless the app exposes its own) while the socket stays usable;
 * the upgrade's traceparent is continued only for trusted peers.
 */
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import type { IncomingMessage } from 'node:http';
import { diag, DiagLogLevel, SpanKind, SpanStatusCode, trace, type DiagLogger } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import type { WebSocket } from 'ws';
import { getRequestContext, tryGetRequestContext, type RequestContext } from 'isotrace';
import type { Identity } from 'isotrace/http';
import { handleWebSocketMessages, type WebSocketMessageOptions } from 'isotrace/ws';
import { expectNoCrossRequestLeakage, setupTestTracing, type TestTracing } from 'isotrace/testing';
import { parseTraceHeader, waitFor } from '../../helpers/http.js';
import { delay } from '../../helpers/random.js';
import { startWsServer, TestClient, type TestWsServer } from './ws-test-helpers.js';

let kit: TestTracing;
let server: TestWsServer;
let handlerCalls = 0;
/** The traceparent each upgrade request arrived with, by the `conn` query parameter. */
const upgradeTraceparents = new Map<string, string | undefined>();

/** What the OpenTelemetry diagnostic logger was told, at WARN and above. */
const diagnostics: string[] = [];
const collector: DiagLogger = {
  error: (message) => diagnostics.push(message),
  warn: (message) => diagnostics.push(message),
  info: () => {},
  debug: () => {},
  verbose: () => {},
};

/** An app error whose message is written for the client (the kind an app opts in to exposing). */
class ClientFacingError extends Error {}

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
    case 'invalid':
      throw new ClientFacingError('expected a "value" field');
    case 'bigint':
      return { big: 10n };
    default:
      return { id: message.id, unknownOp: message.op };
  }
}

beforeAll(async () => {
  diag.setLogger(collector, DiagLogLevel.WARN);
  kit = await setupTestTracing();
  server = await startWsServer((ws, request) => {
    upgradeTraceparents.set(new URL(request.url ?? '/', 'http://x').searchParams.get('conn') ?? '', request.headers.traceparent as string | undefined);
    handleWebSocketMessages(ws, { request, identify }, handler);
  });
});

afterAll(async () => {
  await server?.close();
  await kit?.shutdown();
  diag.disable();
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

/** Runs `fn` against a second server whose sockets use `options` (plus identify). */
async function withServer(options: Partial<WebSocketMessageOptions>, fn: (url: string) => Promise<void>): Promise<void> {
  const other = await startWsServer((ws, request) => handleWebSocketMessages(ws, { request, identify, ...options }, handler));
  try {
    await fn(other.url);
  } finally {
    await other.close();
  }
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
    expect(await client.next()).toEqual({ error: 'malformed message' });
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

  it('never echoes the malformed frame (parser messages quote the input) in its reply', async () => {
    const { client } = await connect();
    client.send('{"note": "tenant-b secret-7781", oops');
    const reply = await client.next();
    expect(reply).toEqual({ error: 'malformed message' });
    expect(JSON.stringify(reply)).not.toContain('secret-7781');
    await client.close();
  });

  it('reports an identify() that throws or rejects once on the diagnostic logger and answers unauthenticated each time', async () => {
    const rejecting = (): Promise<Identity> => Promise.reject(new Error('token service down'));
    await withServer({ identify: rejecting }, async (url) => {
      const client = await TestClient.connect(`${url}/?tenant=acme`);
      for (const id of [1, 2, 3]) expect(await client.request({ id, op: 'whoami', user: 'u1' })).toEqual({ id, error: 'unauthenticated' });
      await client.close();
    });
    const { client } = await connect();
    expect(await client.request({ id: 4, op: 'whoami', user: 'throw' })).toEqual({ id: 4, error: 'unauthenticated' });
    expect(await client.request({ id: 5, op: 'whoami', user: 'u1' })).toMatchObject({ id: 5, userId: 'u1' });
    await client.close();
    // Reported once per process (an earlier test's throwing identify() may have been the one).
    expect(diagnostics.filter((line) => /identify\(\)/.test(line))).toHaveLength(1);
    expect(handlerCalls).toBe(1);
  });

  it('answers a handler error with {id, error: "internal error"}; the error’s message goes on the message span only', async () => {
    const { client } = await connect();
    expect(await client.request({ id: 'x1', op: 'boom', user: 'carol' })).toEqual({ id: 'x1', error: 'internal error' });
    expect(await client.request({ id: 'x2', op: 'whoami', user: 'carol' })).toMatchObject({ id: 'x2', userId: 'carol' });
    await client.close();
    const failed = await waitFor(() => messageSpans().find((s) => s.status.code === SpanStatusCode.ERROR), 'the failed message span');
    expect(failed.status.message).toBe('tool failed for carol');
    expect(failed.events.find((event) => event.name === 'exception')?.attributes?.['exception.message']).toBe('tool failed for carol');
    expect(messageSpans().filter((s) => s.status.code !== SpanStatusCode.ERROR)).toHaveLength(1);
  });

  it('answers "internal error" for app errors too unless exposeError() opts them in', async () => {
    const { client } = await connect();
    expect(await client.request({ id: 'v1', op: 'invalid', user: 'u1' })).toEqual({ id: 'v1', error: 'internal error' });
    await client.close();
  });

  it('sends the text exposeError() returns, and "internal error" when it returns undefined', async () => {
    const seen: unknown[] = [];
    const exposeError = (error: unknown): string | undefined => {
      seen.push(error);
      return error instanceof ClientFacingError ? error.message : undefined;
    };
    await withServer({ exposeError }, async (url) => {
      const client = await TestClient.connect(`${url}/?tenant=acme`);
      expect(await client.request({ id: 'v1', op: 'invalid', user: 'u1' })).toEqual({ id: 'v1', error: 'expected a "value" field' });
      expect(await client.request({ id: 'v2', op: 'boom', user: 'u1' })).toEqual({ id: 'v2', error: 'internal error' });
      await client.close();
    });
    expect(seen.map((error) => (error as Error).message)).toEqual(['expected a "value" field', 'tool failed for u1']);
  });

  it.each([
    ['throws', (): string => {
      throw new Error('hook bug');
    }],
    ['returns a non-string', (): string => ({ leaked: 'object' }) as unknown as string],
  ])('answers "internal error" when exposeError() %s', async (_what, exposeError) => {
    await withServer({ exposeError }, async (url) => {
      const client = await TestClient.connect(`${url}/?tenant=acme`);
      expect(await client.request({ id: 'v1', op: 'invalid', user: 'u1' })).toEqual({ id: 'v1', error: 'internal error' });
      expect(await client.request({ id: 'v2', op: 'whoami', user: 'u1' })).toMatchObject({ id: 'v2', userId: 'u1' });
      await client.close();
    });
  });
});

describe('handleWebSocketMessages: the connection span', () => {
  it('starts its own trace, linked to the (untrusted) upgrade request’s traceparent, and ends with the close code', async () => {
    const { client, conn } = await connect();
    await client.request({ id: 1, op: 'whoami', user: 'u1' });
    expect(kit.spans().find((span) => span.name === 'websocket.connection')).toBeUndefined();
    await client.close(4001, 'done');
    const connection = await connectionSpan();
    expect(connection.kind).toBe(SpanKind.SERVER);
    expect(connection.attributes['websocket.close_code']).toBe(4001);
    const upgrade = parseTraceHeader(upgradeTraceparents.get(conn));
    expect(upgrade, 'the ws client’s upgrade request carried a traceparent').toBeDefined();
    expect(connection.parentSpanContext).toBeUndefined();
    expect(connection.spanContext().traceId).not.toBe(upgrade!.traceId);
    expect(connection.links.map((link) => [link.context.traceId, link.context.spanId])).toEqual([[upgrade!.traceId, upgrade!.spanId]]);
  });

  it('continues the upgrade request’s traceparent when trustInbound(request) says the peer is trusted', async () => {
    const trusted: string[] = [];
    const trustInbound = (request: IncomingMessage): boolean => {
      trusted.push(String(request.headers['x-peer']));
      return request.headers['x-peer'] === 'gateway';
    };
    const traceparent = `00-${'a1'.repeat(16)}-${'b2'.repeat(8)}-01`;
    await withServer({ trustInbound }, async (url) => {
      for (const peer of ['gateway', 'browser']) {
        const client = await TestClient.connect(`${url}/?tenant=acme`, { traceparent, 'x-peer': peer });
        await client.close();
      }
    });
    const connections = await waitFor(() => {
      const found = kit.spans().filter((span) => span.name === 'websocket.connection');
      return found.length === 2 && found;
    }, 'two connection spans');
    expect(trusted).toEqual(['gateway', 'browser']);
    const continued = connections.filter((span) => span.parentSpanContext?.spanId === 'b2'.repeat(8));
    expect(continued).toHaveLength(1);
    expect(continued[0]!.spanContext().traceId).toBe('a1'.repeat(16));
    const linked = connections.find((span) => span !== continued[0])!;
    expect(linked.parentSpanContext).toBeUndefined();
    expect(linked.links.map((link) => link.context.spanId)).toEqual(['b2'.repeat(8)]);
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
    for (const maxConcurrentMessages of [0, -1, 1.5, Number.NaN, Infinity, '4']) {
      expect(() => handleWebSocketMessages(fakeWs, { identify, maxConcurrentMessages } as never, handler)).toThrow(/maxConcurrentMessages/);
    }
    expect(() => handleWebSocketMessages(fakeWs, { identify, trustInbound: true } as never, handler)).toThrow(/trustInbound/);
    expect(() => handleWebSocketMessages(fakeWs, { identify, exposeError: 'message' } as never, handler)).toThrow(/exposeError/);
  });
});
