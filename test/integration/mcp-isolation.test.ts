/**
 * isotrace/mcp over the MCP SDK's real transports.
 *
 * Streamable HTTP (a server on 127.0.0.1, port 0, behind httpRequestContext):
 * one MCP client shared by 100 concurrent requests of 10 tenants, each making
 * two parallel tool calls, authenticated per call by headers made from the
 * caller's own request context. Every server-side call runs as exactly its
 * caller's identity (identify() reads the headers), continues its caller's
 * trace under its CLIENT span, and the spans pass expectNoCrossRequestLeakage.
 * A planted leak (a tool system kept across MCP requests) is caught.
 *
 * stdio (a server process spawned with process.execPath, exporting its spans
 * to an OTLP sink): the trace continues across the process boundary, baggage
 * reaches the server only when propagateTo allows its name, and the server's
 * identity is the one it was started for, not the caller's `_meta`, unless it
 * trusts its parent.
 *
 * Replay a failure with ISOTRACE_TEST_SEED=<printed seed>.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpanKind, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { getRequestContext, tryGetRequestContext, withRequestContext } from 'isotrace';
import { httpRequestContext, type Identity } from 'isotrace/http';
import { mcpClientTransport, mcpServerTransport } from 'isotrace/mcp';
import { expectNoCrossRequestLeakage, useTestTracing, type AuditSpan } from 'isotrace/testing';
import { createToolSystem, defineTool, type ToolSystem } from 'isotrace/tools';
import { z } from 'zod';
import { listen, type TestServer } from '../helpers/http.js';
import { startOtlpSink, type OtlpSink } from '../helpers/otlp-sink.js';
import { createRandom, delay, testSeed, type Random } from '../helpers/random.js';

const kit = useTestTracing({ propagateTo: ['inventory'] });

const REQUESTS = 100;
const TENANTS = 10;

/** What a server-side tool call saw. */
interface Seen {
  tenantId: string;
  userId: string;
  requestId: string;
  correlationId: string;
  traceId: string;
  meta: Record<string, unknown>;
}

function seenIn(result: unknown): Seen {
  return JSON.parse((result as { content: Array<{ text: string }> }).content[0]!.text) as Seen;
}

/** The caller's identity as the headers say it (standing in for a signed token). */
function fromHeaders(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined> | undefined): Identity | undefined {
  const tenantId = headers?.['x-tenant'];
  const userId = headers?.['x-user'];
  return typeof tenantId === 'string' && typeof userId === 'string' ? { tenantId, userId } : undefined;
}

