// A LangChain.js agent (createAgent, a scripted fake model: no network, no API key) serving
// three tenants at once through isotrace/langchain. Run after `npm run build`:
//   node examples/langchain-agent/main.ts
import { BaseCallbackHandler } from '@langchain/core/callbacks/base';
import { awaitAllCallbacks } from '@langchain/core/callbacks/promises';
import { AIMessage } from '@langchain/core/messages';
import { fakeModel } from '@langchain/core/testing';
import { tool } from '@langchain/core/tools';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { createAgent } from 'langchain';
import { z } from 'zod';
import { getRequestContext, startTracing, tryGetRequestContext, withRequestContext } from 'isotrace';
import { bindCallbacks, isotraceTools, traceAgent } from 'isotrace/langchain';
import { auditSpans } from 'isotrace/testing';
import { auditLine, printTree, ranFor } from '../shared/trace-tree.ts';

// Spans stay in memory: the example prints them instead of needing a collector.
const exporter = new InMemorySpanExporter();
const tracing = await startTracing({ serviceName: 'langchain-agent-example', exporter });

// Tools are module-level and shared by every request; isotraceTools() makes each call an audited
// execute_tool span of the request that made it.
const getWeather = tool(
  async ({ city }: { city: string }) => {
    await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
    const { tenantId } = getRequestContext();
    return `${city}: 18°C, light rain (forecast for ${tenantId})`;
  },
  { name: 'get_weather', description: 'Current weather for a city', schema: z.object({ city: z.string() }) },
);
const tools = isotraceTools([getWeather]);

// One module-level callback handler. In LangChain's default background mode its callbacks run on a
// shared queue; bindCallbacks() makes each one run in the request that caused it.
class ToolLog extends BaseCallbackHandler {
  name = 'tool-log';
  override handleToolStart(_tool: unknown, input: string, _runId: string, _parentRunId?: string, _tags?: string[], _metadata?: unknown, runName?: string, toolCallId?: string): void {
    const ctx = tryGetRequestContext();
    console.log(`callback: ${runName} ${toolCallId} started in ${ctx ? `${ctx.tenantId}/${ctx.userId}` : 'no request'}`);
  }
}
const callbacks = [bindCallbacks(new ToolLog())];

const requests = [
  { tenantId: 'acme', userId: 'ada', cities: ['Oslo', 'Lima'] },
  { tenantId: 'globex', userId: 'grace', cities: ['Kyoto', 'Quito'] },
  { tenantId: 'initech', userId: 'ivan', cities: ['Perth', 'Turin'] },
];

const answers = await Promise.all(
  requests.map(({ tenantId, userId, cities }) =>
    withRequestContext({ tenantId, userId, name: 'chat.turn' }, async (ctx) => {
      // The fake model is scripted per request: two parallel tool calls, then an answer.
      // A real service would create its agent once, at module level, with a real chat model.
      const model = fakeModel()
        .respondWithTools(cities.map((city, n) => ({ name: 'get_weather', args: { city }, id: `${userId}_call_${n}` })))
        .respond(new AIMessage(`Weather for ${cities.join(' and ')} is on its way, ${userId}.`));
      const agent = traceAgent(createAgent({ model, tools, name: 'weather_agent' }));
      const result = await agent.invoke({ messages: [{ role: 'user', content: `Weather in ${cities.join(' and ')}?` }] }, { callbacks, configurable: { thread_id: `conv-${userId}` } });
      const toolResults = result.messages.filter((message) => message.getType() === 'tool').map((message) => String(message.content));
      return { requestId: ctx.requestId, tenantId, userId, toolResults, answer: String(result.messages.at(-1)?.content) };
    }),
  ),
);
await awaitAllCallbacks();

for (const { tenantId, userId, toolResults, answer } of answers) {
  const ok = toolResults.every((text) => text.endsWith(`(forecast for ${tenantId})`));
  console.log(`${tenantId}/${userId}: ${answer} [${toolResults.join('; ')}]${ok ? '' : ' — MISMATCH'}`);
}

await tracing.forceFlush();
const spans = exporter.getFinishedSpans();
// One request's tree: chat.turn → invoke_agent → execute_tool ×2.
printTree(spans, answers[0]!.requestId, {
  line: (span) => {
    const callId = span.attributes['gen_ai.tool.call.id'];
    return `${span.name}${callId === undefined ? '' : ` call ${String(callId)}`}  ${ranFor(span)} audit=${String(span.attributes['isotrace.audit.result'] ?? '-')}`;
  },
});

const report = auditSpans(spans);
console.log(`\n${auditLine(report)}`);
await tracing.shutdown();

const mismatches = answers.filter(({ tenantId, toolResults }) => !toolResults.every((text) => text.endsWith(`(forecast for ${tenantId})`)));
process.exitCode = report.ok && mismatches.length === 0 && report.toolSpans === requests.length * 2 ? 0 : 1;

