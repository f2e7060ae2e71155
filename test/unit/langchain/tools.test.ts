/**
 * isotraceTools(): a LangChain tool's every call is an audited isotrace tool
 * call of the request that made it: an `execute_tool {name}` span with the
 * model's call id, the agent's name and the run-time audits, whether an agent
 * calls it or code invokes it directly. Outside a request it never runs.
 */
import { describe, expect, it } from 'vitest';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { tool } from '@langchain/core/tools';
import { ToolMessage } from '@langchain/core/messages';
import { z } from 'zod';
import { getRequestContext, tryGetRequestContext, withRequestContext } from 'isotrace';
import { isotraceTools, RequestContextMissingError } from 'isotrace/langchain';
import { ToolDefinitionError } from 'isotrace/tools';
import { expectNoCrossRequestLeakage } from 'isotrace/testing';
import { useTestTracing } from '../../helpers/tracing.ts';
import { parentIdOf, requestSpanOf, scriptedAgent, spansOf, USER_TURN } from './langchain-test-helpers.ts';

const kit = useTestTracing();
const tracer = trace.getTracer('langchain-tools-test');

/** What the weather tool saw on each call: the request it ran in and the span active inside it. */
const seen: Array<{ city: string; requestId: string | undefined; spanId: string | undefined }> = [];

const weather = tool(
  async ({ city }: { city: string }) => {
    seen.push({ city, requestId: tryGetRequestContext()?.requestId, spanId: trace.getActiveSpan()?.spanContext().spanId });
    await tracer.startActiveSpan('weather.lookup', async (span) => span.end());
    return `sunny in ${city}`;
  },
  { name: 'get_weather', description: 'Current weather for a city', schema: z.object({ city: z.string() }) },
);

const failing = tool(
  async () => {
    throw new RangeError('no such city');
  },
  { name: 'get_forecast', description: 'Forecast', schema: z.object({ city: z.string() }) },
);

const [auditedWeather, auditedFailing] = isotraceTools([weather, failing]);

