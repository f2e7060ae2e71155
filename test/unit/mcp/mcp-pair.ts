/**
 * A real MCP SDK Client and McpServer over the SDK's in-memory linked
 * transports, wrapped by isotrace/mcp: the unit tests' way to drive both
 * sides in one process without a network. (stdio and Streamable HTTP run in
 * test/integration/mcp-isolation.test.ts.)
 */
import { trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { getRequestContext } from 'isotrace';
import { mcpClientTransport, mcpServerTransport, type McpClientTransportOptions, type McpServerTransportOptions } from 'isotrace/mcp';
import { z } from 'zod';

/** What the server's `whoami` tool saw while it ran. */
export interface Seen {
  label: string;
  tenantId: string;
  userId: string;
  requestId: string;
  correlationId: string;
  traceId: string | undefined;
  meta: Record<string, unknown>;
}

export interface McpPair {
  client: Client;
  server: McpServer;
  /** How many times a tool handler ran. */
  readonly handlerRuns: number;
  close(): Promise<void>;
}

export interface PairOptions {
  server?: Partial<McpServerTransportOptions>;
  client?: McpClientTransportOptions;
  /** false: connect the SDK Client to the bare transport (a peer without isotrace, e.g. one forging `_meta`). */
  wrapClient?: boolean;
  /** Runs inside the `whoami` handler before it answers (delays, planted leaks). */
  onCall?: (label: string) => unknown;
}

/** A server whose identify() answers `server-tenant/server-user` unless told otherwise. */
export async function connectPair(options: PairOptions = {}): Promise<McpPair> {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  let handlerRuns = 0;
  const server = new McpServer({ name: 'unit-server', version: '1.0.0' });
  server.registerTool('whoami', { description: 'Reports the request it ran in', inputSchema: { label: z.string() } }, async ({ label }, extra) => {
    handlerRuns++;
    await options.onCall?.(label);
    const ctx = getRequestContext();
    const seen: Seen = {
      label,
      tenantId: ctx.tenantId,
      userId: ctx.userId,
      requestId: ctx.requestId,
      correlationId: ctx.correlationId,
      traceId: trace.getActiveSpan()?.spanContext().traceId,
      meta: (extra._meta ?? {}) as Record<string, unknown>,
    };
    return { content: [{ type: 'text', text: JSON.stringify(seen) }] };
  });
  server.registerTool('fails', { description: 'Always throws' }, async () => {
    handlerRuns++;
    throw new Error('inventory offline');
  });
  await server.connect(mcpServerTransport(serverSide, { identify: () => ({ tenantId: 'server-tenant', userId: 'server-user' }), ...options.server }));
  const client = new Client({ name: 'unit-client', version: '1.0.0' });
  const transport: Transport = options.wrapClient === false ? clientSide : mcpClientTransport(clientSide, options.client);
  await client.connect(transport);
  return {
    client,
    server,
    get handlerRuns() {
      return handlerRuns;
    },
    close: async () => {
      await client.close();
      await server.close();
    },
  };
}

/** The `whoami` tool's report, from a callTool() result. */
export function seenIn(result: unknown): Seen {
  const content = (result as { content: Array<{ type: string; text: string }> }).content;
  return JSON.parse(content[0]!.text) as Seen;
}

/** Calls `whoami` with `label`. */
export async function whoami(client: Client, label: string, meta?: Record<string, unknown>): Promise<Seen> {
  return seenIn(await client.callTool({ name: 'whoami', arguments: { label }, ...(meta ? { _meta: meta } : {}) }));
}

export function spansNamed(spans: readonly ReadableSpan[], name: string): ReadableSpan[] {
  return spans.filter((span) => span.name === name);
}

export function parentOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}
