// A Vercel AI SDK 7 agent whose tools run as audited isotrace tool calls, with
// scripted mock models (no network, no API keys). Run after `npm run build`:
//   node examples/ai-sdk-agent/main.ts
import { OpenTelemetry } from '@ai-sdk/otel';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { generateText, isStepCount, registerTelemetry, streamText } from 'ai';
import { convertArrayToReadableStream, MockLanguageModelV4 } from 'ai/test';
import { startTracing, withRequestContext } from 'isotrace';
import { auditSpans } from 'isotrace/testing';
import { auditLine, printTree, ranFor } from '../shared/trace-tree.ts';
import { sightings, tools } from './tools.ts';

// Spans stay in memory: the example prints them instead of needing a collector.
const exporter = new InMemorySpanExporter();
const tracing = await startTracing({ serviceName: 'ai-sdk-agent-example', exporter });
// The AI SDK's own GenAI spans (invoke_agent → step → chat / execute_tool); isotrace enriches its execute_tool spans.
registerTelemetry(new OpenTelemetry({ agentSpanName: 'functionId' }));

const usage = { inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 1, text: 1, reasoning: 0 } };
const toolCall = (toolCallId: string, toolName: string, input: unknown) => ({ type: 'tool-call' as const, toolCallId, toolName, input: JSON.stringify(input) });

/** A model that asks for two order lookups at once (parallel tool calls), then answers. */
function ordersModel(): MockLanguageModelV4 {
  return new MockLanguageModelV4({
    doGenerate: [
      { content: [toolCall('call_1', 'order_status', { orderId: 'A-17' }), toolCall('call_2', 'order_status', { orderId: 'B-2' })], finishReason: { unified: 'tool-calls', raw: undefined }, usage, warnings: [] },
      { content: [{ type: 'text', text: 'Both orders are on their way.' }], finishReason: { unified: 'stop', raw: undefined }, usage, warnings: [] },
    ],
  });
}

/** A streaming model that asks for a report (a streaming tool), then answers. */
function reportModel(): MockLanguageModelV4 {
  return new MockLanguageModelV4({
    doStream: [
      { stream: convertArrayToReadableStream([{ type: 'stream-start', warnings: [] }, toolCall('call_1', 'export_report', { pages: 3 }), { type: 'finish', finishReason: { unified: 'tool-calls', raw: undefined }, usage }]) },
      {
        stream: convertArrayToReadableStream([
          { type: 'stream-start', warnings: [] },
          { type: 'text-start', id: 't' },
          { type: 'text-delta', id: 't', delta: 'Your report is ready.' },
          { type: 'text-end', id: 't' },
          { type: 'finish', finishReason: { unified: 'stop', raw: undefined }, usage },
        ]),
      },
    ],
  });
}

const users = [
  { tenantId: 'acme', userId: 'ada', orders: { 'A-17': 'shipped', 'B-2': 'packed' } },
  { tenantId: 'globex', userId: 'grace', orders: { 'A-17': 'cancelled', 'B-2': 'delivered' } },
];

// Three requests at once: two agents with parallel tool calls, one streaming a report.
const runs = await Promise.all([
  ...users.map(({ tenantId, userId, orders }) =>
    withRequestContext({ tenantId, userId, name: 'agent.turn' }, async (ctx) => {
      await ctx.sharedState.set('orders', orders);
      const result = await generateText({ model: ordersModel(), tools, prompt: 'Where are my orders?', stopWhen: isStepCount(3), telemetry: { functionId: 'orders-agent' } });
      const statuses = result.steps[0]!.toolResults.map((r) => `${(r.output as { orderId: string; status: string }).orderId} ${(r.output as { status: string }).status}`);
      return { who: `${tenantId}/${userId}`, requestId: ctx.requestId, said: `${result.text} (${statuses.join(', ')})` };
    }),
  ),
  withRequestContext({ tenantId: 'acme', userId: 'alan', name: 'agent.turn' }, async (ctx) => {
    const result = streamText({ model: reportModel(), tools, prompt: 'Export my report', stopWhen: isStepCount(3), telemetry: { functionId: 'report-agent' } });
    const progress: string[] = [];
    for await (const part of result.fullStream) {
      if (part.type === 'tool-result' && part.preliminary) progress.push(`${(part.output as { page: number }).page}/3`);
    }
    return { who: 'acme/alan', requestId: ctx.requestId, said: `${await result.text} (progress ${progress.join(' ')})` };
  }),
]);

// Each tool step recorded the request it ran in: it must be the one that called the model, as the same user.
let mismatches = 0;
for (const { who, requestId, said } of runs) {
  const own = sightings.filter((s) => s.requestId === requestId);
  const seenAs = [...new Set(own.map((s) => s.who))];
  if (seenAs.length !== 1 || seenAs[0] !== who) mismatches++;
  console.log(`${who}: ${said} — ${own.length} tool steps, run as ${seenAs.join(', ')}${seenAs.join() === who ? '' : ' — MISMATCH'}`);
}

await tracing.forceFlush();
const spans = exporter.getFinishedSpans();
// One request's tree: request → invoke_agent → step → chat / execute_tool, tool calls by call id.
printTree(spans, runs[0]!.requestId, {
  line: (span) => {
    const callId = span.attributes['gen_ai.tool.call.id'];
    return `${span.name}  ${ranFor(span)}${callId ? `  ${String(callId)} audit=${String(span.attributes['isotrace.audit.result'])}` : ''}`;
  },
  order: (a, b) => String(a.attributes['gen_ai.tool.call.id'] ?? '').localeCompare(String(b.attributes['gen_ai.tool.call.id'] ?? '')),
});

const report = auditSpans(spans);
const toolSpans = spans.filter((span) => span.attributes['gen_ai.operation.name'] === 'execute_tool');
const enriched = toolSpans.filter((span) => span.attributes['isotrace.registry_id'] !== undefined);
console.log(`\n${toolSpans.length} execute_tool spans, ${enriched.length} carrying isotrace's registry id and audit result`);
console.log(auditLine(report));

await tracing.shutdown();
process.exitCode = report.ok && mismatches === 0 && sightings.length === 7 && enriched.length === toolSpans.length ? 0 : 1;

