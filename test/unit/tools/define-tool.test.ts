/**
 * Function tools: defineTool() makes a module-level, immutable definition that
 * createToolSystem() binds to its own request, beside Tool classes. execute()
 * gets the model's call id, an AbortSignal and the owning request; its calls
 * are the same audited `execute_tool` spans as a Tool class's.
 */
import { describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { getRequestContext, withRequestContext, type RequestContext } from 'isotrace';
import { expectNoCrossRequestLeakage, useTestTracing } from 'isotrace/testing';
import { createToolSystem, defineTool, Tool, ToolDefinitionError, type ToolCall, type ToolDefinitionInit } from 'isotrace/tools';
import { createRandom, delay, testSeed } from '../../helpers/random.ts';
import { onlySpan, parentIdOf, toolSpans, violationEvents } from './tool-test-helpers.ts';

const kit = useTestTracing();
const asUser = { tenantId: 't1', userId: 'u1' };

/** What a tool saw of its call. */
interface Seen {
  callId: string;
  requestId: string;
  activeRequestId: string;
  signal: AbortSignal;
}

/** Module level, like an application's tools: one definition serves every request. */
const whoAmI = defineTool({
  name: 'who-am-i',
  description: 'Reports what it sees of its call',
  async execute({ waitMs }: { waitMs: number }, { callId, signal, context }): Promise<Seen> {
    await delay(waitMs);
    return { callId, requestId: context.requestId, activeRequestId: getRequestContext().requestId, signal };
  },
});

const ordersDb = defineTool({
  name: 'orders-db',
  description: 'Reads orders',
  type: 'datastore',
  execute: ({ id }: { id: number }) => ({ id, total: 42 }),
});

/** Waits on the call's signal as a well-behaved tool does (fetch, timers and child tools take it). */
const slow = defineTool({
  name: 'slow',
  async execute({ started }: { started: () => void }, { signal }) {
    started();
    await sleep(60_000, undefined, { signal });
    return 'finished';
  },
});

class Search extends Tool<{ q: string }, string[]> {
  static override toolName = 'search';
  static override description = 'Searches the catalogue';
  run({ q }: { q: string }): string[] {
    return [`hit for ${q}`];
  }
}

/** A tool with constructor arguments, made per system by a factory. */
class IndexSearch extends Tool<{ q: string }, { index: string; q: string; requestId: string }> {
  static override toolName = 'index-search';
  readonly #index: string;
  constructor(index: string) {
    super();
    this.#index = index;
  }
  run({ q }: { q: string }): { index: string; q: string; requestId: string } {
    return { index: this.#index, q, requestId: this.context.requestId };
  }
}

describe('defineTool: the definition', () => {
  it('is frozen, fills description and type defaults, and holds no request state', async () => {
    const plain = defineTool({ name: 'plain', execute: () => 1 });
    expect(Object.isFrozen(plain)).toBe(true);
    expect({ name: plain.name, description: plain.description, type: plain.type }).toEqual({ name: 'plain', description: '', type: 'function' });
    expect(ordersDb.type).toBe('datastore');
    // Using it in a request leaves it as it was.
    const before = { ...plain };
    await withRequestContext(asUser, () => createToolSystem([plain]).dispatcher.execute('plain'));
    expect({ ...plain }).toEqual(before);
  });

  for (const [what, init, message] of [
    ['a missing name', { execute: () => 1 }, /`name` must be a non-empty string/],
    ['an empty name', { name: '', execute: () => 1 }, /`name` must be a non-empty string/],
    ['a non-string description', { name: 'x', description: 7, execute: () => 1 }, /'x'\.description must be a string/],
    ['an unknown type', { name: 'x', type: 'plugin', execute: () => 1 }, /'x'\.type must be 'function', 'extension' or 'datastore'/],
    ['no execute', { name: 'x' }, /'x'\.execute must be a function/],
    ['no object at all', undefined, /expected an object/],
  ] as const) {
    it(`throws ToolDefinitionError for ${what}, at definition time`, () => {
      expect(() => defineTool(init as unknown as ToolDefinitionInit)).toThrow(ToolDefinitionError);
      expect(() => defineTool(init as unknown as ToolDefinitionInit)).toThrow(message);
    });
  }
});

describe('defineTool in createToolSystem', () => {
  it('mixes with Tool classes and factories: registry, list() and dispatcher treat them alike', async () => {
    await withRequestContext(asUser, async () => {
      const system = createToolSystem([Search, ordersDb, () => new IndexSearch('products'), whoAmI]);
      expect(system.registry.list()).toEqual([
        { name: 'search', description: 'Searches the catalogue', type: 'function' },
        { name: 'orders-db', description: 'Reads orders', type: 'datastore' },
        { name: 'index-search', description: '', type: 'function' },
        { name: 'who-am-i', description: 'Reports what it sees of its call', type: 'function' },
      ]);
      expect(system.registry.get('orders-db')).toBeInstanceOf(Tool);
      expect(system.tools).toEqual([system.registry.get('search'), system.registry.get('orders-db'), system.registry.get('index-search'), system.registry.get('who-am-i')]);
      expect(await system.dispatcher.execute('search', { q: 'lamp' })).toEqual(['hit for lamp']);
      expect(await system.dispatcher.execute('orders-db', { id: 7 })).toEqual({ id: 7, total: 42 });
      expect(await system.dispatcher.execute('index-search', { q: 'lamp' })).toMatchObject({ index: 'products', q: 'lamp' });
    });
    expect(toolSpans(kit).map((span) => span.name).sort()).toEqual(['execute_tool index-search', 'execute_tool orders-db', 'execute_tool search']);
  });

  it('gives each system its own bound instance of one definition', async () => {
    const [first, second] = await withRequestContext(asUser, () => [createToolSystem([ordersDb]), createToolSystem([ordersDb])]);
    const third = await withRequestContext(asUser, () => createToolSystem([ordersDb]));
    expect(new Set([first, second, third].map((system) => system.registry.get('orders-db'))).size).toBe(3);
  });

  it('throws ToolDefinitionError when a definition and a class share a name', async () => {
    const alsoSearch = defineTool({ name: 'search', execute: () => [] });
    await withRequestContext(asUser, () => {
      expect(() => createToolSystem([Search, alsoSearch])).toThrow(ToolDefinitionError);
      expect(() => createToolSystem([alsoSearch, Search])).toThrow(/two tools are named 'search'/);
    });
  });

  it('rejects a look-alike object that did not come from defineTool()', async () => {
    const lookAlike = { name: 'fake', description: '', type: 'function', execute: () => 1 };
    await withRequestContext(asUser, () => {
      expect(() => createToolSystem([lookAlike as never])).toThrow(ToolDefinitionError);
      expect(() => createToolSystem([lookAlike as never])).toThrow(/an object is not a Tool subclass, a defineTool\(\) definition or a factory/);
    });
  });
});

describe('defineTool: the execute_tool span', () => {
  it('has the GenAI, request, registry and audit attributes, with the model’s call id', async () => {
    const { ctx, registryId } = await withRequestContext({ tenantId: 'acme', userId: 'alice', jobId: 'job-9', correlationId: 'corr-1' }, async (ctx) => {
      const system = createToolSystem([ordersDb]);
      await system.dispatcher.execute('orders-db', { id: 1 }, { callId: 'call_from_model' });
      return { ctx, registryId: system.registryId };
    });
    expect(onlySpan(kit, 'execute_tool orders-db').attributes).toMatchObject({
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'orders-db',
      'gen_ai.tool.description': 'Reads orders',
      'gen_ai.tool.type': 'datastore',
      'gen_ai.tool.call.id': 'call_from_model',
      'isotrace.request_id': ctx.requestId,
      'isotrace.correlation_id': 'corr-1',
      'isotrace.tenant_id': 'acme',
      'user.id': 'alice',
      'isotrace.job_id': 'job-9',
      'isotrace.registry_id': registryId,
      'isotrace.audit.result': 'pass',
    });
  });

  it('passes the model’s call id to execute, and a generated one (the span’s) when none is given', async () => {
    const [given, generated] = await withRequestContext(asUser, async () => {
      const { dispatcher } = createToolSystem([whoAmI]);
      return [await dispatcher.execute<Seen>('who-am-i', { waitMs: 0 }, { callId: 'call_abc' }), await dispatcher.execute<Seen>('who-am-i', { waitMs: 0 })];
    });
    expect(given!.callId).toBe('call_abc');
    expect(generated!.callId).toMatch(/^call_./);
    expect(toolSpans(kit).map((span) => span.attributes['gen_ai.tool.call.id']).sort()).toEqual([given!.callId, generated!.callId].sort());
  });

  it('records arguments and result after redact when the system records them', async () => {
    await withRequestContext(asUser, () =>
      createToolSystem([ordersDb], { recordToolArguments: true, redact: (value, info) => (info.kind === 'result' ? { redacted: true } : value) }).dispatcher.execute('orders-db', { id: 3 }),
    );
    expect(onlySpan(kit, 'execute_tool orders-db').attributes).toMatchObject({ 'gen_ai.tool.call.arguments': '{"id":3}', 'gen_ai.tool.call.result': '{"redacted":true}' });
  });

  it('records a thrown error on the span and rejects with the very same error', async () => {
    const failure = new RangeError('no such order');
    const failing = defineTool({
      name: 'failing',
      execute: () => {
        throw failure;
      },
    });
    const caught = await withRequestContext(asUser, () => createToolSystem([failing]).dispatcher.execute('failing').catch((error: unknown) => error));
    expect(caught).toBe(failure);
    const span = onlySpan(kit, 'execute_tool failing');
    expect(span.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'no such order' });
    expect(span.attributes['error.type']).toBe('RangeError');
  });
});

describe('defineTool: the call’s AbortSignal', () => {
  it('aborting the caller’s AbortController mid-execute rejects with an AbortError, and the span records it', async () => {
    const controller = new AbortController();
    const caught = await withRequestContext(asUser, async () => {
      const { dispatcher } = createToolSystem([slow]);
      let started!: () => void;
      const running = new Promise<void>((resolve) => (started = resolve));
      const call = dispatcher.execute('slow', { started }, { signal: controller.signal }).catch((error: unknown) => error);
      await running;
      controller.abort();
      return call;
    });
    expect(caught).toBeInstanceOf(Error);
    expect((caught as Error).name).toBe('AbortError');
    const span = onlySpan(kit, 'execute_tool slow');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['error.type']).toBe('AbortError');
    expect(span.events.some((event) => event.name === 'exception')).toBe(true);
    expect(span.attributes['isotrace.audit.result']).toBe('pass');
  });

  it('an already aborted signal rejects with its reason before the tool runs, and the span records it', async () => {
    let ran = false;
    const tracked = defineTool({
      name: 'tracked',
      execute: () => {
        ran = true;
      },
    });
    const reason = new Error('user went away');
    const caught = await withRequestContext(asUser, () => createToolSystem([tracked]).dispatcher.execute('tracked', {}, { signal: AbortSignal.abort(reason) }).catch((error: unknown) => error));
    expect(caught).toBe(reason);
    expect(ran).toBe(false);
    expect(onlySpan(kit, 'execute_tool tracked').status.code).toBe(SpanStatusCode.ERROR);
  });

  it('without a caller signal, each call gets its own signal that is not aborted', async () => {
    const seen = await withRequestContext(asUser, async () => {
      const { dispatcher } = createToolSystem([whoAmI]);
      return Promise.all([dispatcher.execute<Seen>('who-am-i', { waitMs: 0 }), dispatcher.execute<Seen>('who-am-i', { waitMs: 0 })]);
    });
    for (const { signal } of seen) {
      expect(signal).toBeInstanceOf(AbortSignal);
      expect(signal.aborted).toBe(false);
    }
    expect(seen[0]!.signal).not.toBe(seen[1]!.signal);
  });

  it('rejects a signal that is not an AbortSignal, or a non-string call id, with a TypeError naming the option', async () => {
    await withRequestContext(asUser, async () => {
      const { dispatcher } = createToolSystem([ordersDb]);
      await expect(dispatcher.execute('orders-db', {}, { signal: { aborted: false } as AbortSignal })).rejects.toThrow(/options\.signal must be an AbortSignal/);
      await expect(dispatcher.execute('orders-db', {}, { callId: 42 as unknown as string })).rejects.toThrow(TypeError);
    });
    expect(toolSpans(kit)).toEqual([]);
  });

  it('Tool classes get the same call: run(args, { callId, signal, context })', async () => {
    class CallReader extends Tool<void, { callId: string; signal: AbortSignal; owner: RequestContext }> {
      static override toolName = 'call-reader';
      run(_args: void, { callId, signal, context }: ToolCall): { callId: string; signal: AbortSignal; owner: RequestContext } {
        return { callId, signal, owner: context };
      }
    }
    const controller = new AbortController();
    await withRequestContext(asUser, async (ctx) => {
      const seen = await createToolSystem([CallReader]).dispatcher.execute<{ callId: string; signal: AbortSignal; owner: RequestContext }>('call-reader', undefined, { callId: 'call_1', signal: controller.signal });
      expect(seen).toEqual({ callId: 'call_1', signal: controller.signal, owner: ctx });
    });
  });
});

