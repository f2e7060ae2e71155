/**
 * isotraceTools(): AI SDK 7 tools run as audited isotrace tool calls of the
 * request that called generateText() / streamText(), with the model's call
 * ids, in parallel, streaming tools included; with the SDK's own
 * OpenTelemetry integration on, each call keeps a single `execute_tool` span
 * (the SDK's, enriched). Models are MockLanguageModelV4 scripts.
 */
import { describe, expect, it } from 'vitest';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { OpenTelemetry } from '@ai-sdk/otel';
import { generateText, isStepCount, streamText, tool, type ToolExecutionOptions } from 'ai';
import { z } from 'zod';
import { getRequestContext, withRequestContext, type RequestContext } from 'isotrace';
import { isotraceTools, RequestContextMissingError } from 'isotrace/ai-sdk';
import { expectNoCrossRequestLeakage } from 'isotrace/testing';
import { parentIdOf, requestSpanOf, toolSpans } from '../tools/tool-test-helpers.ts';
import { useTestTracing } from '../../helpers/tracing.ts';
import { streamingToolCallingModel, toolCallingModel } from './ai-sdk-test-helpers.ts';

const kit = useTestTracing();
const tracer = trace.getTracer('ai-sdk-test');

/** What a tool saw while it ran. */
interface Seen {
  requestId: string;
  activeSpan: ReadableSpan;
  options: ToolExecutionOptions<unknown>;
}

/**
 * A weather tool set whose calls wait for each other: each resolves only once
 * `expected` calls have started, so it passes only when the calls really run
 * in parallel. Records what each call saw under its call id.
 */
function weatherTools(expected: number) {
  const seen = new Map<string, Seen>();
  let release!: () => void;
  const allStarted = new Promise<void>((resolve) => (release = resolve));
  const tools = isotraceTools({
    weather: tool({
      description: 'Current weather for a city',
      inputSchema: z.object({ city: z.string() }),
      execute: async ({ city }, options) => {
        seen.set(options.toolCallId, { requestId: getRequestContext().requestId, activeSpan: trace.getActiveSpan() as unknown as ReadableSpan, options });
        if (seen.size === expected) release();
        await allStarted;
        await tracer.startActiveSpan('weather.lookup', async (span) => span.end());
        return { city, tempC: city.length };
      },
    }),
  });
  return { tools, seen };
}

/** A streaming tool: yields `n` progress updates, each recording the request and span it was produced in. */
function progressTools() {
  const produced: Array<{ step: number; requestId: string | undefined; spanName: string | undefined }> = [];
  const tools = isotraceTools({
    progress: tool({
      inputSchema: z.object({ n: z.number() }),
      async *execute({ n }) {
        for (let step = 1; step <= n; step++) {
          await new Promise((resolve) => setImmediate(resolve));
          produced.push({ step, requestId: getRequestContext().requestId, spanName: (trace.getActiveSpan() as unknown as ReadableSpan | undefined)?.name });
          yield { step, of: n };
        }
      },
    }),
  });
  return { tools, produced };
}

function spansNamed(name: string): ReadableSpan[] {
  return kit.spans().filter((span) => span.name === name);
}