describe('Streamable HTTP', () => {
  let http: TestServer;
  let client: Client;
  let random: Random;
  /** The planted leak: one tool system kept across MCP requests (set by the first `leaky_lookup`). */
  let keptToolSystem: ToolSystem | undefined;
  const sessions = new Map<string, StreamableHTTPServerTransport>();

  const lookup = defineTool({ name: 'lookup', execute: async (_args: unknown, call) => call.context.tenantId });

  function mcpServer(): McpServer {
    const server = new McpServer({ name: 'inventory-http', version: '1.0.0' });
    server.registerTool('whoami', { inputSchema: { wait: z.number() } }, async ({ wait }, extra) => {
      const before = getRequestContext();
      await delay(wait);
      const ctx = getRequestContext();
      expect(ctx).toBe(before);
      const seen: Seen = { tenantId: ctx.tenantId, userId: ctx.userId, requestId: ctx.requestId, correlationId: ctx.correlationId, traceId: trace.getActiveSpan()!.spanContext().traceId, meta: extra._meta ?? {} };
      return { content: [{ type: 'text', text: JSON.stringify(seen) }] };
    });
    server.registerTool('leaky_lookup', { inputSchema: { wait: z.number() } }, async ({ wait }) => {
      keptToolSystem ??= createToolSystem([lookup]);
      await delay(wait);
      return { content: [{ type: 'text', text: String(await keptToolSystem.dispatcher.execute('lookup', {})) }] };
    });
    return server;
  }

  async function serveMcp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const sessionId = req.headers['mcp-session-id'];
    let transport = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
    if (!transport) {
      const created = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (id) => void sessions.set(id, created) });
      await mcpServer().connect(mcpServerTransport(created, { identify: ({ requestInfo }) => fromHeaders(requestInfo?.headers) }));
      transport = created;
    }
    await transport.handleRequest(req, res);
  }

  /** Each HTTP request says who it is for from the context of the call that makes it: one shared client, per-call credentials. */
  const fetchAsCaller: FetchLike = (url, init) => {
    const ctx = tryGetRequestContext();
    const headers = new Headers(init?.headers);
    headers.set('x-tenant', ctx?.tenantId ?? 'agent-service');
    headers.set('x-user', ctx?.userId ?? 'start-up');
    return fetch(url, { ...init, headers });
  };

  beforeAll(async () => {
    random = createRandom(testSeed());
    http = await listen(httpRequestContext({ identify: (req) => fromHeaders(req.headers) }, serveMcp));
    client = new Client({ name: 'agent-service', version: '1.0.0' });
    await client.connect(mcpClientTransport(new StreamableHTTPClientTransport(new URL(`${http.origin}/mcp`), { fetch: fetchAsCaller })));
  });

  afterAll(async () => {
    await client?.close();
    for (const transport of sessions.values()) await transport.close();
    await http?.close();
  });

  it(`runs each of ${REQUESTS} concurrent callers' parallel tool calls on the server as that caller, in its trace`, async () => {
    const context = `seed ${random.seed}`;
    const results = await Promise.all(
      Array.from({ length: REQUESTS }, (_, i) =>
        withRequestContext({ tenantId: `tenant-${i % TENANTS}`, userId: `user-${i}` }, async (ctx) => {
          await delay(random.int(0, 3));
          const calls = [0, 1].map(() => client.callTool({ name: 'whoami', arguments: { wait: random.int(0, 8) } }).then(seenIn));
          return { caller: { tenantId: ctx.tenantId, userId: ctx.userId, traceId: ctx.traceId }, seen: await Promise.all(calls) };
        }),
      ),
    );

    for (const { caller, seen } of results) {
      for (const s of seen) expect({ tenantId: s.tenantId, userId: s.userId, traceId: s.traceId }, context).toEqual(caller);
    }
    const spans = kit.spans();
    const clientSpans = new Map(spans.filter((span) => span.kind === SpanKind.CLIENT && span.name === 'tools/call whoami').map((span) => [span.spanContext().spanId, span]));
    const serverSpans = spans.filter((span) => span.kind === SpanKind.SERVER && span.name === 'tools/call whoami');
    expect(serverSpans).toHaveLength(REQUESTS * 2);
    for (const server of serverSpans) {
      const parent = clientSpans.get(server.parentSpanContext?.spanId ?? '');
      expect(parent, context).toBeDefined();
      expect(server.attributes['isotrace.tenant_id'], context).toBe(parent!.attributes['isotrace.tenant_id']);
      expect(server.attributes['user.id'], context).toBe(parent!.attributes['user.id']);
      expect(server.attributes).toMatchObject({ 'mcp.session.id': expect.any(String), 'network.transport': 'tcp', 'isotrace.audit.result': 'pass' });
      // The MCP span continues the caller's trace and links the HTTP request it came in on.
      expect(server.links.map((link) => link.context.spanId)).toContain(httpSpanOf(spans, server)?.spanContext().spanId);
    }
    expectNoCrossRequestLeakage(spans);
  }, 60_000);

  it('catches a planted leak: a tool system kept across MCP requests runs under other callers', async () => {
    keptToolSystem = undefined;
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        withRequestContext({ tenantId: `tenant-${i}`, userId: `user-${i}` }, () => client.callTool({ name: 'leaky_lookup', arguments: { wait: random.int(0, 5) } })),
      ),
    );
    expect(() => expectNoCrossRequestLeakage(kit.spans())).toThrow(/context-owner/);
  });
});

