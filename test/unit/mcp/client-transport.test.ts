/**
 * mcpClientTransport() with the real MCP SDK Client and McpServer (in-memory
 * transports): CLIENT spans per the MCP conventions, trace context in
 * `params._meta`, baggage there only for propagateTo servers, enrichment of
 * an enclosing execute_tool span, and no tools/call outside a request.
 */
import { describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { withRequestContext } from 'isotrace';
import { mcpClientTransport, RequestContextMissingError } from 'isotrace/mcp';
import { expectNoCrossRequestLeakage, useTestTracing } from 'isotrace/testing';
import { createToolSystem, defineTool } from 'isotrace/tools';
import { waitFor } from '../../helpers/http.js';
import { deferred } from '../../helpers/random.js';
import { connectPair, parentOf, seenIn, spansNamed, whoami } from './mcp-pair.js';

const kit = useTestTracing({ propagateTo: ['inventory'] });

describe('mcpClientTransport', () => {
  it('makes each tools/call a CLIENT span whose trace context reaches the server in _meta: the SERVER span is its child', async () => {
    const pair = await connectPair({ client: { server: 'mcp://inventory' } });
    const seen = await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => whoami(pair.client, 'a'));
    await pair.close();

    const [client] = spansNamed(kit.spans(), 'tools/call whoami').filter((span) => span.kind === SpanKind.CLIENT);
    const [server] = spansNamed(kit.spans(), 'tools/call whoami').filter((span) => span.kind === SpanKind.SERVER);
    expect(client).toBeDefined();
    expect(server).toBeDefined();
    expect(client!.attributes).toMatchObject({
      'mcp.method.name': 'tools/call',
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'whoami',
      'jsonrpc.request.id': expect.any(String),
      'isotrace.tenant_id': 't1',
    });
    expect(server!.attributes['jsonrpc.request.id']).toBe(client!.attributes['jsonrpc.request.id']);
    expect(parentOf(server!)).toBe(client!.spanContext().spanId);
    expect(server!.spanContext().traceId).toBe(client!.spanContext().traceId);
    expect(seen.traceId).toBe(client!.spanContext().traceId);
    expect(seen.meta.traceparent).toBe(`00-${client!.spanContext().traceId}-${client!.spanContext().spanId}-01`);
    expectNoCrossRequestLeakage(kit.spans());
  });

  it('puts baggage into _meta only for a server that propagateTo allows; traceparent always', async () => {
    const allowed = await connectPair({ client: { server: 'mcp://inventory' } });
    const other = await connectPair({ client: { server: 'mcp://billing' } });
    const unnamed = await connectPair();
    const [toAllowed, toOther, toUnnamed] = await withRequestContext({ tenantId: 't1', userId: 'u1' }, () =>
      Promise.all([whoami(allowed.client, 'a'), whoami(other.client, 'b'), whoami(unnamed.client, 'c')]),
    );
    await Promise.all([allowed.close(), other.close(), unnamed.close()]);

    expect(toAllowed.meta.baggage).toEqual(expect.stringContaining('isotrace.tenant_id=t1'));
    expect(toAllowed.meta.baggage).toEqual(expect.stringContaining('isotrace.user_id=u1'));
    for (const seen of [toOther, toUnnamed]) {
      expect(seen.meta).not.toHaveProperty('baggage');
      expect(seen.meta.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    }
  });

  it('never edits the caller\'s params: a _meta object reused by two requests carries neither one\'s context', async () => {
    const pair = await connectPair({ client: { server: 'mcp://inventory' } });
    const meta = { 'example.com/source': 'agent' };
    const first = await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => whoami(pair.client, 'a', meta));
    const second = await withRequestContext({ tenantId: 't2', userId: 'u2' }, () => whoami(pair.client, 'b', meta));
    await pair.close();

    expect(meta).toEqual({ 'example.com/source': 'agent' });
    expect(first.meta['example.com/source']).toBe('agent');
    expect(first.meta.baggage).toEqual(expect.stringContaining('isotrace.tenant_id=t1'));
    expect(second.meta.baggage).toEqual(expect.stringContaining('isotrace.tenant_id=t2'));
    expect(second.meta.baggage).not.toContain('t1');
  });

  it('rejects a tools/call outside a request with RequestContextMissingError before it reaches the server; tools/list at start-up works', async () => {
    const pair = await connectPair({ client: { server: 'mcp://inventory' } });
    const { tools } = await pair.client.listTools();
    const outside = pair.client.callTool({ name: 'whoami', arguments: { label: 'nobody' } });
    await expect(outside).rejects.toBeInstanceOf(RequestContextMissingError);
    await pair.close();

    expect(tools.map((tool) => tool.name)).toContain('whoami');
    expect(pair.handlerRuns).toBe(0);
    expect(spansNamed(kit.spans(), 'tools/call whoami')).toEqual([]);
  });

  it('inside an execute_tool span of the same tool, adds the MCP attributes to it instead of a second span', async () => {
    const pair = await connectPair({ client: { server: 'mcp://inventory' } });
    const remote = defineTool({ name: 'whoami', execute: (args: { label: string }) => pair.client.callTool({ name: 'whoami', arguments: args }) });
    const renamed = defineTool({ name: 'ask_inventory', execute: (args: { label: string }) => pair.client.callTool({ name: 'whoami', arguments: args }) });
    const [same, other] = await withRequestContext({ tenantId: 't1', userId: 'u1' }, async () => {
      const { dispatcher } = createToolSystem([remote, renamed]);
      return [seenIn(await dispatcher.execute('whoami', { label: 'a' }, { callId: 'call_1' })), seenIn(await dispatcher.execute('ask_inventory', { label: 'b' }))];
    });
    await pair.close();

    const spans = kit.spans();
    const [toolSpan] = spansNamed(spans, 'execute_tool whoami');
    const servers = spansNamed(spans, 'tools/call whoami').filter((span) => span.kind === SpanKind.SERVER);
    const clients = spansNamed(spans, 'tools/call whoami').filter((span) => span.kind === SpanKind.CLIENT);
    expect(toolSpan!.attributes).toMatchObject({ 'gen_ai.tool.call.id': 'call_1', 'mcp.method.name': 'tools/call', 'jsonrpc.request.id': expect.any(String), 'isotrace.audit.result': 'pass' });
    // The enriched span is the one the server continues from.
    expect(servers.map(parentOf)).toContain(toolSpan!.spanContext().spanId);
    expect(same.meta.traceparent).toContain(toolSpan!.spanContext().spanId);
    // A tool of another name is not the MCP call: that call gets its own CLIENT span under it.
    const [renamedSpan] = spansNamed(spans, 'execute_tool ask_inventory');
    expect(clients).toHaveLength(1);
    expect(parentOf(clients[0]!)).toBe(renamedSpan!.spanContext().spanId);
    expect(renamedSpan!.attributes['mcp.method.name']).toBeUndefined();
    expect(other.meta.traceparent).toContain(clients[0]!.spanContext().spanId);
    expectNoCrossRequestLeakage(spans);
  });

  it('marks a tool error result error.type=tool_error and a JSON-RPC error with its code', async () => {
    const pair = await connectPair();
    const result = await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => pair.client.callTool({ name: 'fails', arguments: {} }));
    // The server registers no prompts: prompts/list is answered with JSON-RPC error -32601.
    const listPrompts = withRequestContext({ tenantId: 't1', userId: 'u1' }, () => pair.client.listPrompts());
    await expect(listPrompts).rejects.toMatchObject({ code: -32601 });
    await pair.close();

    expect(result.isError).toBe(true);
    for (const span of spansNamed(kit.spans(), 'tools/call fails')) {
      expect(span.attributes['error.type']).toBe('tool_error');
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
    }
    const [prompts] = spansNamed(kit.spans(), 'prompts/list').filter((span) => span.kind === SpanKind.CLIENT);
    expect(prompts!.attributes).toMatchObject({ 'error.type': '-32601', 'rpc.response.status_code': '-32601' });
    expect(prompts!.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('ends both spans with error.type=cancelled when the caller aborts a call in flight', async () => {
    const started = deferred();
    const release = deferred();
    const pair = await connectPair({
      onCall: async () => {
        started.resolve();
        await release.promise;
      },
    });
    const abort = new AbortController();
    const call = withRequestContext({ tenantId: 't1', userId: 'u1' }, () => pair.client.callTool({ name: 'whoami', arguments: { label: 'slow' } }, undefined, { signal: abort.signal }));
    await started.promise;
    abort.abort(new Error('user went away'));
    await expect(call).rejects.toThrow('user went away');
    const ended = await waitFor(() => {
      const spans = spansNamed(kit.spans(), 'tools/call whoami');
      return spans.length === 2 && spans;
    }, 'both tools/call spans to end');
    release.resolve();
    await pair.close();

    for (const span of ended) expect(span.attributes['error.type']).toBe('cancelled');
  });

  it('throws TypeError for a transport that is not one and for a server that is not a URL', () => {
    expect(() => mcpClientTransport({} as never)).toThrow(TypeError);
    const transport = { start: async () => {}, send: async () => {}, close: async () => {} };
    expect(() => mcpClientTransport(transport, { server: 'inventory' })).toThrow(/option 'server'/);
    expect(() => mcpClientTransport(transport, { server: 'mcp://inventory' })).not.toThrow();
  });
});
