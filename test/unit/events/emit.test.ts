// emitProgress(), getEventStream(), a tool's `emit` and `call.emit`: events belong to the request that
// emits them. Without a connection they are dropped and counted `undelivered`; a stream or tool of
// one request used inside another is refused with an `event-owner` violation (fail closed).
import { describe, expect, it } from 'vitest';
import { SpanStatusCode } from '@opentelemetry/api';
import { emitProgress, getEventStream, RequestContextMissingError, withRequestContext, type EventStream } from 'isotrace';
import { useTestTracing } from 'isotrace/testing';
import { createToolSystem, defineTool, Tool, type ToolSystem } from 'isotrace/tools';
import { EventCountReader } from './events-test-helpers.js';

const reader = new EventCountReader();
const kit = useTestTracing({ metricReaders: [reader] });

const alice = { tenantId: 'acme', userId: 'alice' };
const bob = { tenantId: 'globex', userId: 'bob' };

class Reporter extends Tool<{ step: number }, boolean> {
  static override toolName = 'reporter';
  run({ step }: { step: number }): boolean {
    return this.emit({ type: 'step', step });
  }
}

const reporter = defineTool({
  name: 'call-reporter',
  execute: ({ step }: { step: number }, call) => call.emit({ type: 'step', step }),
});

function violationEvents(spanName: string): Record<string, unknown>[] {
  return kit
    .spans()
    .filter((span) => span.name === spanName)
    .flatMap((span) => span.events.filter((event) => event.name === 'isotrace.isolation_violation').map((event) => ({ ...event.attributes })));
}

describe('emitProgress() and getEventStream()', () => {
  it('throw RequestContextMissingError outside a request', () => {
    expect(() => emitProgress({ type: 'x' })).toThrow(RequestContextMissingError);
    expect(() => emitProgress({ type: 'x' })).toThrow(/emitProgress\(\)/);
    expect(() => getEventStream()).toThrow(RequestContextMissingError);
  });

  it('in a request without a connection: not delivered, counted undelivered, no violation', async () => {
    const before = { undelivered: await reader.count('undelivered'), violations: await kit.violationCount('event-owner') };
    const outcome = await withRequestContext(alice, () => {
      const stream = getEventStream();
      return { emitted: emitProgress({ type: 'hello' }), streamed: stream.emit({ type: 'again' }), connected: stream.connected, requestId: stream.requestId };
    });
    expect(outcome.emitted).toBe(false);
    expect(outcome.streamed).toBe(false);
    expect(outcome.connected).toBe(false);
    expect(outcome.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await reader.count('undelivered')).toBe(before.undelivered + 2);
    expect(await kit.violationCount('event-owner')).toBe(before.violations);
  });

  it.each([
    ['null', null],
    ['a string', 'progress'],
    ['a number', 42],
    ['an array', [1, 2]],
  ])('throws a TypeError for %s as the event', async (_label, event) => {
    await withRequestContext(alice, () => {
      expect(() => emitProgress(event as never)).toThrow(TypeError);
      expect(() => emitProgress(event as never)).toThrow(/JSON object/);
    });
  });

  it('throws a TypeError for an event that is not JSON-serializable', async () => {
    const circular: Record<string, unknown> = { type: 'loop' };
    circular.self = circular;
    await withRequestContext(alice, () => {
      expect(() => emitProgress(circular)).toThrow(TypeError);
      expect(() => emitProgress({ big: 1n })).toThrow(/not JSON-serializable/);
    });
  });
});

describe('the event-owner check', () => {
  it('a stream kept from request A and used in request B is refused: violation on B’s span, counted refused', async () => {
    const before = { refused: await reader.count('refused'), violations: await kit.violationCount('event-owner') };
    let kept: EventStream | undefined;
    const ownerId = await withRequestContext(alice, () => {
      kept = getEventStream();
      return kept.requestId;
    });
    const delivered = await withRequestContext({ ...bob, name: 'bob.turn' }, () => kept!.emit({ type: 'from-bob' }));

    expect(delivered).toBe(false);
    expect(await kit.violationCount('event-owner')).toBe(before.violations + 1);
    expect(await reader.count('refused')).toBe(before.refused + 1);
    const [violation] = violationEvents('bob.turn');
    expect(violation?.['isotrace.audit.check']).toBe('event-owner');
    expect(String(violation?.['isotrace.audit.expected'])).toContain(`request ${ownerId} (tenant acme, user alice)`);
    expect(String(violation?.['isotrace.audit.actual'])).toContain('(tenant globex, user bob)');
    expect(kit.spans().find((span) => span.name === 'bob.turn')?.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('a stream used outside every request is refused too (it cannot be shown to be its owner’s)', async () => {
    const before = await kit.violationCount('event-owner');
    const kept = await withRequestContext(alice, () => getEventStream());
    expect(kept.emit({ type: 'later' })).toBe(false);
    expect(await kit.violationCount('event-owner')).toBe(before + 1);
  });

  it('the owner itself passes, and a nested request does not count as the owner', async () => {
    const before = await kit.violationCount('event-owner');
    const outcome = await withRequestContext(alice, async () => {
      const stream = getEventStream();
      const own = stream.emit({ type: 'own' });
      const nested = await withRequestContext({ ...alice, name: 'nested' }, () => stream.emit({ type: 'nested' }));
      return { own, nested };
    });
    expect(outcome).toEqual({ own: false, nested: false });
    expect(await kit.violationCount('event-owner')).toBe(before + 1);
    expect(violationEvents('nested')).toHaveLength(1);
  });

  it('Tool#emit and call.emit of a tool system borrowed by another request are refused', async () => {
    const before = await kit.violationCount('event-owner');
    let borrowed: ToolSystem | undefined;
    const own = await withRequestContext(alice, async () => {
      borrowed = createToolSystem([Reporter, reporter]);
      return [await borrowed.dispatcher.execute('reporter', { step: 1 }), await borrowed.dispatcher.execute('call-reporter', { step: 1 })];
    });
    expect(own).toEqual([false, false]); // no connection, but no violation either
    expect(await kit.violationCount('event-owner')).toBe(before);

    const stolen = await withRequestContext(bob, async () => [
      await borrowed!.dispatcher.execute('reporter', { step: 2 }),
      await borrowed!.dispatcher.execute('call-reporter', { step: 2 }),
    ]);
    expect(stolen).toEqual([false, false]);
    expect(await kit.violationCount('event-owner')).toBe(before + 2);
    for (const name of ['execute_tool reporter', 'execute_tool call-reporter']) {
      expect(violationEvents(name).map((event) => event['isotrace.audit.check'])).toContain('event-owner');
    }
  });

  it('Tool#emit on an instance no tool system owns throws RequestContextMissingError', async () => {
    await withRequestContext(alice, () => {
      expect(() => new Reporter().run({ step: 1 })).toThrow(RequestContextMissingError);
    });
  });
});
