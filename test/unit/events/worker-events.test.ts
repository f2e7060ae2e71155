// Progress events emitted in worker threads travel back through the pool to the submitting request's
// own connection (a real `ws` server on 127.0.0.1), all of them before the task's result; a stream a
// worker thread keeps across tasks is refused by the event-owner check and delivers nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingMessage } from 'node:http';
import { withRequestContext, type RequestContext } from 'isotrace';
import type { Identity } from 'isotrace/http';
import { useTestTracing } from 'isotrace/testing';
import { createWorkerPool, type WorkerPool } from 'isotrace/workers';
import { handleWebSocketMessages } from 'isotrace/ws';
import { createRandom, testSeed } from '../../helpers/random.js';
import { startWsServer, type TestWsServer } from '../ws/ws-test-helpers.js';
import { EventClient } from './events-test-helpers.js';

const WORKER = new URL('../../fixtures/events/progress-worker.ts', import.meta.url);
const USERS = 24;

const kit = useTestTracing();

interface Message {
  id: string;
  user: string;
  task: 'default' | 'plantedBridge';
  delaysMs?: number[];
}

interface WorkerResult {
  user: string;
  requestId: string;
  delivered: boolean[];
}

function identify(_request: IncomingMessage | undefined, message: unknown): Identity | undefined {
  const { user } = message as Partial<Message>;
  return typeof user === 'string' ? { tenantId: `tenant-of-${user}`, userId: user } : undefined;
}

let pool: WorkerPool;
let bridgePool: WorkerPool;
let server: TestWsServer;

beforeAll(async () => {
  pool = createWorkerPool({ filename: WORKER, minThreads: 2, maxThreads: 2, concurrentTasksPerWorker: 4 });
  // One thread: its module-level bridge is kept by the first task and used by every later one.
  bridgePool = createWorkerPool({ filename: WORKER, minThreads: 1, maxThreads: 1 });
  server = await startWsServer((ws, request) =>
    handleWebSocketMessages(ws, { request, identify }, async (raw: unknown, ctx: RequestContext) => {
      const message = raw as Message;
      if (message.task === 'plantedBridge') return { id: message.id, ...(await bridgePool.run<object>({ note: message.id }, { name: 'plantedBridge' })) };
      const result = await pool.run<WorkerResult>({ delaysMs: message.delaysMs ?? [] });
      return { id: message.id, ownRequest: result.requestId === ctx.requestId, ...result };
    }),
  );
});

afterAll(async () => {
  await server?.close();
  await Promise.all([pool?.destroy(), bridgePool?.destroy()]);
});

describe('progress events from worker threads', () => {
  it(`${USERS} concurrent users: each socket gets all of its own worker task's events before the result, nobody else's`, async () => {
    const random = createRandom(testSeed());
    const plans = Array.from({ length: USERS }, (_, u) => ({ user: `user-${u}`, delaysMs: Array.from({ length: random.int(1, 4) }, () => random.int(0, 6)) }));
    const clients = await Promise.all(plans.map(() => EventClient.connect(server.url)));
    const outcomes = await Promise.all(plans.map((plan, u) => clients[u]!.request<WorkerResult & { ownRequest: boolean }>({ id: `m${u}`, user: plan.user, task: 'default', delaysMs: plan.delaysMs })));
    await Promise.all(clients.map((client) => client.close()));

    for (const [u, { events, reply }] of outcomes.entries()) {
      const plan = plans[u]!;
      const context = `${plan.user} (seed ${random.seed})`;
      expect(reply.ownRequest, context).toBe(true);
      expect(reply.delivered, context).toEqual(plan.delaysMs.map(() => true));
      expect(events, context).toEqual(plan.delaysMs.map((_, step) => ({ id: `m${u}`, event: { step, user: plan.user, requestId: reply.requestId, thread: 'worker' } })));
      // Every frame this socket got belongs to its one message.
      expect(clients[u]!.frames.every((frame) => frame.id === `m${u}`), context).toBe(true);
    }
    expect(await kit.violationCount('event-owner')).toBe(0);
  });

  it('a worker task of a request without a connection emits nothing (false), without a violation', async () => {
    const result = await withRequestContext({ tenantId: 't', userId: 'u' }, () => pool.run<WorkerResult>({ delaysMs: [0, 0] }));
    expect(result.delivered).toEqual([false, false]);
    expect(await kit.violationCount('event-owner')).toBe(0);
  });

  it('PLANTED: a stream a worker thread keeps from its first task is refused for every later task, and delivers nothing to anyone', async () => {
    const before = await kit.violationCount('event-owner');
    const alice = await EventClient.connect(server.url);
    const bob = await EventClient.connect(server.url);
    const first = await alice.request<{ delivered: boolean }>({ id: 'a1', user: 'alice', task: 'plantedBridge' });
    const second = await bob.request<{ delivered: boolean }>({ id: 'b1', user: 'bob', task: 'plantedBridge' });
    const third = await alice.request<{ delivered: boolean }>({ id: 'a2', user: 'alice', task: 'plantedBridge' });
    await Promise.all([alice.close(), bob.close()]);

    expect(first.reply.delivered).toBe(true);
    expect(first.events).toEqual([{ id: 'a1', event: { note: 'a1', user: 'alice' } }]);
    // Bob's event went to nobody: not to alice's (finished) request, not to bob.
    expect(second.reply.delivered).toBe(false);
    expect(second.events).toEqual([]);
    expect(third.reply.delivered).toBe(false);
    expect(alice.frames.filter((frame) => 'event' in frame)).toHaveLength(1);
    expect(bob.frames.filter((frame) => 'event' in frame)).toHaveLength(0);
    // Recorded in the worker, on its task span, and counted where the spans are exported.
    expect(await kit.violationCount('event-owner')).toBe(before + 2);
    const refused = kit.spans().filter((span) => span.name === 'worker.task plantedBridge' && span.events.some((e) => e.attributes?.['isotrace.audit.check'] === 'event-owner'));
    expect(refused).toHaveLength(2);
  });
});