describe('isotraceTools() with generateText', () => {
  it('runs parallel tool calls as execute_tool spans of the calling request, with the model’s call ids', async () => {
    const { tools, seen } = weatherTools(2);
    let ctx!: RequestContext;
    const result = await withRequestContext({ tenantId: 'acme', userId: 'ada' }, async (c) => {
      ctx = c;
      return generateText({ model: toolCallingModel([['c1', 'weather', { city: 'Oslo' }], ['c2', 'weather', { city: 'Rome' }]]), tools, prompt: 'weather?', stopWhen: isStepCount(3) });
    });

    expect(result.text).toBe('done');
    expect(result.steps[0]!.toolResults.map((r) => [r.toolCallId, r.output])).toEqual([
      ['c1', { city: 'Oslo', tempC: 4 }],
      ['c2', { city: 'Rome', tempC: 4 }],
    ]);
    const spans = toolSpans(kit);
    expect(spans.map((s) => s.attributes['gen_ai.tool.call.id']).sort()).toEqual(['c1', 'c2']);
    const request = requestSpanOf(kit, ctx.requestId);
    for (const span of spans) {
      expect(span.name).toBe('execute_tool weather');
      expect(span.attributes).toMatchObject({ 'gen_ai.tool.name': 'weather', 'gen_ai.tool.description': 'Current weather for a city', 'isotrace.audit.result': 'pass', 'isotrace.tenant_id': 'acme' });
      expect(parentIdOf(span)).toBe(request.spanContext().spanId);
      const callId = span.attributes['gen_ai.tool.call.id'] as string;
      // Inside execute: the calling request, and this call's own span.
      expect(seen.get(callId)!.requestId).toBe(ctx.requestId);
      expect(seen.get(callId)!.activeSpan.spanContext().spanId).toBe(span.spanContext().spanId);
    }
    // One tool system per request: both calls share its registry id, which names the request.
    expect(new Set(spans.map((s) => s.attributes['isotrace.registry_id']))).toEqual(new Set([`user_ada_${ctx.requestId}_1`]));
    // The tool's own spans are children of its call's span.
    const lookups = spansNamed('weather.lookup');
    expect(lookups.map(parentIdOf).sort()).toEqual(spans.map((s) => s.spanContext().spanId).sort());
    expectNoCrossRequestLeakage(kit.spans());
  });

  it('passes the SDK’s execute options through unchanged (call id, messages, abort signal, tool context)', async () => {
    const { tools, seen } = weatherTools(1);
    const controller = new AbortController();
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () =>
      generateText({ model: toolCallingModel([['c1', 'weather', { city: 'Oslo' }]]), tools, prompt: 'weather?', abortSignal: controller.signal, stopWhen: isStepCount(2) }),
    );
    const { options } = seen.get('c1')!;
    expect(options.toolCallId).toBe('c1');
    expect(options.messages).toEqual([{ role: 'user', content: 'weather?' }]);
    // The SDK's own signal, following the caller's abortSignal.
    expect(options.abortSignal).toBeInstanceOf(AbortSignal);
    controller.abort();
    expect(options.abortSignal!.aborted).toBe(true);
    expect(Object.keys(options).sort()).toEqual(['abortSignal', 'context', 'experimental_sandbox', 'messages', 'toolCallId']);
  });

  it('never runs a tool outside a request: the call is a tool-error with RequestContextMissingError', async () => {
    let ran = 0;
    const tools = isotraceTools({
      weather: tool({
        inputSchema: z.object({ city: z.string() }),
        execute: async () => {
          ran++;
          return 'sunny';
        },
      }),
    });
    const result = await generateText({ model: toolCallingModel([['c1', 'weather', { city: 'Oslo' }]]), tools, prompt: 'weather?', stopWhen: isStepCount(2) });
    const errors = result.steps[0]!.content.filter((part) => part.type === 'tool-error');
    expect(errors).toHaveLength(1);
    expect((errors[0] as { error: unknown }).error).toBeInstanceOf(RequestContextMissingError);
    expect(ran).toBe(0);
    expect(toolSpans(kit)).toHaveLength(0);
  });

  it('records a failing tool on its span (error.type, status ERROR) and the SDK reports a tool-error', async () => {
    class QuotaError extends Error {
      override name = 'QuotaError';
    }
    const tools = isotraceTools({
      weather: tool({
        inputSchema: z.object({ city: z.string() }),
        execute: async (): Promise<string> => {
          throw new QuotaError('quota exceeded');
        },
      }),
    });
    const result = await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () =>
      generateText({ model: toolCallingModel([['c1', 'weather', { city: 'Oslo' }]]), tools, prompt: 'weather?', stopWhen: isStepCount(2) }),
    );
    expect(result.steps[0]!.content.filter((part) => part.type === 'tool-error')).toHaveLength(1);
    const [span] = toolSpans(kit);
    expect(span!.status.code).toBe(SpanStatusCode.ERROR);
    expect(span!.attributes['error.type']).toBe('QuotaError');
    expect(span!.events.filter((e) => e.name === 'exception')).toHaveLength(1);
  });
});