describe('defineTool: the owning request', () => {
  it('context is the tool system’s request, not the ambient one: a system borrowed by another request is caught', async () => {
    const { system, ownerId } = await withRequestContext({ tenantId: 't-a', userId: 'alice' }, (ctx) => ({ system: createToolSystem([whoAmI]), ownerId: ctx.requestId }));
    const { seen, borrowerId } = await withRequestContext({ tenantId: 't-b', userId: 'bob' }, async (ctx) => ({
      seen: await system.dispatcher.execute<Seen>('who-am-i', { waitMs: 0 }),
      borrowerId: ctx.requestId,
    }));
    expect(seen.requestId).toBe(ownerId);
    expect(seen.activeRequestId).toBe(borrowerId);
    const span = onlySpan(kit, 'execute_tool who-am-i');
    expect(span.attributes['isotrace.audit.result']).toBe('violation');
    expect(violationEvents(span).map((event) => event.check)).toContain('context-owner');
  });

  it('a direct run() of the bound instance (no dispatcher) gets the owner, a generated call id and a live signal', async () => {
    await withRequestContext(asUser, async (ctx) => {
      const tool = createToolSystem([whoAmI]).registry.get('who-am-i')!;
      const seen = (await tool.run({ waitMs: 0 }, undefined as unknown as ToolCall)) as Seen;
      expect(seen.requestId).toBe(ctx.requestId);
      expect(seen.callId).toMatch(/^call_./);
      expect(seen.signal.aborted).toBe(false);
    });
  });

  it('200 concurrent requests with random delays share one module-level definition and never see each other', async () => {
    const seed = testSeed();
    const random = createRandom(seed);
    const plan = Array.from({ length: 200 }, (_, i) => ({ before: random.int(0, 4), inside: random.int(0, 4), callId: `call_${i}` }));

    await Promise.all(
      plan.map(({ before, inside, callId }, i) =>
        withRequestContext({ tenantId: `tenant-${i % 10}`, userId: `user-${i % 30}` }, async (ctx) => {
          const { dispatcher } = createToolSystem([Search, whoAmI, () => new IndexSearch(`index-${i}`)]);
          await delay(before);
          const seen = await dispatcher.execute<Seen>('who-am-i', { waitMs: inside }, { callId });
          const searched = await dispatcher.execute<{ index: string; requestId: string }>('index-search', { q: 'x' });
          expect(seen, `seed ${seed}`).toMatchObject({ callId, requestId: ctx.requestId, activeRequestId: ctx.requestId });
          expect(searched, `seed ${seed}`).toMatchObject({ index: `index-${i}`, requestId: ctx.requestId });
        }),
      ),
    );

    const report = expectNoCrossRequestLeakage(kit.spans());
    expect(report.toolSpans, `seed ${seed}`).toBe(400);
    const whoAmISpans = toolSpans(kit).filter((span) => span.name === 'execute_tool who-am-i');
    expect(new Set(whoAmISpans.map((span) => span.attributes['gen_ai.tool.call.id'])).size).toBe(200);
  });
});

