/**
 * Isolation across the wire: the example agent service (HTTP + WebSocket) and
 * the inventory service it calls run in this process, under one isotrace and
 * one in-memory exporter. Hundreds of concurrent requests from 20 tenants
 * each run tools (one calls the inventory service over HTTP, one runs on a
 * worker thread) and must:
 *   - get replies for their own tenant and user only;
 *   - leave spans that pass expectNoCrossRequestLeakage (both services);
 *   - have every inventory SERVER span in the caller's trace, child of the caller's CLIENT span;
 *   - deliver the caller's correlation id and tenant in baggage to the
 *     inventory service exactly when its host is in propagateTo (phase 1),
 *     and no baggage at all, only traceparent, when it is not (phase 2).
 *
 * Replay a failure with ISOTRACE_TEST_SEED=<printed seed>.
 */
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { SpanKind } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectNoCrossRequestLeakage, setupTestTracing, type TestTracing } from 'isotrace/testing';
import { createAgentService, type AgentService } from '../../examples/agent-service/server.ts';
import { createInventoryService, type InventoryService, type SeenRequest } from '../../examples/inventory-service/server.ts';
import { ITEMS } from '../../examples/shared/catalogue.ts';
import { waitFor } from '../helpers/http.ts';
import { createRandom, delay, testSeed, type Random } from '../helpers/random.ts';
import { chatOverHttp, openChatSocket, parseBaggage, type AgentReply, type ChatIdentity, type SocketReply } from '../helpers/services.ts';

const TENANTS = 20;
const USERS_PER_TENANT = 3;

/** One request to make: who asks about which item, and when it starts. */
interface Plan extends ChatIdentity {
  item: string;
  message: string;
  startDelayMs: number;
}

interface Outcome {
  plan: Plan;
  reply: AgentReply;
  transport: 'http' | 'ws';
}

function planRequests(random: Random, count: number, prefix: string): Plan[] {
  return Array.from({ length: count }, (_, i) => {
    const tenant = random.int(0, TENANTS - 1);
    const item = random.pick(ITEMS);
    return {
      tenantId: `tenant-${tenant}`,
      userId: `user-${tenant}-${random.int(0, USERS_PER_TENANT - 1)}`,
      item,
      message: `${prefix} ${i}: how many ${item}s are in stock?`,
      startDelayMs: random.int(0, 20),
    };
  });
}

async function overHttp(agent: AgentService, plans: readonly Plan[]): Promise<Outcome[]> {
  return Promise.all(
    plans.map(async (plan) => {
      await delay(plan.startDelayMs);
      return { plan, reply: await chatOverHttp(agent.url, plan, plan.message), transport: 'http' as const };
    }),
  );
}

/** The user each socket speaks for: sockets are spread over all tenants. */
function socketIdentities(sockets: number): ChatIdentity[] {
  return Array.from({ length: sockets }, (_, i) => ({ tenantId: `tenant-${i % TENANTS}`, userId: `user-${i % TENANTS}-${Math.floor(i / TENANTS) % USERS_PER_TENANT}` }));
}

/** Plans whose identity is that of a randomly chosen socket. */
function planForSockets(random: Random, count: number, sockets: readonly ChatIdentity[], prefix: string): Array<Plan & { socket: number }> {
  return planRequests(random, count, prefix).map((plan) => {
    const socket = random.int(0, sockets.length - 1);
    return { ...plan, ...sockets[socket]!, socket };
  });
}

/** Opens the sockets (half identify with upgrade headers, half with the query) and sends every message concurrently. */
async function overWebSockets(agent: AgentService, sockets: readonly ChatIdentity[], plans: ReadonlyArray<Plan & { socket: number }>): Promise<Outcome[]> {
  const opened = await Promise.all(sockets.map((identity, i) => openChatSocket(agent.wsUrl, identity, i % 2 === 0 ? 'headers' : 'query')));
  try {
    return await Promise.all(
      plans.map(async (plan, id) => {
        await delay(plan.startDelayMs);
        const reply: SocketReply = await opened[plan.socket]!.ask(id, plan.message);
        if ('error' in reply) throw new Error(`WebSocket message ${id} as ${plan.tenantId}/${plan.userId} failed: ${reply.error}`);
        expect(reply.id).toBe(id);
        return { plan, reply, transport: 'ws' as const };
      }),
    );
  } finally {
    await Promise.all(opened.map((socket) => socket.close()));
  }
}