describe('isotraceTools() with the AI SDK’s own OpenTelemetry integration (@ai-sdk/otel)', () => {
  it('enriches the SDK’s execute_tool span of each parallel call instead of adding a second one', async () => {
    const { tools, seen } = weatherTools(2);
    let ctx!: RequestContext;
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, async (c) => {
      ctx = c;
      return generateText({
        model: toolCallingModel([['c1', 'weather', { city: 'Oslo' }], ['c2', 'weather', { city: 'Rome' }]]),
        tools,
        prompt: 'weather?',
        stopWhen: isStepCount(3),
        telemetry: { integrations: [new OpenTelemetry()] },
      });
    });

    const spans = spansNamed('execute_tool weather');
    // Exactly one span per call (GenAI conventions), and it is the SDK's: a child of its step span, with its duration.
    expect(spans.map((s) => s.attributes['gen_ai.tool.call.id']).sort()).toEqual(['c1', 'c2']);
    const steps = kit.spans().filter((s) => s.attributes['gen_ai.operation.name'] === 'agent_step');
    expect(steps.length).toBeGreaterThan(0);
    for (const span of spans) {
      expect(steps.map((s) => s.spanContext().spanId)).toContain(parentIdOf(span));
      expect(span.attributes['gen_ai.execute_tool.duration']).toBeTypeOf('number');
      // isotrace's part: registry, audit result, the request's identity.
      expect(span.attributes).toMatchObject({
        'isotrace.registry_id': `user_ada_${ctx.requestId}_1`,
        'isotrace.audit.result': 'pass',
        'isotrace.request_id': ctx.requestId,
        'isotrace.tenant_id': 'acme',
        'user.id': 'ada',
      });
      const callId = span.attributes['gen_ai.tool.call.id'] as string;
      expect(seen.get(callId)!.activeSpan.spanContext().spanId).toBe(span.spanContext().spanId);
      expect(seen.get(callId)!.requestId).toBe(ctx.requestId);
    }
    expect(spansNamed('weather.lookup').map(parentIdOf).sort()).toEqual(spans.map((s) => s.spanContext().spanId).sort());
    expectNoCrossRequestLeakage(kit.spans());
  });

  it('leaves the exception to the SDK: a failing tool shows one exception event, plus error.type', async () => {
    const tools = isotraceTools({
      weather: tool({
        inputSchema: z.object({ city: z.string() }),
        execute: async (): Promise<string> => {
          throw new RangeError('no such city');
        },
      }),
    });
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () =>
      generateText({
        model: toolCallingModel([['c1', 'weather', { city: 'Atlantis' }]]),
        tools,
        prompt: 'weather?',
        stopWhen: isStepCount(2),
        telemetry: { integrations: [new OpenTelemetry()] },
      }),
    );
    const [span, ...others] = spansNamed('execute_tool weather');
    expect(others).toHaveLength(0);
    expect(span!.status.code).toBe(SpanStatusCode.ERROR);
    expect(span!.attributes['error.type']).toBe('RangeError');
    expect(span!.attributes['isotrace.registry_id']).toBeTypeOf('string');
    expect(span!.events.filter((e) => e.name === 'exception')).toHaveLength(1);
  });

  it('records an isolation violation on the SDK’s span (a SharedState handle of another request)', async () => {
    let foreign!: RequestContext['sharedState'];
    await withRequestContext({ tenantId: 'globex', userId: 'grace' }, async (c) => {
      foreign = c.sharedState;
    });
    const tools = isotraceTools({
      notes: tool({ inputSchema: z.object({}), execute: async () => (await foreign.get('notes')) ?? 'none' }),
    });
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () =>
      generateText({ model: toolCallingModel([['c1', 'notes', {}]]), tools, prompt: 'notes?', stopWhen: isStepCount(2), telemetry: { integrations: [new OpenTelemetry()] } }),
    );
    const [span, ...others] = spansNamed('execute_tool notes');
    expect(others).toHaveLength(0);
    expect(span!.attributes['isotrace.audit.result']).toBe('violation');
    expect(span!.events.find((e) => e.name === 'isotrace.isolation_violation')?.attributes?.['isotrace.audit.check']).toBe('shared-state');
    expect(() => expectNoCrossRequestLeakage(kit.spans())).toThrow(/shared-state/);
  });

  it('never turns a violation already on the SDK’s span back into a pass', async () => {
    let foreign!: RequestContext['sharedState'];
    await withRequestContext({ tenantId: 'globex', userId: 'grace' }, async (c) => {
      foreign = c.sharedState;
    });
    const { tools } = weatherTools(1);
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () =>
      // What the SDK's integration does around execute: its execute_tool span, active; here a violation lands on it first.
      tracer.startActiveSpan('execute_tool weather', { attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'weather', 'gen_ai.tool.call.id': 'c1' } }, async (span) => {
        await foreign.get('plan');
        await tools.weather.execute!({ city: 'Oslo' }, { toolCallId: 'c1', messages: [], context: undefined });
        span.end();
      }),
    );
    const [span, ...others] = spansNamed('execute_tool weather');
    expect(others).toHaveLength(0);
    expect(span!.attributes['isotrace.registry_id']).toBeTypeOf('string');
    expect(span!.attributes['isotrace.audit.result']).toBe('violation');
  });
});

