/**
 * mcpServerTransport() in `audit: 'throw'` mode: a tool result about to leave
 * from another request's context may hold that request's data, so the client
 * gets JSON-RPC -32603 `internal error` instead.
 */
import { describe, expect, it } from 'vitest';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { withRequestContext } from 'isotrace';
import { mcpServerTransport } from 'isotrace/mcp';
import { useTestTracing } from 'isotrace/testing';

useTestTracing({ audit: 'throw' });

describe("mcpServerTransport in audit: 'throw' mode", () => {
  it('answers -32603 internal error instead of a result sent from another request\'s context', async () => {
    const sent: JSONRPCMessage[] = [];
    const inner: Transport = { start: async () => {}, close: async () => {}, send: async (message) => void sent.push(message) };
    const traced = mcpServerTransport(inner, { identify: () => ({ tenantId: 'owner', userId: 'u1' }) });
    traced.onmessage = () => {};
    await traced.start();
    inner.onmessage?.({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'lookup', arguments: {} } });
    await withRequestContext({ tenantId: 'other', userId: 'u2' }, () => traced.send({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'owner secret' }] } }));

    expect(sent).toEqual([{ jsonrpc: '2.0', id: 1, error: { code: -32603, message: 'internal error' } }]);
  });
});
