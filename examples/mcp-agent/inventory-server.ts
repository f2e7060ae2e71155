// The inventory MCP server, spawned over stdio by main.ts. Every MCP request
// runs in its own isotrace request context: it continues the agent's trace
// from `params._meta`, and because this process is the agent's own child, it
// trusts its parent's `_meta` baggage for the caller's identity
// (trustedIdentity). A server reachable by anyone else would identify callers
// from their credentials instead and never trust `_meta`.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { getRequestContext, startTracing } from 'isotrace';
import { mcpServerTransport } from 'isotrace/mcp';
import { z } from 'zod';

// stdout is the MCP channel: spans go nowhere here (a real server would export over OTLP).
const tracing = await startTracing({ serviceName: 'inventory-mcp', exporter: 'none' });

// Each tenant's stock: read-only data, not request state.
const STOCK: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  acme: { lamp: 12, chair: 40 },
  globex: { lamp: 3, chair: 0 },
};

const server = new McpServer({ name: 'inventory', version: '1.0.0' });
server.registerTool('check_stock', { description: "Units of an item in the caller's warehouse", inputSchema: { item: z.string() } }, async ({ item }) => {
  const { tenantId, userId } = getRequestContext();
  const units = STOCK[tenantId]?.[item] ?? 0;
  return { content: [{ type: 'text', text: JSON.stringify({ item, units, ranAs: `${tenantId}/${userId}` }) }] };
});

await server.connect(
  mcpServerTransport(new StdioServerTransport(), {
    trustInbound: () => true,
    // Without a trusted identity nothing runs: there is no anonymous stock.
    identify: ({ method, trustedIdentity }) => trustedIdentity ?? (method === 'tools/call' ? undefined : { tenantId: 'inventory', userId: 'mcp-client' }),
  }),
);

process.stdin.once('end', () => {
  void tracing.shutdown().finally(() => process.exit(0));
});