describe('isotraceTools() with streamText and a streaming tool', () => {
  for (const telemetry of [false, true]) {
    it(`streams preliminary results, produced in the request and the tool span, over one span covering the consumption${telemetry ? ' (SDK telemetry on)' : ''}`, async () => {
      const { tools, produced } = progressTools();
      let ctx!: RequestContext;
      const parts: Array<{ preliminary: boolean; output: unknown }> = [];
      await withRequestContext({ tenantId: 'acme', userId: 'ada' }, async (c) => {
        ctx = c;
        const result = streamText({
          model: streamingToolCallingModel([['s1', 'progress', { n: 3 }]]),
          tools,
          prompt: 'go',
          stopWhen: isStepCount(2),
          ...(telemetry ? { telemetry: { integrations: [new OpenTelemetry()] } } : {}),
        });
        for await (const part of result.fullStream) {
          if (part.type === 'tool-result') parts.push({ preliminary: part.preliminary === true, output: part.output });
        }
      });

      expect(parts).toEqual([
        { preliminary: true, output: { step: 1, of: 3 } },
        { preliminary: true, output: { step: 2, of: 3 } },
        { preliminary: true, output: { step: 3, of: 3 } },
        { preliminary: false, output: { step: 3, of: 3 } },
      ]);
      const [span, ...others] = spansNamed('execute_tool progress');
      expect(others).toHaveLength(0);
      expect(span!.attributes).toMatchObject({ 'gen_ai.tool.call.id': 's1', 'isotrace.stream.outcome': 'completed', 'isotrace.stream.items': 3, 'isotrace.audit.result': 'pass' });
      expect(span!.attributes['isotrace.registry_id']).toBe(`user_ada_${ctx.requestId}_1`);
      if (telemetry) expect(span!.attributes['gen_ai.execute_tool.duration']).toBeTypeOf('number');
      expect(produced).toEqual([1, 2, 3].map((step) => ({ step, requestId: ctx.requestId, spanName: 'execute_tool progress' })));
      expectNoCrossRequestLeakage(kit.spans());
    });
  }
});

describe('isotraceTools() arguments', () => {
  it('keeps tools without execute, does not wrap a wrapped tool (or a copy of one) again, and wraps a replaced execute', async () => {
    const clientSide = tool({ description: 'asks the user', inputSchema: z.object({ q: z.string() }) });
    const once = isotraceTools({ ask: clientSide, weather: tool({ inputSchema: z.object({}), execute: async () => 'sunny' }) });
    let replacedRan = 0;
    const twice = isotraceTools({
      ...once,
      raw: {
        ...once.weather,
        execute: async () => {
          replacedRan++;
          return 'rain';
        },
      },
    });
    expect(twice.ask).toBe(clientSide);
    expect(twice.weather).toBe(once.weather);
    expect(isotraceTools({ weather: { ...once.weather } }).weather.execute).toBe(once.weather.execute);
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () =>
      generateText({
        model: toolCallingModel([['c1', 'weather', {}], ['c3', 'raw', {}]]),
        tools: twice,
        prompt: 'weather?',
        stopWhen: isStepCount(2),
        telemetry: { integrations: [new OpenTelemetry()] },
      }),
    );
    expect(replacedRan).toBe(1);
    const spans = toolSpans(kit);
    // One span per call (the SDK's), each carrying isotrace's audit.
    expect(spans.map((s) => s.attributes['gen_ai.tool.call.id']).sort()).toEqual(['c1', 'c3']);
    for (const span of spans) expect(span.attributes['isotrace.audit.result']).toBe('pass');
    expect(spans.find((s) => s.attributes['gen_ai.tool.call.id'] === 'c3')!.attributes['gen_ai.tool.name']).toBe('raw');
  });

  it('throws TypeError naming what is wrong', () => {
    expect(() => isotraceTools(null as never)).toThrow(TypeError);
    expect(() => isotraceTools([] as never)).toThrow(/tools must be an AI SDK ToolSet/);
    expect(() => isotraceTools({ weather: 42 } as never)).toThrow(/tools\['weather'\]/);
    expect(() => isotraceTools({}, { recordToolArguments: 'yes' } as never)).toThrow(/options\.recordToolArguments/);
    expect(() => isotraceTools({}, { redact: 'all' } as never)).toThrow(/options\.redact/);
  });

  it('applies recordToolArguments and redact to the spans it writes', async () => {
    const tools = isotraceTools(
      { weather: tool({ inputSchema: z.object({ city: z.string() }), execute: async ({ city }) => ({ city, tempC: 21 }) }) },
      { recordToolArguments: true, redact: (value, { kind }) => (kind === 'arguments' ? { city: '[city]' } : value) },
    );
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () =>
      generateText({ model: toolCallingModel([['c1', 'weather', { city: 'Oslo' }]]), tools, prompt: 'weather?', stopWhen: isStepCount(2) }),
    );
    const [span] = toolSpans(kit);
    expect(span!.attributes['gen_ai.tool.call.arguments']).toBe('{"city":"[city]"}');
    expect(span!.attributes['gen_ai.tool.call.result']).toBe('{"city":"Oslo","tempC":21}');
  });
});
