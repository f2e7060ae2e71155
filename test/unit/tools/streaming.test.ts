/**
 * Streaming tools: a tool whose run() returns an async iterable (an async
 * generator), a web ReadableStream or a node:stream Readable. The caller gets
 * the very same values; the tool span covers the consumption, the tool's own
 * child spans are its children, iteration errors and early stops are
 * recorded, and the end-of-call audits look at where the stream was consumed.
 */
import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { withRequestContext } from 'isotrace';
import { expectNoCrossRequestLeakage } from 'isotrace/testing';
import { createToolSystem, Tool } from 'isotrace/tools';
import { onlySpan, parentIdOf, requestSpanOf, violationEvents } from './tool-test-helpers.ts';
import { createRandom, delay, testSeed } from '../../helpers/random.ts';
import { useTestTracing } from '../../helpers/tracing.ts';

const kit = useTestTracing();
const tracer = trace.getTracer('streaming-test');

interface Chunk {
  n: number;
}

/** Shared chunk objects: the caller must receive these very objects. */
const CHUNKS: readonly Chunk[] = [{ n: 1 }, { n: 2 }, { n: 3 }];

/** Does traced work with a delay before each chunk: `produce <n>` child spans. */
async function produce(n: number, waitMs: number): Promise<void> {
  await delay(waitMs);
  await tracer.startActiveSpan(`produce ${n}`, async (span) => {
    await delay(waitMs);
    span.end();
  });
}

class Chunks extends Tool<{ waitMs?: number; failAfter?: number }, AsyncIterable<Chunk>> {
  static override toolName = 'chunks';
  static cleanedUp = 0;
  async *run({ waitMs = 2, failAfter }: { waitMs?: number; failAfter?: number }): AsyncGenerator<Chunk> {
    try {
      for (const chunk of CHUNKS) {
        if (chunk.n === failAfter! + 1) throw new QuotaError(`quota exceeded after ${failAfter}`);
        await produce(chunk.n, waitMs);
        yield chunk;
      }
    } finally {
      Chunks.cleanedUp++;
    }
  }
}

class QuotaError extends Error {
  override name = 'QuotaError';
}

class WebChunks extends Tool<{ waitMs?: number }, ReadableStream<Chunk>> {
  static override toolName = 'web-chunks';
  static cancelledWith: unknown[] = [];
  run({ waitMs = 2 }: { waitMs?: number }): ReadableStream<Chunk> {
    let next = 0;
    return new ReadableStream<Chunk>(
      {
        async pull(controller) {
          const chunk = CHUNKS[next++];
          if (!chunk) return controller.close();
          await produce(chunk.n, waitMs);
          controller.enqueue(chunk);
        },
        cancel(reason) {
          WebChunks.cancelledWith.push(reason);
        },
      },
      { highWaterMark: 0 },
    );
  }
}

class NodeChunks extends Tool<unknown, Readable> {
  static override toolName = 'node-chunks';
  run(): Readable {
    return Readable.from(
      (async function* () {
        for (const chunk of CHUNKS) {
          await produce(chunk.n, 1);
          yield chunk;
        }
      })(),
    );
  }
}

class ListTool extends Tool<unknown, Chunk[]> {
  static override toolName = 'list';
  static list: Chunk[] = [...CHUNKS];
  run(): Chunk[] {
    return ListTool.list;
  }
}

const tools = [Chunks, WebChunks, NodeChunks, ListTool];

/** The `produce <n>` spans of one trace. */
function producedIn(traceId: string): ReadableSpan[] {
  return kit.spans().filter((span) => span.name.startsWith('produce ') && span.spanContext().traceId === traceId);
}

/** Every child is parented to the tool span. */
function expectParented(toolSpan: ReadableSpan, children: ReadableSpan[], count: number): void {
  expect(children).toHaveLength(count);
  for (const child of children) expect(parentIdOf(child), child.name).toBe(toolSpan.spanContext().spanId);
}

/** Whether a tool span named `name` of the active request's trace has ended (been recorded) yet. */
function toolSpanEnded(name: string): boolean {
  const traceId = trace.getActiveSpan()?.spanContext().traceId;
  return kit.spans().some((span) => span.name === name && span.spanContext().traceId === traceId);
}

/**
 * Consumes `iterable`, noting at each value whether the tool span `name` had already ended. Each
 * `produce <n>` child ends before value n is handed out, so a span still open at the last value
 * covers them all (an order of events, not of clock readings).
 */
async function collect<T>(iterable: AsyncIterable<T>, name?: string): Promise<{ values: T[]; endedWhileConsuming: boolean }> {
  const values: T[] = [];
  let endedWhileConsuming = false;
  for await (const value of iterable) {
    values.push(value);
    if (name !== undefined && toolSpanEnded(name)) endedWhileConsuming = true;
  }
  return { values, endedWhileConsuming };
}

