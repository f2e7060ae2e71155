// Two OpenAI Agents SDK agents (a triage agent that hands off to a specialist; scripted models from
// @openai/agents-core/testing: no network, no API key), defined once at module level and serving
// three tenants at once through isotrace/openai-agents. Run after `npm run build`:
//   node examples/openai-agents-agent/main.ts
import { Agent, setTracingDisabled, tool, type ModelRequest } from '@openai/agents-core';
import { assistantMessage, functionCall, modelResponder, ScriptedModel } from '@openai/agents-core/testing';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { z } from 'zod';
import { getRequestContext, startTracing, withRequestContext } from 'isotrace';
import { isotraceRunner, isotraceTools } from 'isotrace/openai-agents';
import { auditSpans } from 'isotrace/testing';
import { auditLine, printTree, ranFor } from '../shared/trace-tree.ts';

// isotrace does not need the SDK's own tracing (its default processor would print every span here).
setTracingDisabled(true);

// Spans stay in memory: the example prints them instead of needing a collector.
const exporter = new InMemorySpanExporter();
const tracing = await startTracing({ serviceName: 'openai-agents-example', exporter });

// Tools, agents and runner are module-level and shared by every request. isotraceTools() makes each
// call an audited execute_tool span of the request that made the run.
const getWeather = tool({
  name: 'get_weather',
  description: 'Current weather for a city',
  parameters: z.object({ city: z.string() }),
  async execute({ city }) {
    await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
    return `${city}: 18°C (for ${getRequestContext().tenantId})`;
  },
});
const getForecast = tool({
  name: 'get_forecast',
  description: 'Tomorrow’s forecast for a city',
  parameters: z.object({ city: z.string() }),
  execute: async ({ city }) => `${city}: rain tomorrow (for ${getRequestContext().tenantId})`,
});

const specialist = new Agent({
  name: 'Forecaster',
  handoffDescription: 'Answers questions about tomorrow',
  model: scriptedModel(forecasterTurn),
  tools: isotraceTools([getForecast]),
});
const triage = new Agent({
  name: 'Triage',
  model: scriptedModel(triageTurn),
  tools: isotraceTools([getWeather]),
  handoffs: [specialist],
});
// One invoke_agent span per agent of each run, a span for each handoff.
const runner = isotraceRunner();

const requests = [
  { tenantId: 'acme', userId: 'ada', cities: ['Oslo', 'Lima'] },
  { tenantId: 'globex', userId: 'grace', cities: ['Kyoto', 'Quito'] },
  { tenantId: 'initech', userId: 'ivan', cities: ['Perth', 'Turin'] },
];

const answers = await Promise.all(
  requests.map(({ tenantId, userId, cities }) =>
    withRequestContext({ tenantId, userId, name: 'chat.turn', conversationId: `conv-${userId}` }, async (ctx) => {
      const result = await runner.run(triage, `${userId}: weather in ${cities.join(' and ')}, and tomorrow?`);
      const toolResults = result.newItems.filter((item) => item.type === 'tool_call_output_item').map((item) => String(item.output));
      return { requestId: ctx.requestId, tenantId, userId, toolResults, answer: String(result.finalOutput), lastAgent: result.lastAgent?.name };
    }),
  ),
);

for (const { tenantId, userId, toolResults, answer, lastAgent } of answers) {
  const ok = toolResults.every((text) => text.endsWith(`(for ${tenantId})`));
  console.log(`${tenantId}/${userId}: ${answer} (answered by ${lastAgent}) [${toolResults.join('; ')}]${ok ? '' : ' — MISMATCH'}`);
}

await tracing.forceFlush();
const spans = exporter.getFinishedSpans();
// One request's tree: chat.turn → invoke_agent Triage → tools, handoff; invoke_agent Forecaster → tool; children as they started.
printTree(spans, answers[0]!.requestId, {
  line: (span) => {
    const callId = span.attributes['gen_ai.tool.call.id'];
    const conversation = span.attributes['gen_ai.conversation.id'];
    const extra = `${callId === undefined ? '' : ` call ${String(callId)}`}${conversation === undefined ? '' : ` conversation ${String(conversation)}`}`;
    return `${span.name}${extra}  ${ranFor(span)} audit=${String(span.attributes['isotrace.audit.result'] ?? '-')}`;
  },
  order: (a, b) => (a.startTime[0] - b.startTime[0]) * 1e9 + (a.startTime[1] - b.startTime[1]),
});

const report = auditSpans(spans);
console.log(`\n${auditLine(report)}`);
await tracing.shutdown();

const mismatches = answers.filter(({ tenantId, toolResults }) => toolResults.length !== 3 || !toolResults.every((text) => text.endsWith(`(for ${tenantId})`)));
process.exitCode = report.ok && mismatches.length === 0 && report.toolSpans === requests.length * 3 ? 0 : 1;

/**
 * A scripted model a module-level agent can share between concurrent runs: every model call is
 * answered by `turn`, which decides from the request alone (a real agent would use a real model).
 */
function scriptedModel(turn: (user: string, cities: string[], done: readonly string[]) => ReturnType<typeof assistantMessage>[] | ReturnType<typeof functionCall>[]) {
  return new ScriptedModel(
    Array.from({ length: 100 }, () =>
      modelResponder(({ request }) => {
        const [, user = 'nobody', asked = ''] = /^(\w+): weather in (.*), and tomorrow\?$/.exec(firstUserText(request)) ?? [];
        return turn(user, asked.split(' and '), doneCallIds(request));
      }),
    ),
  );
}

/** Triage: the weather of each city (parallel calls), then a handoff to the forecaster. */
function triageTurn(user: string, cities: string[], done: readonly string[]) {
  if (!done.some((id) => id.startsWith(`${user}_weather`))) return cities.map((city, n) => functionCall('get_weather', { city }, { callId: `${user}_weather_${n}` }));
  return [functionCall('transfer_to_Forecaster', {}, { callId: `${user}_handoff` })];
}

/** Forecaster: tomorrow's forecast for the first city, then the answer. */
function forecasterTurn(user: string, cities: string[], done: readonly string[]) {
  if (!done.includes(`${user}_forecast`)) return [functionCall('get_forecast', { city: cities[0] }, { callId: `${user}_forecast` })];
  return [assistantMessage(`Sunny today, rain tomorrow, ${user}.`)];
}

function firstUserText(request: Readonly<ModelRequest>): string {
  if (typeof request.input === 'string') return request.input;
  const message = request.input.find((item) => (item as { role?: unknown }).role === 'user') as { content?: unknown } | undefined;
  return typeof message?.content === 'string' ? message.content : '';
}

function doneCallIds(request: Readonly<ModelRequest>): string[] {
  if (typeof request.input === 'string') return [];
  return request.input.flatMap((item) => (item.type === 'function_call_result' ? [item.callId] : []));
}