/** The HTTP SERVER span (httpRequestContext) the MCP message came in on: the one in the same HTTP trace as the CLIENT POST under the MCP span. */
function httpSpanOf(spans: readonly ReadableSpan[], mcpServerSpan: ReadableSpan): ReadableSpan | undefined {
  const mcpClientSpanId = mcpServerSpan.parentSpanContext?.spanId;
  const post = spans.find((span) => span.kind === SpanKind.CLIENT && span.parentSpanContext?.spanId === mcpClientSpanId);
  return post && spans.find((span) => span.kind === SpanKind.SERVER && span.parentSpanContext?.spanId === post.spanContext().spanId);
}

describe('stdio', () => {
  const FIXTURE = fileURLToPath(new URL('../fixtures/mcp/stdio-server.ts', import.meta.url));
  let sink: OtlpSink;

  beforeAll(async () => {
    sink = await startOtlpSink();
  });

  afterAll(async () => {
    await sink?.close();
  });

  /** Spawns the fixture server, calls `whoami` once inside a request of t1/u1, stops the server and collects its spans. */
  async function callOnce(server: string, env: Record<string, string> = {}): Promise<{ seen: Seen; clientSpan: ReadableSpan; serverSpan: AuditSpan }> {
    sink.reset();
    const transport = new StdioClientTransport({ command: process.execPath, args: [FIXTURE], env: { ...(process.env as Record<string, string>), OTLP_URL: sink.url, ...env } });
    const client = new Client({ name: 'agent-service', version: '1.0.0' });
    await client.connect(mcpClientTransport(transport, { server }));
    const seen = await withRequestContext({ tenantId: 't1', userId: 'u1' }, async () => seenIn(await client.callTool({ name: 'whoami', arguments: { label: 'x' } })));
    await client.close();
    const exported = await sink.waitForSpans((spans) => spans.some((span) => span.name === 'tools/call whoami'));
    const clientSpan = kit.spans().find((span) => span.name === 'tools/call whoami' && span.kind === SpanKind.CLIENT)!;
    return { seen, clientSpan, serverSpan: exported.find((span) => span.name === 'tools/call whoami')! };
  }

  it('continues the trace in the server process under the CLIENT span; baggage reaches a propagateTo server, identity does not', async () => {
    const { seen, clientSpan, serverSpan } = await callOnce('mcp://inventory');

    expect(serverSpan.serviceName).toBe('mcp-stdio-server');
    expect(serverSpan.traceId).toBe(clientSpan.spanContext().traceId);
    expect(serverSpan.parentSpanId).toBe(clientSpan.spanContext().spanId);
    expect(serverSpan.attributes).toMatchObject({ 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'whoami', 'network.transport': 'pipe', 'isotrace.tenant_id': 'stdio-tenant' });
    expect(clientSpan.attributes['network.transport']).toBe('pipe');
    expect(seen.meta.baggage).toEqual(expect.stringContaining('isotrace.tenant_id=t1'));
    // The server is not told to trust its parent: it runs as the identity it was started for.
    expect(seen).toMatchObject({ tenantId: 'stdio-tenant', userId: 'stdio-user', traceId: clientSpan.spanContext().traceId });
  });

  it('sends no baggage to a stdio server propagateTo does not name', async () => {
    const { seen, serverSpan, clientSpan } = await callOnce('mcp://billing');

    expect(seen.meta).not.toHaveProperty('baggage');
    expect(serverSpan.parentSpanId).toBe(clientSpan.spanContext().spanId);
  });

  it('runs as the caller only when the server trusts its parent (trustedIdentity)', async () => {
    const { seen } = await callOnce('mcp://inventory', { MCP_TRUST_PARENT: '1' });

    expect(seen).toMatchObject({ tenantId: 't1', userId: 'u1' });
  });
});
