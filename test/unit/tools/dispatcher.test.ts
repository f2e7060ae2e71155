import { describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { withRequestContext } from 'isotrace';
import { createToolSystem, Tool, type ToolDispatcher, type ToolType } from 'isotrace/tools';
import { Echo, onlySpan, parentIdOf, requestSpanOf, toolSpans } from './tool-test-helpers.ts';
import { useTestTracing } from 'isotrace/testing';

const kit = useTestTracing();

class Extension extends Tool {
  static override toolName = 'browser';
  static override description = 'Browses the web';
  static override type: ToolType = 'extension';
  run(): string {
    return 'ok';
  }
}

class Datastore extends Tool {
  static override toolName = 'orders-db';
  static override description = 'Reads orders';
  static override type: ToolType = 'datastore';
  run(): string {
    return 'ok';
  }
}

class QuotaError extends Error {
  override name = 'QuotaError';
}

class ThrowsSync extends Tool {
  static override toolName = 'throws-sync';
  static error = new QuotaError('quota exceeded (sync)');
  run(): never {
    throw ThrowsSync.error;
  }
}

class Rejects extends Tool {
  static override toolName = 'rejects';
  static error = new QuotaError('quota exceeded (async)');
  async run(): Promise<never> {
    await Promise.resolve();
    throw Rejects.error;
  }
}

describe('dispatcher.execute: the execute_tool span', () => {
  it('names the span execute_tool <name>, kind INTERNAL, with the GenAI, request and audit attributes', async () => {
    const { ctx, registryId, result } = await withRequestContext(
      { tenantId: 'acme', userId: 'alice', jobId: 'job-9', correlationId: 'corr-1' },
      async (ctx) => {
        const system = createToolSystem([Echo]);
        const result = await system.dispatcher.execute('echo', { q: 'lamp' }, { callId: 'call-from-model' });
        return { ctx, registryId: system.registryId, result };
      },
    );
    expect(result).toEqual({ q: 'lamp' });
    const span = onlySpan(kit, 'execute_tool echo');
    expect(span.kind).toBe(SpanKind.INTERNAL);
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(span.attributes).toMatchObject({
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'echo',
      'gen_ai.tool.call.id': 'call-from-model',
      'gen_ai.tool.type': 'function',
      'gen_ai.tool.description': 'Returns its arguments',
      'isotrace.request_id': ctx.requestId,
      'isotrace.correlation_id': 'corr-1',
      'isotrace.tenant_id': 'acme',
      'user.id': 'alice',
      'isotrace.job_id': 'job-9',
      'isotrace.registry_id': registryId,
      'isotrace.audit.result': 'pass',
    });
    expect(span.events.filter((event) => event.name === 'isotrace.isolation_violation')).toEqual([]);
  });

  it('has no isotrace.job_id when the request has no job', async () => {
    await withRequestContext({ tenantId: 'acme', userId: 'alice' }, () => createToolSystem([Echo]).dispatcher.execute('echo'));
    expect(onlySpan(kit, 'execute_tool echo').attributes).not.toHaveProperty(['isotrace.job_id']);
  });

  it('generates a distinct call id when none is given', async () => {
    await withRequestContext({ tenantId: 'acme', userId: 'alice' }, async () => {
      const { dispatcher } = createToolSystem([Echo]);
      for (let i = 0; i < 20; i++) await dispatcher.execute('echo', i);
    });
    const ids = toolSpans(kit).map((span) => span.attributes['gen_ai.tool.call.id']);
    expect(ids).toHaveLength(20);
    for (const id of ids) expect(typeof id === 'string' && id.length > 0).toBe(true);
    expect(new Set(ids).size).toBe(20);
  });

  it('sets gen_ai.tool.type from the class: extension and datastore', async () => {
    await withRequestContext({ tenantId: 'acme', userId: 'alice' }, async () => {
      const { dispatcher } = createToolSystem([Extension, Datastore]);
      await dispatcher.execute('browser');
      await dispatcher.execute('orders-db');
    });
    expect(onlySpan(kit, 'execute_tool browser').attributes).toMatchObject({ 'gen_ai.tool.type': 'extension', 'gen_ai.tool.description': 'Browses the web' });
    expect(onlySpan(kit, 'execute_tool orders-db').attributes).toMatchObject({ 'gen_ai.tool.type': 'datastore', 'gen_ai.tool.description': 'Reads orders' });
  });

  it('is a child of the active span: the request span, or a span the caller made active', async () => {
    const requestId = await withRequestContext({ tenantId: 'acme', userId: 'alice' }, async (ctx) => {
      const { dispatcher } = createToolSystem([Echo, Extension]);
      await dispatcher.execute('echo');
      await trace.getTracer('test').startActiveSpan('plan', async (plan) => {
        await dispatcher.execute('browser');
        plan.end();
      });
      return ctx.requestId;
    });
    const request = requestSpanOf(kit, requestId);
    const plan = onlySpan(kit, 'plan');
    expect(parentIdOf(onlySpan(kit, 'execute_tool echo'))).toBe(request.spanContext().spanId);
    expect(parentIdOf(onlySpan(kit, 'execute_tool browser'))).toBe(plan.spanContext().spanId);
    expect(onlySpan(kit, 'execute_tool browser').spanContext().traceId).toBe(request.spanContext().traceId);
  });

  it('makes the tool span active while the tool runs', async () => {
    class ActiveSpanReader extends Tool<void, string | undefined> {
      static override toolName = 'active-span';
      async run(): Promise<string | undefined> {
        await Promise.resolve();
        return trace.getActiveSpan()?.spanContext().spanId;
      }
    }
    const seen = await withRequestContext({ tenantId: 'acme', userId: 'alice' }, () => createToolSystem([ActiveSpanReader]).dispatcher.execute('active-span'));
    expect(seen).toBe(onlySpan(kit, 'execute_tool active-span').spanContext().spanId);
  });
});

describe('dispatcher.execute: failing tools', () => {
  for (const [how, ToolClass, name] of [
    ['a thrown error', ThrowsSync, 'throws-sync'],
    ['a rejected promise', Rejects, 'rejects'],
  ] as const) {
    it(`${how}: span status ERROR, error.type and the exception event; the caller gets the very same error`, async () => {
      const caught = await withRequestContext({ tenantId: 'acme', userId: 'alice' }, async () => {
        const { dispatcher } = createToolSystem([ToolClass]);
        return dispatcher.execute(name).then(
          () => undefined,
          (error: unknown) => error,
        );
      });
      expect(caught).toBe(ToolClass.error);

      const span = onlySpan(kit, `execute_tool ${name}`);
      expect(span.status).toMatchObject({ code: SpanStatusCode.ERROR, message: ToolClass.error.message });
      expect(span.attributes['error.type']).toBe('QuotaError');
      const exception = span.events.find((event) => event.name === 'exception');
      expect(exception?.attributes).toMatchObject({ 'exception.type': 'QuotaError', 'exception.message': ToolClass.error.message });
      // A failing tool is not an isolation problem.
      expect(span.attributes['isotrace.audit.result']).toBe('pass');
    });
  }

  it('passes a thrown non-Error value through unchanged and still marks the span', async () => {
    class ThrowsString extends Tool {
      static override toolName = 'throws-string';
      run(): never {
        throw 'plain string failure';
      }
    }
    const caught = await withRequestContext({ tenantId: 'acme', userId: 'alice' }, () =>
      createToolSystem([ThrowsString]).dispatcher.execute('throws-string').catch((error: unknown) => error),
    );
    expect(caught).toBe('plain string failure');
    const span = onlySpan(kit, 'execute_tool throws-string');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['error.type']).toBe('Error');
  });

  it('one failing tool does not fail or mark its sibling', async () => {
    const outcomes = await withRequestContext({ tenantId: 'acme', userId: 'alice' }, () => {
      const { dispatcher } = createToolSystem([Rejects, Echo]);
      return Promise.allSettled([dispatcher.execute('rejects'), dispatcher.execute('echo', 'fine')]);
    });
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'fulfilled']);
    expect(onlySpan(kit, 'execute_tool echo').status.code).toBe(SpanStatusCode.UNSET);
  });
});

