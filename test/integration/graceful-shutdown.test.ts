/**
 * Graceful shutdown: tracing.shutdown() flushes and stops exporting, but never
 * breaks a request. A request in flight keeps its context, SharedState and
 * tools, and its spans that end later are dropped and counted; requests that
 * arrive after shutdown (HTTP, WebSocket, withRequestContext) are served with
 * a working request context and no telemetry. Real servers on 127.0.0.1 and a
 * real OTLP/HTTP sink.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { getRequestContext, getSharedState, startTracing, withRequestContext, type Tracing } from 'isotrace';
import { httpRequestContext } from 'isotrace/http';
import { createToolSystem, Tool } from 'isotrace/tools';
import { handleWebSocketMessages } from 'isotrace/ws';
import { listen, parseTraceHeader, waitFor, type TestServer } from '../helpers/http.ts';
import { startOtlpSink, type OtlpSink } from '../helpers/otlp-sink.ts';
import { startWsServer, TestClient, type TestWsServer } from '../unit/ws/ws-test-helpers.ts';

/** What the work below returns: who it ran as, what SharedState held, and what the tool saw. */
interface Served {
  requestId: string;
  tenantId: string;
  userId: string;
  note: unknown;
  tool: { tenantId: string; userId: string; note: unknown };
}

/** A tool that answers with the identity and SharedState of the request it runs in. */
class WhoAmI extends Tool<Record<string, never>, Served['tool']> {
  static override toolName = 'whoami';
  async run(): Promise<Served['tool']> {
    return { tenantId: this.context.tenantId, userId: this.context.userId, note: await this.sharedState.get('note') };
  }
}

/** A request's work: reads its context and SharedState and calls a tool, all through the bound request. */
async function work(): Promise<Served> {
  const { requestId, tenantId, userId } = getRequestContext();
  const { dispatcher } = createToolSystem([WhoAmI]);
  const tool = await dispatcher.execute<Served['tool']>('whoami', {});
  return { requestId, tenantId, userId, note: await getSharedState().get('note'), tool };
}

let tracing: Tracing | undefined;
let sink: OtlpSink | undefined;
const servers: Array<TestServer | TestWsServer> = [];

afterEach(async () => {
  await tracing?.shutdown();
  for (const server of servers.splice(0)) await server.close();
  await sink?.close();
  tracing = undefined;
  sink = undefined;
});

/** isotrace exporting over OTLP to a fresh sink. Outbound calls are not instrumented: the test's own HTTP clients make no spans. */
async function startTraced(): Promise<Tracing> {
  sink = await startOtlpSink();
  tracing = await startTracing({ serviceName: 'graceful-shutdown', endpoint: sink.url, flushTimeoutMs: 2000, instrumentHttp: false });
  return tracing;
}

/** An HTTP server identifying callers by the x-tenant / x-user headers; `handler` answers. */
async function httpServer(handler: (reply: (body: unknown) => void) => Promise<void>): Promise<TestServer> {
  const server = await listen(
    httpRequestContext({ identify: (req) => ({ tenantId: String(req.headers['x-tenant']), userId: String(req.headers['x-user']) }) }, async (_req, res) => {
      await handler((body) => res.setHeader('content-type', 'application/json').end(JSON.stringify(body)));
    }),
  );
  servers.push(server);
  return server;
}

function get(server: TestServer, tenant: string, user: string): Promise<Response> {
  return fetch(server.origin, { headers: { 'x-tenant': tenant, 'x-user': user } });
}

function expectServedAs(served: Served, tenantId: string, userId: string, note: unknown): void {
  expect(served).toMatchObject({ tenantId, userId, note, tool: { tenantId, userId, note } });
}