/** What each reply must say about its own request. */
function replyMismatches(outcomes: readonly Outcome[]): string[] {
  const problems: string[] = [];
  for (const { plan, reply, transport } of outcomes) {
    const own = `${plan.tenantId}/${plan.userId}`;
    const where = `${transport} ${plan.message} as ${own}`;
    if (`${reply.tenantId}/${reply.userId}` !== own) problems.push(`${where}: reply is for ${reply.tenantId}/${reply.userId}`);
    if (reply.stock.length !== 1 || reply.stock[0]!.tenantId !== plan.tenantId || reply.stock[0]!.item !== plan.item) {
      problems.push(`${where}: stock ${JSON.stringify(reply.stock)}`);
    }
    const { summary } = reply;
    if (`${summary.tenantId}/${summary.userId}` !== own || summary.requestId !== reply.requestId) problems.push(`${where}: worker saw ${JSON.stringify(summary)}`);
  }
  return problems;
}

/** SharedState counted each user's messages: per user, the counts are exactly 1..n. */
function messageCountsPerUser(outcomes: readonly Outcome[]): Map<string, number[]> {
  const counts = new Map<string, number[]>();
  for (const { plan, reply } of outcomes) {
    const key = `${plan.tenantId}/${plan.userId}`;
    counts.set(key, [...(counts.get(key) ?? []), reply.messageCount]);
  }
  for (const list of counts.values()) list.sort((a, b) => a - b);
  return counts;
}

function isInventoryServerSpan(span: ReadableSpan): boolean {
  return span.kind === SpanKind.SERVER && span.attributes['url.path'] === '/stock';
}

function isAgentRequestSpan(span: ReadableSpan): boolean {
  return span.attributes['isotrace.request_span'] === true && (span.attributes['url.path'] === '/chat' || span.name === 'websocket.message');
}

/** Checks the downstream side of every request: spans and what the inventory service saw. */
function downstreamMismatches(outcomes: readonly Outcome[], spans: readonly ReadableSpan[], seen: readonly SeenRequest[], baggageExpected: boolean): string[] {
  const problems: string[] = [];
  const byTrace = new Map(outcomes.map((outcome) => [outcome.reply.traceId, outcome]));
  const spanById = new Map(spans.map((span) => [`${span.spanContext().traceId}/${span.spanContext().spanId}`, span]));
  const parentOf = (span: ReadableSpan): ReadableSpan | undefined => spanById.get(`${span.spanContext().traceId}/${span.parentSpanContext?.spanId}`);

  const inventorySpans = spans.filter(isInventoryServerSpan);
  const clientSpanOfTrace = new Map<string, string>();
  for (const server of inventorySpans) {
    const traceId = server.spanContext().traceId;
    const caller = byTrace.get(traceId);
    const client = parentOf(server);
    const tool = client && parentOf(client);
    if (!caller) problems.push(`inventory span ${server.spanContext().spanId} is in trace ${traceId}, which no agent request of this phase has`);
    else if (server.attributes['isotrace.tenant_id'] !== caller.plan.tenantId) problems.push(`inventory span in ${traceId} ran for ${String(server.attributes['isotrace.tenant_id'])}, caller is ${caller.plan.tenantId}`);
    if (client?.kind !== SpanKind.CLIENT) problems.push(`inventory span in ${traceId}: parent is ${client ? `${client.name} (kind ${client.kind})` : 'missing'}, expected the caller's CLIENT span`);
    else if (tool?.name !== 'execute_tool inventory_lookup') problems.push(`CLIENT span in ${traceId} is under ${tool?.name ?? 'nothing'}, expected execute_tool inventory_lookup`);
    if (client) clientSpanOfTrace.set(traceId, client.spanContext().spanId);
  }
  if (inventorySpans.length !== outcomes.length) problems.push(`${inventorySpans.length} inventory SERVER spans for ${outcomes.length} requests`);

  const seenHere = seen.filter((request) => request.path === '/stock' && byTrace.has(request.traceId));
  if (seenHere.length !== outcomes.length) problems.push(`the inventory service saw ${seenHere.length} of ${outcomes.length} calls in the callers' traces`);
  for (const request of seenHere) {
    const { plan, reply } = byTrace.get(request.traceId)!;
    const where = `inventory call in trace ${request.traceId} (caller ${plan.tenantId}/${plan.userId})`;
    if (`${request.tenantId}/${request.userId}` !== `${plan.tenantId}/${plan.userId}`) problems.push(`${where}: identified as ${request.tenantId}/${request.userId}`);
    if (request.parentSpanId !== clientSpanOfTrace.get(request.traceId)) problems.push(`${where}: parent ${String(request.parentSpanId)}, CLIENT span ${String(clientSpanOfTrace.get(request.traceId))}`);
    const baggage = parseBaggage(request.baggage);
    if (baggageExpected) {
      const expected = { 'isotrace.correlation_id': reply.correlationId, 'isotrace.tenant_id': plan.tenantId, 'isotrace.user_id': plan.userId };
      const wrong = Object.entries(expected).filter(([key, value]) => baggage[key] !== value);
      if (wrong.length > 0) problems.push(`${where}: baggage ${String(request.baggage)} lacks ${wrong.map(([key, value]) => `${key}=${value}`).join(', ')}`);
      if (request.correlationId !== reply.correlationId) problems.push(`${where}: correlation id ${request.correlationId}, caller's ${reply.correlationId}`);
    } else {
      if (request.baggage !== undefined) problems.push(`${where}: received baggage ${request.baggage}`);
      if (request.correlationId === reply.correlationId) problems.push(`${where}: learned the caller's correlation id without baggage`);
    }
  }
  return problems;
}