describe('a tool returning an async generator', () => {
  it('yields the same values, and its span covers the consumption with the tool’s child spans under it', async () => {
    const { requestId, traceId, seen, afterConsuming } = await withRequestContext({ tenantId: 'acme', userId: 'u1' }, async (ctx) => {
      const stream = await createToolSystem(tools).dispatcher.execute<AsyncIterable<Chunk>>('chunks', {});
      const { values: seen, endedWhileConsuming } = await collect(stream, 'execute_tool chunks');
      expect(endedWhileConsuming, 'tool span ended before the stream was consumed').toBe(false);
      // The caller's own spans stay the request's: consuming does not move the caller into the tool span.
      const afterConsuming = tracer.startSpan('caller work');
      afterConsuming.end();
      return { requestId: ctx.requestId, traceId: ctx.traceId, seen, afterConsuming };
    });
    expect(seen).toHaveLength(3);
    seen.forEach((value, i) => expect(value).toBe(CHUNKS[i]));
    const toolSpan = onlySpan(kit, 'execute_tool chunks');
    expectParented(toolSpan, producedIn(traceId), 3);
    expect(toolSpan.attributes).toMatchObject({ 'isotrace.stream.outcome': 'completed', 'isotrace.stream.items': 3, 'isotrace.audit.result': 'pass' });
    expect(toolSpan.status.code).toBe(SpanStatusCode.UNSET);
    const callerSpan = kit.spans().find((span) => span.spanContext().spanId === afterConsuming.spanContext().spanId)!;
    expect(parentIdOf(callerSpan)).toBe(requestSpanOf(kit, requestId).spanContext().spanId);
  });

  it('records an iteration error on the tool span and hands the consumer the same error', async () => {
    const outcome = await withRequestContext({ tenantId: 'acme', userId: 'u1' }, async () => {
      const stream = await createToolSystem(tools).dispatcher.execute<AsyncIterable<Chunk>>('chunks', { failAfter: 1 });
      const seen: Chunk[] = [];
      try {
        for await (const value of stream) seen.push(value);
        return { seen, error: undefined };
      } catch (error) {
        return { seen, error };
      }
    });
    expect(outcome.seen).toEqual([CHUNKS[0]]);
    expect(outcome.error).toBeInstanceOf(QuotaError);
    const toolSpan = onlySpan(kit, 'execute_tool chunks');
    expect(toolSpan.status.code).toBe(SpanStatusCode.ERROR);
    expect(toolSpan.attributes).toMatchObject({ 'error.type': 'QuotaError', 'isotrace.stream.outcome': 'failed', 'isotrace.stream.items': 1 });
    const exceptions = toolSpan.events.filter((event) => event.name === 'exception');
    expect(exceptions.map((event) => event.attributes?.['exception.message'])).toEqual(['quota exceeded after 1']);
  });

  it('ends the span as cancelled, without an error, when the consumer stops early (and the generator cleans up)', async () => {
    Chunks.cleanedUp = 0;
    const seen = await withRequestContext({ tenantId: 'acme', userId: 'u1' }, async () => {
      const stream = await createToolSystem(tools).dispatcher.execute<AsyncIterable<Chunk>>('chunks', {});
      for await (const value of stream) return value;
      return undefined;
    });
    expect(seen).toBe(CHUNKS[0]);
    expect(Chunks.cleanedUp).toBe(1);
    const toolSpan = onlySpan(kit, 'execute_tool chunks');
    expect(toolSpan.attributes).toMatchObject({ 'isotrace.stream.outcome': 'cancelled', 'isotrace.stream.items': 1 });
    expect(toolSpan.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('keeps many concurrent streaming requests apart (random delays): each tool span holds only its own request’s children', async () => {
    const random = createRandom(testSeed());
    const plan = Array.from({ length: 30 }, (_, i) => ({ tenantId: `t${i % 5}`, userId: `u${i}`, waitMs: random.int(0, 6) }));
    const traces = await Promise.all(
      plan.map((p) =>
        withRequestContext({ tenantId: p.tenantId, userId: p.userId }, async (ctx) => {
          const stream = await createToolSystem(tools).dispatcher.execute<AsyncIterable<Chunk>>('chunks', { waitMs: p.waitMs });
          const { values, endedWhileConsuming } = await collect(stream, 'execute_tool chunks');
          expect(values, `seed ${random.seed}`).toEqual(CHUNKS);
          expect(endedWhileConsuming, `seed ${random.seed}`).toBe(false);
          return ctx.traceId;
        }),
      ),
    );
    for (const traceId of traces) {
      const toolSpan = kit.spans().find((span) => span.name === 'execute_tool chunks' && span.spanContext().traceId === traceId)!;
      expectParented(toolSpan, producedIn(traceId), 3);
    }
    expectNoCrossRequestLeakage(kit.spans());
  });

  it('records a context-owner violation when another request consumes the stream, while the values are still made in the owner’s trace', async () => {
    const { stream, ownerTraceId } = await withRequestContext({ tenantId: 'acme', userId: 'owner' }, async (ctx) => ({
      stream: await createToolSystem(tools).dispatcher.execute<AsyncIterable<Chunk>>('chunks', { waitMs: 1 }),
      ownerTraceId: ctx.traceId,
    }));
    const { values } = await withRequestContext({ tenantId: 'globex', userId: 'other' }, () => collect(stream));
    expect(values).toEqual(CHUNKS);
    const toolSpan = onlySpan(kit, 'execute_tool chunks');
    expect(toolSpan.attributes['isotrace.audit.result']).toBe('violation');
    expect(violationEvents(toolSpan).map((event) => event.check)).toContain('context-owner');
    expectParented(toolSpan, producedIn(ownerTraceId), 3);
  });
});

describe('a tool returning a web ReadableStream', () => {
  it('comes back as a ReadableStream of the same chunks, its span covering every read', async () => {
    const { traceId, seen, isStream, endedWhileReading } = await withRequestContext({ tenantId: 'acme', userId: 'u1' }, async (ctx) => {
      const stream = await createToolSystem(tools).dispatcher.execute<ReadableStream<Chunk>>('web-chunks', {});
      const reader = stream.getReader();
      const seen: Chunk[] = [];
      let endedWhileReading = false;
      for (let step = await reader.read(); !step.done; step = await reader.read()) {
        seen.push(step.value);
        if (toolSpanEnded('execute_tool web-chunks')) endedWhileReading = true;
      }
      return { traceId: ctx.traceId, seen, isStream: stream instanceof ReadableStream, endedWhileReading };
    });
    expect(isStream).toBe(true);
    expect(endedWhileReading).toBe(false);
    seen.forEach((value, i) => expect(value).toBe(CHUNKS[i]));
    expect(seen).toHaveLength(3);
    const toolSpan = onlySpan(kit, 'execute_tool web-chunks');
    expectParented(toolSpan, producedIn(traceId), 3);
    expect(toolSpan.attributes).toMatchObject({ 'isotrace.stream.outcome': 'completed', 'isotrace.stream.items': 3 });
  });

  it('passes a cancel to the tool’s stream and ends the span as cancelled', async () => {
    WebChunks.cancelledWith = [];
    await withRequestContext({ tenantId: 'acme', userId: 'u1' }, async () => {
      const stream = await createToolSystem(tools).dispatcher.execute<ReadableStream<Chunk>>('web-chunks', {});
      const reader = stream.getReader();
      await reader.read();
      await reader.cancel('client went away');
    });
    expect(WebChunks.cancelledWith).toEqual(['client went away']);
    const toolSpan = onlySpan(kit, 'execute_tool web-chunks');
    expect(toolSpan.attributes).toMatchObject({ 'isotrace.stream.outcome': 'cancelled', 'isotrace.stream.items': 1 });
  });
});

describe('other results', () => {
  it('gives a node:stream Readable back as a Readable of the same values, its span covering the consumption', async () => {
    const { traceId, seen, isReadable } = await withRequestContext({ tenantId: 'acme', userId: 'u1' }, async (ctx) => {
      const stream = await createToolSystem(tools).dispatcher.execute<Readable>('node-chunks');
      return { traceId: ctx.traceId, isReadable: stream instanceof Readable, seen: (await collect<Chunk>(stream)).values };
    });
    expect(isReadable).toBe(true);
    seen.forEach((value, i) => expect(value).toBe(CHUNKS[i]));
    const toolSpan = onlySpan(kit, 'execute_tool node-chunks');
    expectParented(toolSpan, producedIn(traceId), 3);
    expect(toolSpan.attributes).toMatchObject({ 'isotrace.stream.outcome': 'completed', 'isotrace.stream.items': 3 });
  });

  it('returns an array (a sync iterable) as it is, as a plain result', async () => {
    const { result, endedBeforeReturn } = await withRequestContext({ tenantId: 'acme', userId: 'u1' }, async () => {
      const result = await createToolSystem(tools).dispatcher.execute<Chunk[]>('list');
      return { result, endedBeforeReturn: kit.spans().some((span) => span.name === 'execute_tool list') };
    });
    expect(result).toBe(ListTool.list);
    expect(endedBeforeReturn).toBe(true);
    expect(onlySpan(kit, 'execute_tool list').attributes['isotrace.stream.outcome']).toBeUndefined();
  });
});