describe('dispatcher.execute: nested and parallel tools', () => {
  /** Runs the tools named in args through the dispatcher it is given, one after the other. */
  class Sequencer extends Tool<{ dispatcher: ToolDispatcher; names: string[] }, unknown[]> {
    static override toolName = 'sequencer';
    async run({ dispatcher, names }: { dispatcher: ToolDispatcher; names: string[] }): Promise<unknown[]> {
      const results: unknown[] = [];
      for (const name of names) results.push(await dispatcher.execute(name, name));
      return results;
    }
  }

  /** Makes its own tool system inside run and fans out in parallel. */
  class FanOut extends Tool<{ count: number }, unknown[]> {
    static override toolName = 'fan-out';
    run({ count }: { count: number }): Promise<unknown[]> {
      const { dispatcher } = createToolSystem([Echo]);
      return Promise.all(Array.from({ length: count }, (_, i) => dispatcher.execute('echo', i)));
    }
  }

  it('a tool that executes another tool through a dispatcher it was given makes nested spans', async () => {
    const result = await withRequestContext({ tenantId: 'acme', userId: 'alice' }, () => {
      const { dispatcher } = createToolSystem([Sequencer, Echo, Extension]);
      return dispatcher.execute('sequencer', { dispatcher, names: ['echo', 'browser'] });
    });
    expect(result).toEqual(['echo', 'ok']);
    const outer = onlySpan(kit, 'execute_tool sequencer');
    expect(parentIdOf(onlySpan(kit, 'execute_tool echo'))).toBe(outer.spanContext().spanId);
    expect(parentIdOf(onlySpan(kit, 'execute_tool browser'))).toBe(outer.spanContext().spanId);
  });

  it('a tool that creates a tool system inside run makes nested spans, with that system’s registry id', async () => {
    const { registryId, requestId } = await withRequestContext({ tenantId: 'acme', userId: 'alice' }, async (ctx) => {
      const { dispatcher, registryId } = createToolSystem([FanOut]);
      await dispatcher.execute('fan-out', { count: 1 });
      return { registryId, requestId: ctx.requestId };
    });
    const outer = onlySpan(kit, 'execute_tool fan-out');
    const inner = onlySpan(kit, 'execute_tool echo');
    expect(parentIdOf(inner)).toBe(outer.spanContext().spanId);
    expect(outer.attributes['isotrace.registry_id']).toBe(registryId);
    expect(inner.attributes['isotrace.registry_id']).toBe(`user_alice_${requestId}_2`);
    expect(inner.attributes['isotrace.audit.result']).toBe('pass');
  });

  it('parallel executes inside a tool are siblings under the tool span, none chained', async () => {
    const result = await withRequestContext({ tenantId: 'acme', userId: 'alice' }, () => createToolSystem([FanOut]).dispatcher.execute('fan-out', { count: 6 }));
    expect(result).toEqual([0, 1, 2, 3, 4, 5]);
    const outerId = onlySpan(kit, 'execute_tool fan-out').spanContext().spanId;
    const children = kit.spans().filter((span) => span.name === 'execute_tool echo');
    expect(children).toHaveLength(6);
    for (const child of children) expect(parentIdOf(child)).toBe(outerId);
  });

  it('parallel executes in a request are siblings under the request span', async () => {
    const requestId = await withRequestContext({ tenantId: 'acme', userId: 'alice' }, async (ctx) => {
      const { dispatcher } = createToolSystem([Echo, Extension, Datastore]);
      await Promise.all([dispatcher.execute('echo'), dispatcher.execute('browser'), dispatcher.execute('orders-db'), dispatcher.execute('echo')]);
      return ctx.requestId;
    });
    const requestSpanId = requestSpanOf(kit, requestId).spanContext().spanId;
    const spans = toolSpans(kit);
    expect(spans).toHaveLength(4);
    for (const span of spans) expect(parentIdOf(span)).toBe(requestSpanId);
  });
});