describe('isolation across the wire: agent service → inventory service', () => {
  const seed = testSeed();
  let kit: TestTracing;
  let inventory: InventoryService;
  let agent: AgentService;

  beforeAll(async () => {
    console.log(`wire-isolation seed: ${seed} (replay with ISOTRACE_TEST_SEED=${seed})`);
    // The inventory port decides propagateTo, so it starts first; it needs isotrace only once requests arrive.
    inventory = await createInventoryService();
    kit = await setupTestTracing({ propagateTo: [new URL(inventory.url).host] });
    // No tight downstream timeout: on a loaded 2-core machine 1,000 concurrent turns queue for seconds.
    agent = await createAgentService({ inventoryUrl: inventory.url, inventoryTimeoutMs: 120_000 });
  });
  afterAll(async () => {
    await agent?.close();
    await inventory?.close();
    await kit?.shutdown();
  });

  async function settledSpans(requests: number): Promise<ReadableSpan[]> {
    // A SERVER span ends when its response has been flushed, which can be just after the client read it.
    return waitFor(() => {
      const spans = kit.spans();
      return spans.filter(isAgentRequestSpan).length >= requests && spans.filter(isInventoryServerSpan).length >= requests && spans;
    }, `${requests} agent and inventory request spans`);
  }

  it('500 WebSocket messages over 50 sockets and 500 HTTP requests, 20 tenants: own replies, no leaks, one trace per call, baggage to the propagateTo host', async () => {
    const random = createRandom(seed);
    const httpPlans = planRequests(random, 500, 'http');
    const sockets = socketIdentities(50);
    const wsPlans = planForSockets(random, 500, sockets, 'ws');
    kit.reset();
    const violationsBefore = await kit.violationCount();

    const [httpOutcomes, wsOutcomes] = await Promise.all([overHttp(agent, httpPlans), overWebSockets(agent, sockets, wsPlans)]);
    const outcomes = [...httpOutcomes, ...wsOutcomes];

    expect(replyMismatches(outcomes)).toEqual([]);
    expect(new Set(outcomes.map((o) => o.reply.requestId)).size).toBe(outcomes.length);
    expect(new Set(outcomes.map((o) => o.reply.traceId)).size).toBe(outcomes.length);
    for (const [user, counts] of messageCountsPerUser(outcomes)) expect(counts, user).toEqual(counts.map((_, i) => i + 1));
    expect(new Set(outcomes.map((o) => o.plan.tenantId)).size).toBe(TENANTS);

    const spans = await settledSpans(outcomes.length);
    const report = expectNoCrossRequestLeakage(spans);
    expect(report.requests).toBe(outcomes.length * 2);
    expect(report.toolSpans).toBe(outcomes.length * 3);
    expect(await kit.violationCount()).toBe(violationsBefore);
    expect(downstreamMismatches(outcomes, spans, inventory.seen, true)).toEqual([]);
  }, 150_000);

  it('with propagateTo: [] (tracing restarted) the inventory service gets traceparent but no baggage', async () => {
    await kit.shutdown();
    kit = await setupTestTracing({ propagateTo: [] });
    const random = createRandom(seed ^ 0x5eed);
    const httpPlans = planRequests(random, 100, 'http');
    const sockets = socketIdentities(10);
    const wsPlans = planForSockets(random, 100, sockets, 'ws');

    const [httpOutcomes, wsOutcomes] = await Promise.all([overHttp(agent, httpPlans), overWebSockets(agent, sockets, wsPlans)]);
    const outcomes = [...httpOutcomes, ...wsOutcomes];

    expect(replyMismatches(outcomes)).toEqual([]);
    // A restart brings a fresh MemoryStore: counting starts again at 1.
    for (const [user, counts] of messageCountsPerUser(outcomes)) expect(counts, user).toEqual(counts.map((_, i) => i + 1));
    const spans = await settledSpans(outcomes.length);
    expectNoCrossRequestLeakage(spans);
    expect(downstreamMismatches(outcomes, spans, inventory.seen, false)).toEqual([]);
  }, 90_000);
});