describe('isotraceTools', () => {
  it("runs an agent's parallel tool calls as execute_tool spans of the calling request, with the model's call ids", async () => {
    seen.length = 0;
    const agent = scriptedAgent(
      [auditedWeather],
      [
        { name: 'get_weather', args: { city: 'Oslo' }, id: 'call_oslo' },
        { name: 'get_weather', args: { city: 'Lima' }, id: 'call_lima' },
      ],
      'r1',
      'forecaster',
    );
    const { requestId, result } = await withRequestContext({ tenantId: 'acme', userId: 'ada' }, async (ctx) => ({ requestId: ctx.requestId, result: await agent.invoke(USER_TURN) }));

    const toolMessages = result.messages.filter((message) => ToolMessage.isInstance(message));
    expect(toolMessages.map((message) => [message.tool_call_id, message.content])).toEqual([
      ['call_oslo', 'sunny in Oslo'],
      ['call_lima', 'sunny in Lima'],
    ]);
    const spans = kit.spans();
    const tools = spansOf(spans, 'execute_tool');
    expect(tools.map((span) => span.attributes['gen_ai.tool.call.id']).sort()).toEqual(['call_lima', 'call_oslo']);
    for (const span of tools) {
      expect(span.name).toBe('execute_tool get_weather');
      expect(span.attributes).toMatchObject({
        'gen_ai.tool.name': 'get_weather',
        'gen_ai.tool.type': 'function',
        'gen_ai.tool.description': 'Current weather for a city',
        'gen_ai.agent.name': 'forecaster',
        'isotrace.request_id': requestId,
        'isotrace.tenant_id': 'acme',
        'isotrace.audit.result': 'pass',
      });
      expect(span.status.code).not.toBe(SpanStatusCode.ERROR);
    }
    // The tool ran inside its own span, and its child spans hang under it.
    expect(seen.map(({ requestId: seenIn }) => seenIn)).toEqual([requestId, requestId]);
    expect(new Set(seen.map(({ spanId }) => spanId))).toEqual(new Set(tools.map((span) => span.spanContext().spanId)));
    const lookups = spans.filter((span) => span.name === 'weather.lookup');
    expect(new Set(lookups.map(parentIdOf))).toEqual(new Set(tools.map((span) => span.spanContext().spanId)));
    expect(requestSpanOf(spans, requestId)).toBeDefined();
    expectNoCrossRequestLeakage(spans);
  });

  it('audits a direct invoke() with a ToolCall and returns the ToolMessage LangChain would', async () => {
    const message = await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () =>
      auditedWeather.invoke({ type: 'tool_call', name: 'get_weather', args: { city: 'Rome' }, id: 'call_rome' }),
    );
    expect(ToolMessage.isInstance(message)).toBe(true);
    expect(message).toMatchObject({ tool_call_id: 'call_rome', content: 'sunny in Rome' });
    const [span] = spansOf(kit.spans(), 'execute_tool');
    expect(span?.attributes['gen_ai.tool.call.id']).toBe('call_rome');
    expect(span?.attributes['gen_ai.agent.name']).toBeUndefined();
  });

  it('gives a call without a model call id a generated one', async () => {
    const text = await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () => auditedWeather.invoke({ city: 'Pune' }));
    expect(text).toBe('sunny in Pune');
    const [span] = spansOf(kit.spans(), 'execute_tool');
    expect(span?.attributes['gen_ai.tool.call.id']).toMatch(/^call_[0-9a-f-]{36}$/);
  });

  it('rejects a call outside any request with RequestContextMissingError, and the tool never runs', async () => {
    seen.length = 0;
    const call = auditedWeather.invoke({ type: 'tool_call', name: 'get_weather', args: { city: 'Nowhere' }, id: 'call_x' });
    await expect(call).rejects.toBeInstanceOf(RequestContextMissingError);
    await expect(call).rejects.toThrow(/the LangChain tool 'get_weather'/);
    expect(seen).toEqual([]);
    expect(spansOf(kit.spans(), 'execute_tool')).toEqual([]);
  });

  it("records a failing tool's error on its span and rethrows it unchanged", async () => {
    const call = withRequestContext({ tenantId: 'acme', userId: 'ada' }, () => auditedFailing.invoke({ city: 'Atlantis' }));
    await expect(call).rejects.toThrow(RangeError);
    const [span] = spansOf(kit.spans(), 'execute_tool');
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes['error.type']).toBe('RangeError');
  });

  it('traces a streaming tool over its whole consumption and keeps its return value', async () => {
    const countdown = tool(
      async function* ({ from }: { from: number }) {
        for (let n = from; n > 0; n--) {
          await tracer.startActiveSpan(`tick ${n}`, async (span) => span.end());
          yield n;
        }
        return `lift-off after ${from}`;
      },
      { name: 'countdown', description: 'Counts down', schema: z.object({ from: z.number() }) },
    );
    const [audited] = isotraceTools([countdown]);
    const result = await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () => audited.invoke({ from: 3 }));
    expect(result).toBe('lift-off after 3');
    const spans = kit.spans();
    const [span] = spansOf(spans, 'execute_tool');
    expect(span?.attributes).toMatchObject({ 'isotrace.stream.outcome': 'completed', 'isotrace.stream.items': 3 });
    const ticks = spans.filter((tick) => tick.name.startsWith('tick '));
    expect(ticks.map(parentIdOf)).toEqual([span?.spanContext().spanId, span?.spanContext().spanId, span?.spanContext().spanId]);
  });

  it('leaves the original tools untouched and does not nest a second span when wrapped twice', async () => {
    const [twice] = isotraceTools([auditedWeather]);
    expect(twice).toBe(auditedWeather);
    expect(auditedWeather).not.toBe(weather);
    expect(auditedWeather.name).toBe('get_weather');
    expect(auditedWeather.schema).toBe(weather.schema);
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, async () => {
      await weather.invoke({ city: 'Bern' });
      await twice.invoke({ city: 'Bern' });
    });
    expect(spansOf(kit.spans(), 'execute_tool')).toHaveLength(1);
  });

  it('sees the calling request inside the tool through getRequestContext()', async () => {
    const whoAmI = tool(async () => getRequestContext().tenantId, { name: 'who_am_i', description: 'Tenant', schema: z.object({}) });
    const [audited] = isotraceTools([whoAmI]);
    const tenants = await Promise.all(['acme', 'globex', 'initech'].map((tenantId) => withRequestContext({ tenantId, userId: 'u' }, () => audited.invoke({}))));
    expect(tenants).toEqual(['acme', 'globex', 'initech']);
  });

  it("gives each request one tool system for all its calls, and no request another's", async () => {
    await Promise.all(
      ['acme', 'globex'].map((tenantId) =>
        withRequestContext({ tenantId, userId: 'u' }, async () => {
          await auditedWeather.invoke({ city: 'Oslo' });
          await auditedWeather.invoke({ city: 'Lima' });
        }),
      ),
    );
    const registriesOf = (tenantId: string) =>
      new Set(spansOf(kit.spans(), 'execute_tool').filter((span) => span.attributes['isotrace.tenant_id'] === tenantId).map((span) => span.attributes['isotrace.registry_id']));
    const [acme, globex] = [registriesOf('acme'), registriesOf('globex')];
    expect(acme.size).toBe(1);
    expect(globex.size).toBe(1);
    expect(acme).not.toEqual(globex);
  });

  it('records arguments and results when the options say so, after redact', async () => {
    const [recorded] = isotraceTools([weather], { recordToolArguments: true, redact: (value, { kind }) => (kind === 'arguments' ? { city: '[city]' } : value) });
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () => recorded.invoke({ city: 'Oslo' }));
    const [span] = spansOf(kit.spans(), 'execute_tool');
    expect(span?.attributes).toMatchObject({ 'gen_ai.tool.call.arguments': '{"city":"[city]"}', 'gen_ai.tool.call.result': 'sunny in Oslo' });
  });

  it('throws TypeError for a bad option and ToolDefinitionError for two tools of one name', () => {
    expect(() => isotraceTools([weather], { recordToolArguments: 'yes' as never })).toThrow(/options\.recordToolArguments/);
    expect(() => isotraceTools([weather], { redact: {} as never })).toThrow(/options\.redact/);
    expect(() => isotraceTools([weather, weather])).toThrow(ToolDefinitionError);
  });

  it('throws TypeError for anything that is not a LangChain StructuredTool', () => {
    expect(() => isotraceTools([{ name: 'web_search', type: 'builtin' }] as never)).toThrow(TypeError);
    expect(() => isotraceTools([weather, (() => 1) as never])).toThrow(/tools\[1\] is not a LangChain StructuredTool/);
    expect(() => isotraceTools(weather as never)).toThrow(/must be an array/);
  });
});