describe('graceful shutdown', () => {
  it('a request in flight at shutdown completes with its context, SharedState and tools; its span ends later and is counted as dropped', async () => {
    const traced = await startTraced();
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const server = await httpServer(async (reply) => {
      await getSharedState().set('note', 'written before shutdown');
      entered();
      await gate;
      reply(await work());
    });

    const response = get(server, 'acme', 'ada');
    await inside;
    await traced.shutdown();
    release();

    const answered = await response;
    expect(answered.status).toBe(200);
    const served = (await answered.json()) as Served;
    expectServedAs(served, 'acme', 'ada', 'written before shutdown');
    expect(answered.headers.get('x-request-id')).toBe(served.requestId);

    // The request span started before shutdown and ends after it: counted, never exported. The tool span started after: not recorded.
    await waitFor(() => traced.stats().ended === 1, 'the request span to end');
    expect(traced.stats()).toEqual({ ended: 1, exported: 0, failed: 0, dropped: 1 });
    expect(sink!.spans()).toEqual([]);
  });

  it('HTTP requests arriving after shutdown are served with a working request context and export nothing', async () => {
    const traced = await startTraced();
    const server = await httpServer(async (reply) => {
      await getSharedState().update('note', (count) => (typeof count === 'number' ? count + 1 : 1));
      reply(await work());
    });

    const before = await get(server, 'acme', 'ada');
    expectServedAs((await before.json()) as Served, 'acme', 'ada', 1);
    await waitFor(() => traced.stats().ended === 2, 'the first request and tool spans to end');
    await traced.shutdown();
    const exported = traced.stats();
    expect(exported).toMatchObject({ exported: 2, failed: 0, dropped: 0 });
    expect(sink!.spans()).toHaveLength(2);

    const responses = await Promise.all([get(server, 'acme', 'ada'), get(server, 'globex', 'bob')]);
    expect(responses.map((r) => r.status)).toEqual([200, 200]);
    const [ada, bob] = (await Promise.all(responses.map((r) => r.json()))) as Served[];
    expectServedAs(ada!, 'acme', 'ada', 2);
    expectServedAs(bob!, 'globex', 'bob', 1);
    expect(ada!.requestId).not.toBe(bob!.requestId);
    // Still a valid trace context for the caller, marked unsampled.
    expect(parseTraceHeader(responses[0]!.headers.get('traceresponse'))?.flags).toBe('00');

    expect(traced.stats()).toEqual(exported);
    expect(sink!.spans()).toHaveLength(2);
  });

  it('withRequestContext() and WebSocket messages after shutdown run their handlers without telemetry', async () => {
    const traced = await startTraced();
    await traced.shutdown();

    const direct = await withRequestContext({ tenantId: 'acme', userId: 'ada', values: { plan: 'pro' } }, async (ctx) => {
      await ctx.sharedState.set('note', 'direct');
      return { ...(await work()), plan: ctx.get('plan') };
    });
    expectServedAs(direct, 'acme', 'ada', 'direct');
    expect(direct.plan).toBe('pro');

    const ws = await startWsServer((socket, request) =>
      handleWebSocketMessages(socket, { request, identify: (_req, message) => ({ tenantId: 'acme', userId: String((message as { user: string }).user) }) }, async (message) => {
        await getSharedState().set('note', `ws ${(message as { id: number }).id}`);
        return { id: (message as { id: number }).id, ...(await work()) };
      }),
    );
    servers.push(ws);
    const client = await TestClient.connect(ws.url);
    try {
      const replies = await Promise.all([client.request<Served>({ id: 1, user: 'ada' }), client.request<Served>({ id: 2, user: 'bob' })]);
      expectServedAs(replies[0]!, 'acme', 'ada', 'ws 1');
      expectServedAs(replies[1]!, 'acme', 'bob', 'ws 2');
    } finally {
      await client.close();
    }
    expect(traced.stats()).toEqual({ ended: 0, exported: 0, failed: 0, dropped: 0 });
    expect(sink!.spans()).toEqual([]);
  });

  it('a request in flight across shutdown and a restart keeps the SharedState it started with; the restarted isotrace traces new requests', async () => {
    const first = await startTraced();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const straddling = withRequestContext({ tenantId: 'acme', userId: 'ada' }, async (ctx) => {
      await ctx.sharedState.set('note', 'kept');
      entered();
      await gate;
      return work();
    });
    await inside;
    await first.shutdown();
    const restartSink = await startOtlpSink();
    tracing = await startTracing({ serviceName: 'graceful-restart', endpoint: restartSink.url, flushTimeoutMs: 2000, instrumentHttp: false });
    try {
      release();
      expectServedAs(await straddling, 'acme', 'ada', 'kept');

      const fresh = await withRequestContext({ tenantId: 'acme', userId: 'ada', name: 'after-restart' }, () => work());
      expect(fresh.note).toBeUndefined(); // the restarted isotrace has its own store
      await tracing.forceFlush();
      expect(restartSink.spans().map((span) => span.name)).toContain('after-restart');
      expect(first.stats()).toMatchObject({ exported: 0, dropped: 1 });
    } finally {
      await tracing.shutdown();
      await restartSink.close();
    }
  });
});
