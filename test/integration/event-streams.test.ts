/**
 * Per-user event streams (the seeds' per-user WebSocket bridge): 500 concurrent WebSocket users,
 * each on its own socket, run streaming tools that emit progress events with random delays; every
 * client must receive all of its own events, in order, before its reply, and not one event of
 * anybody else, with zero event-owner violations. A planted module-level bridge (the first
 * request's stream used by every request) must be caught: each misdirected event refused (never
 * delivered to the first user's socket) and counted.
 *
 * Replay a failure with ISOTRACE_TEST_SEED=<printed seed>.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingMessage } from 'node:http';
import { emitProgress, type RequestContext } from 'isotrace';
import type { Identity } from 'isotrace/http';
import { expectNoCrossRequestLeakage, setupTestTracing, type TestTracing } from 'isotrace/testing';
import { createToolSystem, defineTool, Tool } from 'isotrace/tools';
import { handleWebSocketMessages } from 'isotrace/ws';
import { forgetBridge, handleTurn, handleTurnFixed, type BridgeTurn } from '../fixtures/events/global-bridge.ts';
import { createRandom, deferred, delay, testSeed, type Deferred } from '../helpers/random.js';
import { EventClient, EventCountReader } from '../unit/events/events-test-helpers.js';
import { startWsServer, type TestWsServer } from '../unit/ws/ws-test-helpers.js';

const USERS = 500;
const TENANTS = 25;
const BRIDGE_USERS = 50;

// A type alias (not an interface): it must fit EventClient.request()'s index-signature parameter.
type Turn = {
  id: string;
  user: string;
  kind: 'stream' | 'bridge' | 'bridge-fixed';
  delaysMs: number[];
};

interface TurnReply {
  id: string;
  requestId: string;
  user: string;
  chunks: number[];
}

/** A streaming tool: one progress event per chunk, after a random delay, naming its user and request. */
const report = defineTool({
  name: 'report',
  description: 'Streams a report chunk by chunk',
  async *execute({ delaysMs }: { delaysMs: number[] }, call) {
    for (const [chunk, ms] of delaysMs.entries()) {
      await delay(ms);
      call.emit({ type: 'progress', chunk, user: call.context.userId, requestId: call.context.requestId });
      yield chunk;
    }
  },
});

/** A class tool announcing itself through this.emit. */
class Announce extends Tool<{ tool: string }, void> {
  static override toolName = 'announce';
  async run({ tool }: { tool: string }): Promise<void> {
    await delay(Math.floor(Math.random() * 3));
    this.emit({ type: 'tool-started', tool, user: this.context.userId, requestId: this.context.requestId });
  }
}

function identify(request: IncomingMessage | undefined, message: unknown): Identity | undefined {
  const tenantId = request?.headers['x-tenant'];
  const { user } = message as Partial<Turn>;
  return typeof tenantId === 'string' && typeof user === 'string' ? { tenantId, userId: user } : undefined;
}

// The planted-bridge tests hold the first turn open with this gate.
let gate: Deferred | undefined;

