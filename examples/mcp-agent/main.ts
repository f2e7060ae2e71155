// An agent whose tool calls an MCP server. A scripted "model" (no network, no
// API key) asks for tool calls; each runs through the request's own isotrace
// tool system, and the `check_stock` tool calls the inventory MCP server over
// stdio. Run after `npm run build`:  node examples/mcp-agent/main.ts
import { fileURLToPath } from 'node:url';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { startTracing, withRequestContext } from 'isotrace';
import { mcpClientTransport } from 'isotrace/mcp';
import { auditSpans } from 'isotrace/testing';
import { createToolSystem, defineTool } from 'isotrace/tools';

const exporter = new InMemorySpanExporter();
// The stdio server is named 'mcp://inventory' below: propagateTo lets it receive baggage.
const tracing = await startTracing({ serviceName: 'mcp-agent-example', exporter, propagateTo: ['inventory'] });

// One MCP connection for the whole process (it holds a child process, not request data).
const transport = new StdioClientTransport({ command: process.execPath, args: [fileURLToPath(new URL('./inventory-server.ts', import.meta.url))] });
const mcp = new Client({ name: 'mcp-agent-example', version: '1.0.0' });
await mcp.connect(mcpClientTransport(transport, { server: 'mcp://inventory' }));

interface StockAnswer {
  item: string;
  units: number;
  ranAs: string;
}

// Same name as the MCP tool: the MCP call enriches this execute_tool span instead of adding another.
const checkStock = defineTool({
  name: 'check_stock',
  description: 'Units of an item in stock (inventory MCP server)',
  execute: async (args: { item: string }): Promise<StockAnswer> => {
    const result = await mcp.callTool({ name: 'check_stock', arguments: args });
    const [first] = result.content as Array<{ type: string; text: string }>;
    return JSON.parse(first!.text) as StockAnswer;
  },
});

/** The scripted model: the tool calls it "decides" on for a question. */
function scriptedModel(question: string): Array<{ callId: string; item: string }> {
  return ['lamp', 'chair'].filter((item) => question.includes(item)).map((item, i) => ({ callId: `call_${i + 1}`, item }));
}

const requests = [
  { tenantId: 'acme', userId: 'ada', question: 'how many lamps and chairs?' },
  { tenantId: 'globex', userId: 'grace', question: 'how many lamps and chairs?' },
  { tenantId: 'acme', userId: 'alan', question: 'any chairs left?' },
];

const results = await Promise.all(
  requests.map(({ tenantId, userId, question }) =>
    withRequestContext({ tenantId, userId, name: 'agent.turn' }, async (ctx) => {
      const { dispatcher } = createToolSystem([checkStock]);
      // Parallel tool calls, as a model asks for them.
      const answers = await Promise.all(scriptedModel(question).map(({ callId, item }) => dispatcher.execute<StockAnswer>('check_stock', { item }, { callId })));
      return { requestId: ctx.requestId, who: `${tenantId}/${userId}`, answers };
    }),
  ),
);

for (const { who, answers } of results) {
  const line = answers.map((a) => `${a.item}=${a.units} (server ran as ${a.ranAs}${a.ranAs === who ? '' : ' — MISMATCH'})`).join(', ');
  console.log(`${who}: ${line}`);
}

await mcp.close();
await tracing.forceFlush();
const spans = exporter.getFinishedSpans();
printTree(spans, results[0]!.requestId);

const report = auditSpans(spans);
console.log(`\naudit: ${report.requests} requests, ${report.toolSpans} tool spans, ${report.spans} spans, ${report.violations.length} violations`);
await tracing.shutdown();

const mismatches = results.flatMap(({ who, answers }) => answers.filter((a) => a.ranAs !== who));
process.exitCode = report.ok && mismatches.length === 0 && report.toolSpans === 5 ? 0 : 1;

/** Prints one request's spans with the MCP attributes of the tool spans. */
function printTree(all: readonly ReadableSpan[], requestId: string): void {
  const root = all.find((span) => span.attributes['isotrace.request_span'] === true && span.attributes['isotrace.request_id'] === requestId);
  if (!root) return;
  console.log(`\ntrace ${root.spanContext().traceId} (tenant ${String(root.attributes['isotrace.tenant_id'])}):`);
  const visit = (span: ReadableSpan, depth: number): void => {
    const mcpMethod = span.attributes['mcp.method.name'];
    const detail = mcpMethod === undefined ? '' : `  mcp.method.name=${String(mcpMethod)} jsonrpc.request.id=${String(span.attributes['jsonrpc.request.id'])}`;
    console.log(`${'  '.repeat(depth)}${span.name}${detail}`);
    for (const child of all.filter((s) => s.parentSpanContext?.spanId === span.spanContext().spanId)) visit(child, depth + 1);
  };
  visit(root, 1);
}
