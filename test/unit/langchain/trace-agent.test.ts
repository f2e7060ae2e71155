/**
 * traceAgent(): each agent run is an `invoke_agent {name}` span (GenAI
 * conventions, INTERNAL) of the current request, parent of the run's tool
 * spans; `gen_ai.conversation.id` only when the app gives a thread id. A run
 * outside any request is refused before the agent runs.
 */
import { describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { fakeModel } from '@langchain/core/testing';
import { tool } from '@langchain/core/tools';
import { createAgent } from 'langchain';
import { z } from 'zod';
import { withRequestContext } from 'isotrace';
import { isotraceTools, RequestContextMissingError, traceAgent } from 'isotrace/langchain';
import { expectNoCrossRequestLeakage } from 'isotrace/testing';
import { useTestTracing } from '../../helpers/tracing.ts';
import { parentIdOf, requestSpanOf, scriptedAgent, spansOf, USER_TURN } from './langchain-test-helpers.ts';

const kit = useTestTracing();

let calls = 0;
const tools = isotraceTools([
  tool(
    async ({ city }: { city: string }) => {
      calls++;
      return `sunny in ${city}`;
    },
    { name: 'get_weather', description: 'Weather', schema: z.object({ city: z.string() }) },
  ),
]);
const TWO_CALLS = [
  { name: 'get_weather', args: { city: 'Oslo' }, id: 'c1' },
  { name: 'get_weather', args: { city: 'Lima' }, id: 'c2' },
];

describe('traceAgent', () => {
  it('wraps a run in an invoke_agent span of the request, parent of its tool spans', async () => {
    const agent = traceAgent(scriptedAgent(tools, TWO_CALLS, 'a', 'forecaster'));
    const requestId = await withRequestContext({ tenantId: 'acme', userId: 'ada' }, async (ctx) => {
      const result = await agent.invoke(USER_TURN);
      expect(result.messages.at(-1)?.content).toBe('done a');
      return ctx.requestId;
    });
    const spans = kit.spans();
    const [agentSpan, ...more] = spansOf(spans, 'invoke_agent');
    expect(more).toEqual([]);
    expect(agentSpan?.name).toBe('invoke_agent forecaster');
    expect(agentSpan?.kind).toBe(SpanKind.INTERNAL);
    expect(agentSpan?.attributes).toMatchObject({
      'gen_ai.operation.name': 'invoke_agent',
      'gen_ai.agent.name': 'forecaster',
      'gen_ai.provider.name': 'fake-model-builder',
      'isotrace.request_id': requestId,
    });
    expect(agentSpan?.attributes['gen_ai.conversation.id']).toBeUndefined();
    expect(parentIdOf(agentSpan!)).toBe(requestSpanOf(spans, requestId)?.spanContext().spanId);
    const toolSpans = spansOf(spans, 'execute_tool');
    expect(toolSpans.map(parentIdOf)).toEqual([agentSpan?.spanContext().spanId, agentSpan?.spanContext().spanId]);
    expect(toolSpans.map((span) => span.attributes['gen_ai.agent.name'])).toEqual(['forecaster', 'forecaster']);
    expectNoCrossRequestLeakage(spans);
  });

  it("takes gen_ai.conversation.id from the run's LangGraph thread id, and the name and provider from options", async () => {
    const agent = traceAgent(scriptedAgent(tools, TWO_CALLS, 'b'), { name: 'planner', providerName: 'openai' });
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () => agent.invoke(USER_TURN, { configurable: { thread_id: 'conv-42' } }));
    const [agentSpan] = spansOf(kit.spans(), 'invoke_agent');
    expect(agentSpan?.name).toBe('invoke_agent planner');
    expect(agentSpan?.attributes).toMatchObject({ 'gen_ai.agent.name': 'planner', 'gen_ai.provider.name': 'openai', 'gen_ai.conversation.id': 'conv-42' });
  });

  it('names an unnamed agent `invoke_agent` without an agent name, and reads the provider from a model string', () => {
    const unnamed = traceAgent({ options: { model: 'anthropic:claude-sonnet' }, invoke: async () => 'ok' });
    return withRequestContext({ tenantId: 'acme', userId: 'ada' }, () => unnamed.invoke()).then(() => {
      const [agentSpan] = spansOf(kit.spans(), 'invoke_agent');
      expect(agentSpan?.name).toBe('invoke_agent');
      expect(agentSpan?.attributes['gen_ai.agent.name']).toBeUndefined();
      expect(agentSpan?.attributes['gen_ai.provider.name']).toBe('anthropic');
    });
  });

  it('refuses a run outside any request before the agent runs', async () => {
    calls = 0;
    const agent = traceAgent(scriptedAgent(tools, TWO_CALLS, 'c'));
    await expect(agent.invoke(USER_TURN)).rejects.toBeInstanceOf(RequestContextMissingError);
    await expect(agent.stream(USER_TURN)).rejects.toBeInstanceOf(RequestContextMissingError);
    expect(calls).toBe(0);
    expect(kit.spans()).toEqual([]);
  });

  it('records a failed run on its span and rethrows the error', async () => {
    const model = fakeModel().alwaysThrow(new TypeError('model down'));
    const agent = traceAgent(createAgent({ model, tools: [...tools], name: 'broken' }));
    await expect(withRequestContext({ tenantId: 'acme', userId: 'ada' }, () => agent.invoke(USER_TURN))).rejects.toThrow('model down');
    const [agentSpan] = spansOf(kit.spans(), 'invoke_agent');
    expect(agentSpan?.status.code).toBe(SpanStatusCode.ERROR);
    expect(agentSpan?.attributes['error.type']).toBe('TypeError');
  });

  it('keeps the span open over a streamed run until the stream is consumed', async () => {
    const agent = traceAgent(scriptedAgent(tools, TWO_CALLS, 'd', 'streamer'));
    const chunks = await withRequestContext({ tenantId: 'acme', userId: 'ada' }, async () => {
      const stream = await agent.stream(USER_TURN, { streamMode: 'updates' });
      expect(spansOf(kit.spans(), 'invoke_agent')).toEqual([]);
      const seen: unknown[] = [];
      for await (const chunk of stream) seen.push(chunk);
      return seen;
    });
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    const [agentSpan] = spansOf(kit.spans(), 'invoke_agent');
    expect(agentSpan?.attributes['isotrace.stream.outcome']).toBe('completed');
    expect(spansOf(kit.spans(), 'execute_tool').map(parentIdOf)).toEqual([agentSpan?.spanContext().spanId, agentSpan?.spanContext().spanId]);
  });

  it("leaves the agent's other members working", async () => {
    const inner = scriptedAgent(tools, TWO_CALLS, 'e', 'forecaster');
    const agent = traceAgent(inner);
    expect(agent.options).toBe(inner.options);
    expect(typeof (await agent.drawMermaid?.())).toBe('string');
  });

  it('throws TypeError for an agent without invoke() or a bad option', () => {
    expect(() => traceAgent({} as never)).toThrow(/invoke/);
    expect(() => traceAgent({ invoke: async () => 1 }, { name: '' })).toThrow(/options\.name/);
    expect(() => traceAgent({ invoke: async () => 1 }, { providerName: 42 as never })).toThrow(/options\.providerName/);
  });
});
