/**
 * isotraceTools(): OpenAI Agents SDK function tools run as audited isotrace
 * tool calls of the request that made the run, with the model's call id, and
 * never outside a request. The SDK's own behaviour (input parsing, errors
 * handed to the model, approvals) is unchanged.
 */
import { describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { Agent, computerTool, hostedMcpTool, run, tool, ToolCallError, type Computer } from '@openai/agents-core';
import { assistantMessage, functionCall, ScriptedModel } from '@openai/agents-core/testing';
import { z } from 'zod';
import { getRequestContext, withRequestContext } from 'isotrace';
import { isotraceTools, RequestContextMissingError } from 'isotrace/openai-agents';
import { expectNoCrossRequestLeakage } from 'isotrace/testing';
import { ToolDefinitionError } from 'isotrace/tools';
import { useTestTracing } from '../../helpers/tracing.ts';
import { requestSpanOf, spansOf } from './agents-test-helpers.ts';

const kit = useTestTracing();

const TOOL_SHAPE = { name: 'get_weather', description: 'Current weather for a city', parameters: z.object({ city: z.string() }) };
const seen: Array<{ city: string; tenant: string; callId: string | undefined }> = [];
const getWeather = tool({
  name: 'get_weather',
  description: 'Current weather for a city',
  parameters: z.object({ city: z.string() }),
  async execute({ city }, _runContext, details) {
    seen.push({ city, tenant: getRequestContext().tenantId, callId: details?.toolCall?.callId });
    if (city === 'Atlantis') throw new Error('no such city');
    return `sunny in ${city} for ${getRequestContext().tenantId}`;
  },
});
const tools = isotraceTools([getWeather]);

/** An agent whose model calls get_weather for `cities` in parallel (call ids c0, c1, …), then answers `done`. */
function weatherAgent(cities: readonly string[], agentTools: Agent['tools'] = tools) {
  const model = new ScriptedModel([cities.map((city, n) => functionCall('get_weather', { city }, { callId: `c${n}` })), [assistantMessage('done')]]);
  return { agent: new Agent({ name: 'forecaster', model, tools: agentTools }), model };
}

describe('isotraceTools', () => {
  it('runs each call as an audited execute_tool span of the request, with the model’s call id', async () => {
    seen.length = 0;
    const { agent, model } = weatherAgent(['Oslo', 'Lima']);
    const requestId = await withRequestContext({ tenantId: 'acme', userId: 'ada' }, async (ctx) => {
      const result = await run(agent, 'weather please');
      expect(result.finalOutput).toBe('done');
      return ctx.requestId;
    });
    expect(seen).toEqual([
      { city: 'Oslo', tenant: 'acme', callId: 'c0' },
      { city: 'Lima', tenant: 'acme', callId: 'c1' },
    ]);
    // The tool results reached the model unchanged.
    const outputs = model.calls[1]?.request.input as Array<{ type?: string; output?: { text?: string } }>;
    expect(outputs.filter((item) => item.type === 'function_call_result').map((item) => item.output?.text)).toEqual(['sunny in Oslo for acme', 'sunny in Lima for acme']);

    const spans = kit.spans();
    const toolSpans = spansOf(spans, 'execute_tool');
    expect(toolSpans.map((span) => span.attributes['gen_ai.tool.call.id']).sort()).toEqual(['c0', 'c1']);
    for (const span of toolSpans) {
      expect(span.name).toBe('execute_tool get_weather');
      expect(span.kind).toBe(SpanKind.INTERNAL);
      expect(span.attributes).toMatchObject({
        'gen_ai.tool.name': 'get_weather',
        'gen_ai.tool.description': 'Current weather for a city',
        'gen_ai.tool.type': 'function',
        'isotrace.request_id': requestId,
        'isotrace.tenant_id': 'acme',
        'isotrace.audit.result': 'pass',
      });
      // A plain run() has no agent span: the call is a child of the request span.
      expect(span.parentSpanContext?.spanId).toBe(requestSpanOf(spans, requestId)?.spanContext().spanId);
    }
    expectNoCrossRequestLeakage(spans);
  });

  it('refuses a run outside any request: the run fails with RequestContextMissingError and the tool never runs', async () => {
    seen.length = 0;
    const { agent } = weatherAgent(['Oslo']);
    const failure = await run(agent, 'weather please').then(
      () => undefined,
      (error: unknown) => error,
    );
    // Not handed to the model as a tool result: the SDK fails the run with the error as its cause.
    expect(failure).toBeInstanceOf(ToolCallError);
    expect((failure as ToolCallError).error).toBeInstanceOf(RequestContextMissingError);
    expect(seen).toEqual([]);
    expect(spansOf(kit.spans(), 'execute_tool')).toEqual([]);
  });

  it('leaves the SDK’s error handling alone: a failing tool’s error goes to the model as its result', async () => {
    const { agent, model } = weatherAgent(['Atlantis']);
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () => run(agent, 'weather please'));
    const outputs = model.calls[1]?.request.input as Array<{ type?: string; output?: { text?: string } }>;
    expect(outputs.find((item) => item.type === 'function_call_result')?.output?.text).toMatch(/error/i);
    const [toolSpan, ...more] = spansOf(kit.spans(), 'execute_tool');
    expect(more).toEqual([]);
    expect(toolSpan?.attributes['gen_ai.tool.call.id']).toBe('c0');
  });

  it('fails the call, and marks its span, when the tool hands errors back (errorFunction: null)', async () => {
    const strict = tool({ ...TOOL_SHAPE, errorFunction: null, execute: async () => Promise.reject(new RangeError('no such city')) });
    const { agent } = weatherAgent(['Atlantis'], isotraceTools([strict]));
    const failure = await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () => run(agent, 'weather please')).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect((failure as ToolCallError).error).toBeInstanceOf(RangeError);
    const [toolSpan] = spansOf(kit.spans(), 'execute_tool');
    expect(toolSpan?.status.code).toBe(SpanStatusCode.ERROR);
    expect(toolSpan?.attributes['error.type']).toBe('RangeError');
  });

  it('records the parsed arguments and the result when asked, after redact', async () => {
    const recorded = isotraceTools([getWeather], { recordToolArguments: true, redact: (value, { kind }) => (kind === 'result' ? '[hidden]' : value) });
    const { agent } = weatherAgent(['Oslo'], recorded);
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () => run(agent, 'weather please'));
    const [toolSpan] = spansOf(kit.spans(), 'execute_tool');
    expect(toolSpan?.attributes['gen_ai.tool.call.arguments']).toBe('{"city":"Oslo"}');
    expect(toolSpan?.attributes['gen_ai.tool.call.result']).toBe('[hidden]');
  });

  it('keeps approvals working: an interrupted call runs, audited, in the request that approves it', async () => {
    const paid: string[] = [];
    const pay = tool({
      name: 'pay',
      description: 'Pays an invoice',
      parameters: z.object({ invoice: z.string() }),
      needsApproval: true,
      async execute({ invoice }) {
        paid.push(`${invoice}:${getRequestContext().userId}`);
        return 'paid';
      },
    });
    const model = new ScriptedModel([[functionCall('pay', { invoice: 'inv-7' }, { callId: 'p1' })], [assistantMessage('paid it')]]);
    const agent = new Agent({ name: 'cashier', model, tools: isotraceTools([pay]) });
    const first = await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () => run(agent, 'pay inv-7'));
    expect(first.interruptions).toHaveLength(1);
    expect(paid).toEqual([]);
    first.state.approve(first.interruptions[0]!);
    const second = await withRequestContext({ tenantId: 'acme', userId: 'bob' }, () => run(agent, first.state));
    expect(second.finalOutput).toBe('paid it');
    expect(paid).toEqual(['inv-7:bob']);
    const [toolSpan] = spansOf(kit.spans(), 'execute_tool');
    expect(toolSpan?.attributes).toMatchObject({ 'gen_ai.tool.call.id': 'p1', 'user.id': 'bob' });
  });

  it('returns copies: the originals are unchanged, wrapping twice runs each call once, hosted tools pass through', async () => {
    const originalInvoke = getWeather.invoke;
    const hosted = hostedMcpTool({ serverLabel: 'docs', serverUrl: 'https://mcp.example.com' });
    const [wrapped, sameHosted] = isotraceTools([getWeather, hosted]);
    expect(wrapped).not.toBe(getWeather);
    expect(getWeather.invoke).toBe(originalInvoke);
    expect(sameHosted).toBe(hosted);
    expect(wrapped).toMatchObject({ type: 'function', name: 'get_weather', description: 'Current weather for a city', parameters: getWeather.parameters });

    const twice = isotraceTools(isotraceTools([getWeather]));
    const { agent } = weatherAgent(['Oslo'], twice);
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () => run(agent, 'weather please'));
    expect(spansOf(kit.spans(), 'execute_tool')).toHaveLength(1);
  });

  it('rejects what it cannot audit: non-tools, local non-function tools, duplicate names, bad options', () => {
    expect(() => isotraceTools('get_weather' as never)).toThrow(TypeError);
    expect(() => isotraceTools([{ name: 'x' }] as never)).toThrow(/tools\[0\] is not an OpenAI Agents SDK tool/);
    const computer = computerTool({ computer: {} as Computer });
    expect(() => isotraceTools([getWeather, computer])).toThrow(/tools\[1\] is a 'computer' tool; only function tools/);
    expect(() => isotraceTools([getWeather, getWeather])).toThrow(ToolDefinitionError);
    expect(() => isotraceTools([getWeather], { recordToolArguments: 'yes' as never })).toThrow(/options\.recordToolArguments/);
    expect(() => isotraceTools([getWeather], { redact: 1 as never })).toThrow(/options\.redact/);
  });
});
