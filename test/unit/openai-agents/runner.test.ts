/**
 * isotraceRunner(): each agent of a run is an `invoke_agent {name}` span of
 * the request (GenAI conventions, INTERNAL), a handoff is a span between two
 * agents, tool spans are children of their agent's span and name it, the
 * conversation id comes from the app only, and a run outside a request is
 * refused before the agent runs. The SDK's own tracing stays off (vitest runs
 * with NODE_ENV=test): isotrace does not need it.
 */
import { describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { Agent, Runner, tool } from '@openai/agents-core';
import { assistantMessage, functionCall, modelError, ScriptedModel } from '@openai/agents-core/testing';
import { z } from 'zod';
import { getRequestContext, withRequestContext } from 'isotrace';
import { isotraceRunner, isotraceTools, RequestContextMissingError } from 'isotrace/openai-agents';
import { expectNoCrossRequestLeakage } from 'isotrace/testing';
import { idOf, parentIdOf, requestSpanOf, spansOf } from './agents-test-helpers.ts';
import { useTestTracing } from '../../helpers/tracing.ts';

const kit = useTestTracing();

const getWeather = tool({
  name: 'get_weather',
  description: 'Current weather for a city',
  parameters: z.object({ city: z.string() }),
  execute: async ({ city }) => `sunny in ${city} for ${getRequestContext().tenantId}`,
});
const getForecast = tool({
  name: 'get_forecast',
  description: 'Tomorrow’s forecast',
  parameters: z.object({ city: z.string() }),
  execute: async ({ city }) => `rain in ${city} tomorrow`,
});
const runner = isotraceRunner();

/** Triage calls get_weather twice in parallel, then hands off to Specialist, which calls get_forecast and answers. */
function triageAndSpecialist() {
  const specialist = new Agent({
    name: 'Specialist',
    handoffDescription: 'Knows forecasts',
    model: new ScriptedModel([[functionCall('get_forecast', { city: 'Oslo' }, { callId: 'f1' })], [assistantMessage('rain tomorrow')]]),
    tools: isotraceTools([getForecast]),
  });
  const triage = new Agent({
    name: 'Triage',
    model: new ScriptedModel([
      [functionCall('get_weather', { city: 'Oslo' }, { callId: 'w1' }), functionCall('get_weather', { city: 'Lima' }, { callId: 'w2' })],
      [functionCall('transfer_to_Specialist', {}, { callId: 'h1' })],
    ]),
    tools: isotraceTools([getWeather]),
    handoffs: [specialist],
  });
  return triage;
}

describe('isotraceRunner', () => {
  it('traces a run as one invoke_agent span per agent, the handoff between them, and tool spans under their agent', async () => {
    const requestId = await withRequestContext({ tenantId: 'acme', userId: 'ada' }, async (ctx) => {
      const result = await runner.run(triageAndSpecialist(), 'weather please');
      expect(result.finalOutput).toBe('rain tomorrow');
      return ctx.requestId;
    });
    const spans = kit.spans();
    const agents = spansOf(spans, 'invoke_agent');
    expect(agents.map((span) => span.name)).toEqual(['invoke_agent Triage', 'invoke_agent Specialist']);
    const [triage, specialist] = agents;
    for (const span of agents) {
      expect(span.kind).toBe(SpanKind.INTERNAL);
      expect(parentIdOf(span)).toBe(idOf(requestSpanOf(spans, requestId)));
      expect(span.attributes).toMatchObject({ 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.provider.name': 'openai', 'isotrace.request_id': requestId });
      expect(span.attributes['gen_ai.conversation.id']).toBeUndefined();
    }
    expect(triage?.attributes['gen_ai.agent.name']).toBe('Triage');
    expect(specialist?.attributes).toMatchObject({ 'gen_ai.agent.name': 'Specialist', 'gen_ai.agent.description': 'Knows forecasts' });

    const handoff = spans.find((span) => span.name === 'handoff Specialist');
    expect(handoff?.kind).toBe(SpanKind.INTERNAL);
    expect(parentIdOf(handoff)).toBe(idOf(triage));
    expect(handoff?.attributes).toMatchObject({ 'isotrace.handoff.from_agent': 'Triage', 'isotrace.handoff.to_agent': 'Specialist', 'isotrace.request_id': requestId });
    // The next agent links back to the handoff that started it.
    expect(specialist?.links.map((link) => link.context.spanId)).toEqual([idOf(handoff)]);

    const tools = spansOf(spans, 'execute_tool');
    const weather = tools.filter((span) => span.attributes['gen_ai.tool.name'] === 'get_weather');
    expect(weather.map((span) => span.attributes['gen_ai.tool.call.id']).sort()).toEqual(['w1', 'w2']);
    expect(weather.map(parentIdOf)).toEqual([idOf(triage), idOf(triage)]);
    expect(weather.map((span) => span.attributes['gen_ai.agent.name'])).toEqual(['Triage', 'Triage']);
    const forecast = tools.find((span) => span.attributes['gen_ai.tool.name'] === 'get_forecast');
    expect(parentIdOf(forecast)).toBe(idOf(specialist));
    expect(forecast?.attributes).toMatchObject({ 'gen_ai.agent.name': 'Specialist', 'gen_ai.tool.call.id': 'f1' });
    expectNoCrossRequestLeakage(spans);
  });

  it('takes gen_ai.conversation.id from the run’s conversationId, else the request’s, and never makes one up', async () => {
    const answer = () => new Agent({ name: 'Echo', model: new ScriptedModel([[assistantMessage('hi')]]) });
    await withRequestContext({ tenantId: 'acme', userId: 'ada', conversationId: 'chat-9' }, async () => {
      await runner.run(answer(), 'hello');
      await runner.run(answer(), 'hello', { conversationId: 'conv-run-1' });
    });
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () => runner.run(answer(), 'hello'));
    const conversations = spansOf(kit.spans(), 'invoke_agent').map((span) => span.attributes['gen_ai.conversation.id']);
    expect(conversations).toEqual(['chat-9', 'conv-run-1', undefined]);
  });

  it('records a failed run on its agent span and rejects as the SDK does', async () => {
    const agent = new Agent({ name: 'Broken', model: new ScriptedModel([modelError(new Error('model down'))]) });
    await expect(withRequestContext({ tenantId: 'acme', userId: 'ada' }, () => runner.run(agent, 'hello'))).rejects.toThrow('model down');
    const [span, ...more] = spansOf(kit.spans(), 'invoke_agent');
    expect(more).toEqual([]);
    expect(span?.name).toBe('invoke_agent Broken');
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes['error.type']).toBe('Error');
  });

  it('keeps a streamed run’s agent span open until the stream is consumed', async () => {
    const model = new ScriptedModel([[functionCall('get_weather', { city: 'Oslo' }, { callId: 's1' })], [assistantMessage('sunny')]]);
    const agent = new Agent({ name: 'Streamer', model, tools: isotraceTools([getWeather]) });
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, async () => {
      const stream = await runner.run(agent, 'weather', { stream: true });
      const events: string[] = [];
      for await (const event of stream) events.push(event.type);
      await stream.completed;
      expect(stream.finalOutput).toBe('sunny');
      expect(events.length).toBeGreaterThan(0);
    });
    const [agentSpan] = spansOf(kit.spans(), 'invoke_agent');
    const [toolSpan] = spansOf(kit.spans(), 'execute_tool');
    expect(agentSpan?.name).toBe('invoke_agent Streamer');
    expect(parentIdOf(toolSpan)).toBe(idOf(agentSpan));
    expect(toolSpan?.attributes['gen_ai.agent.name']).toBe('Streamer');
  });

  it('refuses a run outside any request before the agent runs', async () => {
    const model = new ScriptedModel([[assistantMessage('hi')]]);
    await expect(runner.run(new Agent({ name: 'Echo', model }), 'hello')).rejects.toBeInstanceOf(RequestContextMissingError);
    expect(model.calls).toEqual([]);
    expect(kit.spans()).toEqual([]);
  });

  it('marks a local tool that isotraceTools() did not wrap on its agent span: it ran unaudited', async () => {
    const model = new ScriptedModel([[functionCall('get_weather', { city: 'Oslo' }, { callId: 'u1' })], [assistantMessage('ok')]]);
    const agent = new Agent({ name: 'Careless', model, tools: [getWeather] });
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () => runner.run(agent, 'weather'));
    const [agentSpan] = spansOf(kit.spans(), 'invoke_agent');
    expect(agentSpan?.events.map((event) => [event.name, event.attributes?.['gen_ai.tool.name']])).toEqual([['isotrace.unaudited_tool', 'get_weather']]);
    expect(spansOf(kit.spans(), 'execute_tool')).toEqual([]);
  });

  it('gives a run resumed after an approval its own agent span', async () => {
    const pay = tool({ name: 'pay', description: 'Pays', parameters: z.object({ n: z.number() }), needsApproval: true, execute: async ({ n }) => `paid ${n}` });
    const model = new ScriptedModel([[functionCall('pay', { n: 3 }, { callId: 'p1' })], [assistantMessage('paid')]]);
    const agent = new Agent({ name: 'Cashier', model, tools: isotraceTools([pay]) });
    const first = await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () => runner.run(agent, 'pay'));
    first.state.approve(first.interruptions[0]!);
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () => runner.run(agent, first.state));
    const agents = spansOf(kit.spans(), 'invoke_agent');
    expect(agents.map((span) => span.name)).toEqual(['invoke_agent Cashier', 'invoke_agent Cashier']);
    const [toolSpan] = spansOf(kit.spans(), 'execute_tool');
    expect(parentIdOf(toolSpan)).toBe(idOf(agents[1]));
  });

  it('instruments a given Runner in place, once, and takes the provider name from options', async () => {
    const own = new Runner({ workflowName: 'support' });
    const traced = isotraceRunner(own, { providerName: 'anthropic' });
    expect(traced).toBe(own);
    expect(isotraceRunner(own)).toBe(own);
    await withRequestContext({ tenantId: 'acme', userId: 'ada' }, () => traced.run(new Agent({ name: 'Echo', model: new ScriptedModel([[assistantMessage('hi')]]) }), 'hello'));
    const agents = spansOf(kit.spans(), 'invoke_agent');
    expect(agents).toHaveLength(1);
    expect(agents[0]?.attributes['gen_ai.provider.name']).toBe('anthropic');
  });

  it('rejects bad options with a TypeError naming them', () => {
    expect(() => isotraceRunner({}, { providerName: '' })).toThrow(/options\.providerName/);
    expect(() => isotraceRunner(null as never)).toThrow(TypeError);
  });
});
