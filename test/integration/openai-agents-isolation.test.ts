/**
 * OpenAI Agents JS isolation: one module-level Triage agent (two parallel
 * get_weather calls, then a handoff) and one module-level Specialist agent
 * (a get_forecast call, then the answer), their tools wrapped once with
 * isotraceTools(), one module-level isotraceRunner(), and 100 concurrent
 * runs over 10 tenants with random delays inside the tools. Every tool call
 * runs in its own request, every agent and handoff span belongs to the run's
 * request, and the spans pass expectNoCrossRequestLeakage.
 *
 * The negative control shows the checks can fail: a tool that keeps "the
 * current request" in a module-level variable is caught by the audits.
 *
 * Replay a failure with ISOTRACE_TEST_SEED=<printed seed>.
 */
import { describe, expect, it } from 'vitest';
import { Agent, tool, type FunctionTool, type ModelRequest } from '@openai/agents-core';
import { assistantMessage, functionCall } from '@openai/agents-core/testing';
import { z } from 'zod';
import { getRequestContext, withRequestContext, type RequestContext } from 'isotrace';
import { isotraceRunner, isotraceTools } from 'isotrace/openai-agents';
import { expectNoCrossRequestLeakage } from 'isotrace/testing';
import { createRandom, delay, testSeed } from '../helpers/random.ts';
import { useTestTracing } from '../helpers/tracing.ts';
import { idOf, parentIdOf, resultCallIdsOf, spansOf, statelessModel, userTextOf } from '../unit/openai-agents/agents-test-helpers.ts';

const REQUESTS = 100;
const TENANTS = 10;

const kit = useTestTracing();
const seed = testSeed();
const random = createRandom(seed);

/** Tool arguments: the model names the user it scripts for, so the tool can check where it runs. */
const LOOKUP = z.object({ city: z.string(), forUser: z.string(), waitMs: z.number() });
type Lookup = z.infer<typeof LOOKUP>;

/** Each tool call's verdict: the user it was scripted for and the user whose request it ran in. */
const sightings: Array<{ tool: string; forUser: string; ranFor: string | undefined }> = [];

/** The honest tools: read their request from isotrace, after a random delay. */
function honest(name: string): FunctionTool<unknown, typeof LOOKUP> {
  return tool({
    name,
    description: `${name} for a city`,
    parameters: LOOKUP,
    async execute({ city, forUser, waitMs }: Lookup) {
      await delay(waitMs);
      const ctx = getRequestContext();
      await ctx.sharedState.set('last-city', city);
      sightings.push({ tool: name, forUser, ranFor: ctx.userId });
      return `${name} ${city} for ${ctx.tenantId}`;
    },
  });
}

/** The user a run is for: its input says `weather for <user>`. */
function userOf(request: Readonly<ModelRequest>): string {
  return /weather for (\S+)/.exec(userTextOf(request))?.[1] ?? 'nobody';
}

/** Triage's model: two parallel get_weather calls, then (their results in) a handoff to Specialist. */
function triageTurn(request: Readonly<ModelRequest>) {
  const user = userOf(request);
  if (resultCallIdsOf(request).length === 0) {
    return ['Oslo', 'Lima'].map((city, n) => functionCall('get_weather', { city, forUser: user, waitMs: random.int(0, 8) }, { callId: `${user}:w${n}` }));
  }
  return [functionCall('transfer_to_Specialist', {}, { callId: `${user}:h` })];
}

/** Specialist's model: one get_forecast call, then the answer. */
function specialistTurn(request: Readonly<ModelRequest>) {
  const user = userOf(request);
  if (!resultCallIdsOf(request).includes(`${user}:f`)) return [functionCall('get_forecast', { city: 'Oslo', forUser: user, waitMs: random.int(0, 8) }, { callId: `${user}:f` })];
  return [assistantMessage(`done ${user}`)];
}

/** The module-level agents (the "module-level agents work"): defined once, shared by every request. */
function moduleLevelAgents(weather: FunctionTool<unknown, typeof LOOKUP>, forecast: FunctionTool<unknown, typeof LOOKUP>) {
  const specialist = new Agent({ name: 'Specialist', model: statelessModel(specialistTurn), tools: isotraceTools([forecast]) });
  return new Agent({ name: 'Triage', model: statelessModel(triageTurn), tools: isotraceTools([weather]), handoffs: [specialist] });
}

const runner = isotraceRunner();

/** Runs REQUESTS agent runs at once, request i as user `u<i>` of tenant `t<i % TENANTS>`. */
async function runAgents(triage: Agent): Promise<void> {
  await Promise.all(
    Array.from({ length: REQUESTS }, (_, i) =>
      withRequestContext({ tenantId: `t${i % TENANTS}`, userId: `u${i}` }, async () => {
        await delay(random.int(0, 5));
        const result = await runner.run(triage, `weather for u${i}`);
        expect(result.finalOutput).toBe(`done u${i}`);
        expect(result.lastAgent?.name).toBe('Specialist');
      }),
    ),
  );
}

describe(`OpenAI Agents adapter isolation (seed ${seed})`, () => {
  it(`keeps ${REQUESTS} concurrent runs of module-level agents apart: tools, agent spans, handoffs`, async () => {
    sightings.length = 0;
    await runAgents(moduleLevelAgents(honest('get_weather'), honest('get_forecast')));

    expect(sightings).toHaveLength(REQUESTS * 3);
    expect(sightings.filter(({ forUser, ranFor }) => forUser !== ranFor)).toEqual([]);
    const spans = kit.spans();
    const agents = spansOf(spans, 'invoke_agent');
    const tools = spansOf(spans, 'execute_tool');
    expect(agents).toHaveLength(REQUESTS * 2);
    expect(tools).toHaveLength(REQUESTS * 3);
    expect(spans.filter((span) => span.name === 'handoff Specialist')).toHaveLength(REQUESTS);
    // Every tool span hangs under its own run's agent span, which names the agent.
    const agentById = new Map(agents.map((span) => [idOf(span), span]));
    for (const span of tools) {
      const agent = agentById.get(parentIdOf(span));
      const user = String(span.attributes['gen_ai.tool.call.id']).split(':')[0];
      expect(agent?.attributes['user.id']).toBe(user);
      expect(span.attributes['user.id']).toBe(user);
      expect(span.attributes['gen_ai.agent.name']).toBe(span.attributes['gen_ai.tool.name'] === 'get_weather' ? 'Triage' : 'Specialist');
    }
    const report = expectNoCrossRequestLeakage(spans);
    expect(report.requests).toBe(REQUESTS);
    expect(report.toolSpans).toBe(REQUESTS * 3);
  });

  it('control: a tool that keeps the current request in a module-level variable is caught', async () => {
    // The planted leak: "the current request" cached at module level and used after an await.
    let current: RequestContext | undefined;
    const leaky = tool({
      name: 'get_weather',
      description: 'get_weather for a city',
      parameters: LOOKUP,
      async execute({ city, waitMs }: Lookup) {
        current = getRequestContext();
        await delay(waitMs);
        await current.sharedState.set('last-city', city);
        return `sunny in ${city} for ${current.tenantId}`;
      },
    });
    await runAgents(moduleLevelAgents(leaky, honest('get_forecast')));
    expect(() => expectNoCrossRequestLeakage(kit.spans())).toThrow(/shared-state/);
  });
});