async function handle(raw: unknown, ctx: RequestContext): Promise<unknown> {
  const turn = raw as Turn;
  if (turn.kind === 'bridge') return handleTurn(turn as BridgeTurn, ctx, turn.id === 'first' ? gate?.promise : undefined);
  if (turn.kind === 'bridge-fixed') return handleTurnFixed(turn as BridgeTurn, ctx, turn.id === 'first' ? gate?.promise : undefined);
  emitProgress({ type: 'turn-started', user: ctx.userId, requestId: ctx.requestId });
  const { dispatcher } = createToolSystem([Announce, report]);
  await dispatcher.execute('announce', { tool: 'report' });
  const stream = await dispatcher.execute<AsyncIterable<number>>('report', { delaysMs: turn.delaysMs });
  const chunks: number[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return { id: turn.id, requestId: ctx.requestId, user: ctx.userId, chunks } satisfies TurnReply;
}

const reader = new EventCountReader();
let kit: TestTracing;
let server: TestWsServer;
const seed = testSeed();

beforeAll(async () => {
  kit = await setupTestTracing({ metricReaders: [reader] });
  server = await startWsServer((ws, request) => handleWebSocketMessages(ws, { request, identify }, handle));
  console.log(`event-streams seed: ${seed} (replay with ISOTRACE_TEST_SEED=${seed})`);
});

afterAll(async () => {
  await server?.close();
  await kit?.shutdown();
});

/** The events a turn of `user` must produce, in order. */
function expectedEvents(turn: Turn, requestId: string): Record<string, unknown>[] {
  const own = { user: turn.user, requestId };
  return [
    { type: 'turn-started', ...own },
    { type: 'tool-started', tool: 'report', ...own },
    ...turn.delaysMs.map((_, chunk) => ({ type: 'progress', chunk, ...own })),
  ].map((event) => ({ id: turn.id, event }));
}

describe('per-user event streams over WebSocket', () => {
  it(`${USERS} concurrent users on ${USERS} sockets running streaming tools: 0 misdelivered events, 0 lost`, async () => {
    kit.reset();
    const random = createRandom(seed);
    const turns = Array.from({ length: USERS }, (_, u): Turn & { tenant: string } => ({
      tenant: `tenant-${u % TENANTS}`,
      id: `turn-${u}`,
      user: `user-${u}`,
      kind: 'stream',
      delaysMs: Array.from({ length: random.int(2, 6) }, () => random.int(0, 15)),
    }));
    const clients = await Promise.all(turns.map((turn) => EventClient.connect(server.url, { 'x-tenant': turn.tenant })));
    const outcomes = await Promise.all(turns.map(({ tenant: _tenant, ...turn }, u) => clients[u]!.request<TurnReply>(turn)));
    await Promise.all(clients.map((client) => client.close()));

    let misdelivered = 0;
    let received = 0;
    for (const [u, { events, reply }] of outcomes.entries()) {
      const turn = turns[u]!;
      const context = `${turn.user} (seed ${seed})`;
      const frames = clients[u]!.frames;
      const foreign = frames.filter((frame) => frame.id !== turn.id || ('event' in frame && (frame.event as { user?: unknown }).user !== turn.user));
      misdelivered += foreign.length;
      received += frames.length - 1;
      expect(foreign, context).toEqual([]);
      expect(reply, context).toEqual({ id: turn.id, requestId: reply.requestId, user: turn.user, chunks: turn.delaysMs.map((_, chunk) => chunk) });
      // All of its own events, in emit order, before the reply, and none after it.
      expect(events, context).toEqual(expectedEvents(turn, reply.requestId));
      expect(clients[u]!.eventsOf(turn.id), context).toHaveLength(events.length);
    }
    const emitted = turns.reduce((sum, turn) => sum + turn.delaysMs.length + 2, 0);
    expect(misdelivered).toBe(0);
    expect(received).toBe(emitted);
    expect(new Set(outcomes.map(({ reply }) => reply.requestId)).size).toBe(USERS);
    expect(await kit.violationCount('event-owner')).toBe(0);
    expect(await kit.violationCount()).toBe(0);

    // Each message's request span counts its deliveries; the spans pass the after-the-fact audit.
    const messageSpans = kit.spans().filter((span) => span.name === 'websocket.message');
    expect(messageSpans).toHaveLength(USERS);
    const deliveredOnSpans = messageSpans.reduce((sum, span) => sum + Number(span.attributes['isotrace.events.delivered']), 0);
    expect(deliveredOnSpans).toBe(emitted);
    expect(messageSpans.every((span) => span.attributes['isotrace.events.undelivered'] === 0)).toBe(true);
    expectNoCrossRequestLeakage(kit.spans());
  });
});

/**
 * Runs the bridge scenario: the first user's turn opens (and, through `gate`, holds open) the
 * bridge; then BRIDGE_USERS - 1 others run concurrently; then the first turn finishes.
 */
async function runBridgeScenario(kind: 'bridge' | 'bridge-fixed') {
  const random = createRandom(seed);
  gate = deferred();
  const first = await EventClient.connect(server.url, { 'x-tenant': 'tenant-first' });
  const firstTurn: Turn = { id: 'first', user: 'first-user', kind, delaysMs: [0] };
  const firstReply = first.request<{ delivered: boolean[] }>(firstTurn);
  await first.untilEvents('first', 1);

  const others = Array.from({ length: BRIDGE_USERS - 1 }, (_, u): Turn => ({ id: `other-${u}`, user: `other-${u}`, kind, delaysMs: Array.from({ length: random.int(1, 4) }, () => random.int(0, 8)) }));
  const clients = await Promise.all(others.map((_, u) => EventClient.connect(server.url, { 'x-tenant': `tenant-${u % TENANTS}` })));
  const replies = await Promise.all(others.map((turn, u) => clients[u]!.request<{ delivered: boolean[] }>(turn)));
  gate.resolve();
  const firstOutcome = await firstReply;
  await Promise.all([first, ...clients].map((client) => client.close()));
  return { first, firstOutcome, others, clients, replies, emittedByOthers: others.reduce((sum, turn) => sum + turn.delaysMs.length, 0) };
}

describe('PLANTED: a module-level bridge holding the first request’s stream', () => {
  it('is caught: every other user’s event is refused (never reaches the first socket), counted as event-owner violations', async () => {
    forgetBridge();
    const violationsBefore = await kit.violationCount('event-owner');
    const refusedBefore = await reader.count('refused');
    const { first, firstOutcome, others, clients, replies, emittedByOthers } = await runBridgeScenario('bridge');

    // The first user's socket got exactly its own one event, and nothing of the 49 others.
    expect(first.frames.filter((frame) => 'event' in frame)).toEqual([{ id: 'first', event: expect.objectContaining({ user: 'first-user' }) }]);
    expect(firstOutcome.reply.delivered).toEqual([true]);
    for (const [u, { events, reply }] of replies.entries()) {
      expect(events, others[u]!.id).toEqual([]);
      expect(reply.delivered, others[u]!.id).toEqual(others[u]!.delaysMs.map(() => false));
      expect(clients[u]!.frames.filter((frame) => 'event' in frame)).toEqual([]);
    }
    expect(await kit.violationCount('event-owner')).toBe(violationsBefore + emittedByOthers);
    expect(await reader.count('refused')).toBe(refusedBefore + emittedByOthers);
    expect(() => expectNoCrossRequestLeakage(kit.spans())).toThrow(/event-owner/);
  });

  it('the fix (each request’s own stream) delivers every event to its own socket with no violation', async () => {
    kit.reset();
    const violationsBefore = await kit.violationCount();
    const { first, firstOutcome, others, clients, replies } = await runBridgeScenario('bridge-fixed');

    expect(firstOutcome.reply.delivered).toEqual([true]);
    expect(first.frames.filter((frame) => 'event' in frame)).toHaveLength(1);
    for (const [u, { events, reply }] of replies.entries()) {
      const turn = others[u]!;
      expect(reply.delivered, turn.id).toEqual(turn.delaysMs.map(() => true));
      expect(events.map((frame) => (frame.event as { user: string }).user), turn.id).toEqual(turn.delaysMs.map(() => turn.user));
      expect(clients[u]!.frames.every((frame) => frame.id === turn.id)).toBe(true);
    }
    expect(await kit.violationCount()).toBe(violationsBefore);
    expectNoCrossRequestLeakage(kit.spans());
  });
});