describe('defineTool: streaming', () => {
  const tracer = trace.getTracer('define-tool-test');

  /** An async generator tool: every chunk is produced inside the tool span. */
  const countdown = defineTool({
    name: 'countdown',
    async *execute({ from }: { from: number }, { context }) {
      for (let n = from; n > 0; n--) {
        await tracer.startActiveSpan(`produce ${n}`, async (span) => {
          await delay(1);
          span.end();
        });
        yield { n, tenantId: context.tenantId };
      }
    },
  });

  it('yields the values, its span covers the consumption, child spans are under it, and the outcome is recorded', async () => {
    const values = await withRequestContext({ tenantId: 'acme', userId: 'u1' }, async () => {
      const stream = await createToolSystem([countdown]).dispatcher.execute<AsyncIterable<{ n: number; tenantId: string }>>('countdown', { from: 3 }, { callId: 'call_stream' });
      const seen: Array<{ n: number; tenantId: string }> = [];
      for await (const value of stream) seen.push(value);
      return seen;
    });
    expect(values).toEqual([3, 2, 1].map((n) => ({ n, tenantId: 'acme' })));
    const span = onlySpan(kit, 'execute_tool countdown');
    expect(span.attributes).toMatchObject({ 'gen_ai.tool.call.id': 'call_stream', 'isotrace.stream.outcome': 'completed', 'isotrace.stream.items': 3, 'isotrace.audit.result': 'pass' });
    const children = kit.spans().filter((child) => child.name.startsWith('produce '));
    expect(children).toHaveLength(3);
    for (const child of children) expect(parentIdOf(child)).toBe(span.spanContext().spanId);
  });

  it('a consumer that stops early ends the span as cancelled', async () => {
    await withRequestContext(asUser, async () => {
      const stream = await createToolSystem([countdown]).dispatcher.execute<AsyncIterable<{ n: number }>>('countdown', { from: 5 });
      for await (const value of stream) if (value.n === 4) break;
    });
    expect(onlySpan(kit, 'execute_tool countdown').attributes).toMatchObject({ 'isotrace.stream.outcome': 'cancelled', 'isotrace.stream.items': 2 });
  });
});
