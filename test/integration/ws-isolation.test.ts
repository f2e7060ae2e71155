/**
 * WebSocket isolation: 500 concurrent messages over 50 sockets and 20 tenants.
 * Every handler awaits random delays and checks at each step, from inside the
 * code that resumed, that it still sees its own message's context and values;
 * every message gets its own trace linked to its socket's connection span, and
 * the exported spans pass expectNoCrossRequestLeakage. An untrusted client
 * that picks its upgrade's traceparent (its own request's ids) cannot plant
 * audit violations, while a real cross-request span still fails the audit.
 *
 * Replay a failure with ISOTRACE_TEST_SEED=<printed seed>.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import type { IncomingMessage } from 'node:http';
import { context, trace, type Span } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { getRequestContext, type RequestContext } from 'isotrace';
import type { Identity } from 'isotrace/http';
import { handleWebSocketMessages } from 'isotrace/ws';
import { auditSpans, expectNoCrossRequestLeakage, setupTestTracing, type TestTracing } from 'isotrace/testing';
import { waitFor } from '../helpers/http.js';
import { createRandom, delay, testSeed } from '../helpers/random.js';
import { startWsServer, TestClient, type TestWsServer } from '../unit/ws/ws-test-helpers.js';

const SOCKETS = 50;
const MESSAGES_PER_SOCKET = 10;
const TENANTS = 20;

let kit: TestTracing;
let server: TestWsServer;

interface Turn {
  id: string;
  user: string;
  secret: string;
  delaysMs: number[];
}

interface Outcome {
  id: string;
  requestId: string;
  traceId: string;
  tenantId: string;
  userId: string;
  mismatches: string[];
}

/** Tenant from the upgrade request's `x-tenant` header, user from the message. */
function identify(request: IncomingMessage | undefined, message: unknown): Identity | undefined {
  const tenantId = request?.headers['x-tenant'];
  const { user } = message as Partial<Turn>;
  return typeof tenantId === 'string' && typeof user === 'string' ? { tenantId, userId: user } : undefined;
}

async function handleTurn(raw: unknown, ctx: RequestContext): Promise<Outcome> {
  const turn = raw as Turn;
  const mismatches: string[] = [];
  const tracer = trace.getTracer('ws-isolation');
  ctx.set('secret', turn.secret);
  const check = (where: string): void => {
    const seen = getRequestContext();
    if (seen !== ctx) mismatches.push(`${where}: context ${seen.requestId} instead of ${ctx.requestId}`);
    if (seen.userId !== turn.user) mismatches.push(`${where}: user ${seen.userId} instead of ${turn.user}`);
    if (seen.get('secret') !== turn.secret) mismatches.push(`${where}: secret ${String(seen.get('secret'))}`);
    const active = trace.getActiveSpan()?.spanContext().traceId;
    if (active !== ctx.traceId) mismatches.push(`${where}: active trace ${active} instead of ${ctx.traceId}`);
  };
  check('start');
  for (const [step, ms] of turn.delaysMs.entries()) {
    await tracer.startActiveSpan(`step-${step}`, async (span) => {
      try {
        await delay(ms);
        check(`step ${step}`);
      } finally {
        span.end();
      }
    });
  }
  check('end');
  return { id: turn.id, requestId: ctx.requestId, traceId: ctx.traceId, tenantId: ctx.tenantId, userId: ctx.userId, mismatches };
}

beforeAll(async () => {
  kit = await setupTestTracing();
  server = await startWsServer((ws, request) => handleWebSocketMessages(ws, { request, identify }, handleTurn));
});

afterAll(async () => {
  await server?.close();
  await kit?.shutdown();
});

describe('WebSocket isolation across sockets and concurrent messages', () => {
  it(`keeps ${SOCKETS * MESSAGES_PER_SOCKET} concurrent messages on ${SOCKETS} sockets apart`, async () => {
    const random = createRandom(testSeed());
    const sockets = await Promise.all(
      Array.from({ length: SOCKETS }, async (_, s) => {
        const tenant = `tenant-${s % TENANTS}`;
        return { tenant, client: await TestClient.connect(server.url, { 'x-tenant': tenant }) };
      }),
    );
    const plans = sockets.map(({ tenant }, s) =>
      Array.from({ length: MESSAGES_PER_SOCKET }, (_, m): Turn & { tenant: string } => ({
        tenant,
        id: `s${s}-m${m}`,
        user: `user-${random.int(0, 4)}`,
        secret: `secret-${s}-${m}-${random.int(0, 1e9)}`,
        delaysMs: Array.from({ length: 3 }, () => random.int(0, 12)),
      })),
    );

    const outcomes = await Promise.all(
      sockets.flatMap(({ client }, s) =>
        plans[s]!.map(async (turn) => {
          const { tenant, ...message } = turn;
          return { turn: { ...message, tenant }, outcome: await client.request<Outcome>(message) };
        }),
      ),
    );

    const context = `seed ${random.seed}`;
    for (const { turn, outcome } of outcomes) {
      expect(outcome.mismatches, `${turn.id} (${context})`).toEqual([]);
      expect([outcome.id, outcome.tenantId, outcome.userId], `${turn.id} (${context})`).toEqual([turn.id, turn.tenant, turn.user]);
    }
    const total = SOCKETS * MESSAGES_PER_SOCKET;
    expect(new Set(outcomes.map(({ outcome }) => outcome.requestId)).size).toBe(total);
    expect(new Set(outcomes.map(({ outcome }) => outcome.traceId)).size).toBe(total);

    await Promise.all(sockets.map(({ client }) => client.close()));
    const connections = await waitFor(() => {
      const found = kit.spans().filter((span) => span.name === 'websocket.connection');
      return found.length === SOCKETS && found;
    }, `${SOCKETS} connection spans`);

    // Every message span links to a connection span; each connection's messages are that socket's, one tenant.
    const messages = kit.spans().filter((span) => span.name === 'websocket.message');
    expect(messages).toHaveLength(total);
    const byConnection = new Map<string, Set<string>>();
    const counts = new Map<string, number>();
    for (const span of messages) {
      expect(span.links).toHaveLength(1);
      const linked = span.links[0]!.context.spanId;
      byConnection.set(linked, (byConnection.get(linked) ?? new Set()).add(String(span.attributes['isotrace.tenant_id'])));
      counts.set(linked, (counts.get(linked) ?? 0) + 1);
    }
    expect(new Set(byConnection.keys())).toEqual(new Set(connections.map((span) => span.spanContext().spanId)));
    for (const [connection, tenants] of byConnection) {
      expect(tenants.size, `tenants of connection ${connection}`).toBe(1);
      expect(counts.get(connection)).toBe(MESSAGES_PER_SOCKET);
    }

    const report = expectNoCrossRequestLeakage(kit.spans());
    expect(report.spans).toBeGreaterThanOrEqual(total * 4);
  });
});

/** The exported spans named `name`, once there are `count` of them. */
function spansNamed(name: string, count: number): Promise<ReadableSpan[]> {
  return waitFor(() => {
    const found = kit.spans().filter((span) => span.name === name);
    return found.length === count && found;
  }, `${count} ${name} spans`);
}

describe('WebSocket upgrades with a client-chosen traceparent', () => {
  it('an untrusted client reusing its own request’s ids in three upgrades plants no audit violation', async () => {
    kit.reset();
    const headers = { 'x-tenant': 'tenant-1' };
    const first = await TestClient.connect(server.url, headers);
    const { requestId } = await first.request<Outcome>({ id: 'own', user: 'user-1', secret: 's', delaysMs: [] });
    // The client's own request span (an HTTP client learns it from `traceresponse`).
    const own = await waitFor(() => kit.spans().find((span) => span.attributes['isotrace.request_id'] === requestId), 'the client’s request span');
    const { traceId, spanId } = own.spanContext();
    const traceparent = `00-${traceId}-${spanId}-01`;

    const upgrades = await Promise.all([1, 2, 3].map(() => TestClient.connect(server.url, { ...headers, traceparent })));
    for (const [i, client] of upgrades.entries()) await client.request({ id: `u${i}`, user: 'user-1', secret: 's', delaysMs: [1] });
    await Promise.all([first, ...upgrades].map((client) => client.close()));
    const connections = await spansNamed('websocket.connection', 4);

    const report = expectNoCrossRequestLeakage(kit.spans());
    expect(report.requests).toBe(4);
    const grafted = connections.filter((span) => span.links.some((link) => link.context.spanId === spanId));
    expect(grafted, 'the three upgrades’ connection spans, linked to the traceparent they sent').toHaveLength(3);
    for (const span of grafted) {
      expect(span.parentSpanContext).toBeUndefined();
      expect(span.spanContext().traceId).not.toBe(traceId);
    }
  });

  it('a real leak is still caught: a span of one message parented under another message’s span fails the audit', async () => {
    kit.reset();
    let previous: Span | undefined;
    // THE PLANTED BUG: the last message's span, kept across messages and used as the parent of the next one's work.
    const leaky = await startWsServer((ws, request) =>
      handleWebSocketMessages(ws, { request, identify }, (raw, ctx) => {
        if (previous) trace.getTracer('ws-isolation').startSpan('lookup', {}, trace.setSpan(context.active(), previous)).end();
        previous = trace.getActiveSpan();
        return { id: (raw as Turn).id, requestId: ctx.requestId };
      }),
    );
    try {
      const a = await TestClient.connect(leaky.url, { 'x-tenant': 'tenant-a' });
      const b = await TestClient.connect(leaky.url, { 'x-tenant': 'tenant-b' });
      await a.request({ id: 'a1', user: 'alice' });
      await b.request({ id: 'b1', user: 'bob' });
      await Promise.all([a.close(), b.close()]);
      await spansNamed('websocket.connection', 2);
    } finally {
      await leaky.close();
    }
    expect(() => expectNoCrossRequestLeakage(kit.spans())).toThrow();
    const found = auditSpans(kit.spans()).violations.filter((violation) => violation.spanName === 'lookup');
    expect(found.map((violation) => violation.check).sort()).toEqual(['ancestry.request_id', 'ancestry.tenant_id', 'ancestry.user_id']);
  });
});
