/**
 * mcpServerTransport() with the real MCP SDK McpServer: every inbound request
 * runs in its own request context whose identity comes from identify() only
 * (never from a peer's `_meta`), a refused request never reaches its handler,
 * and the response is audited where it is sent.
 */
import { describe, expect, it } from 'vitest';
import { SpanKind } from '@opentelemetry/api';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { withRequestContext } from 'isotrace';
import { mcpServerTransport, type McpIdentifyInfo } from 'isotrace/mcp';
import { expectNoCrossRequestLeakage, useTestTracing } from 'isotrace/testing';
import { deferred } from '../../helpers/random.js';
import { connectPair, parentOf, spansNamed, whoami } from './mcp-pair.js';

const kit = useTestTracing();

const FORGED = {
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  baggage: 'isotrace.tenant_id=victim,isotrace.user_id=admin,isotrace.correlation_id=forged-correlation',
};

describe('mcpServerTransport', () => {
  it('takes identity from identify(), never from a peer that forges _meta baggage; it still continues the trace', async () => {
    const asked: McpIdentifyInfo[] = [];
    const pair = await connectPair({
      wrapClient: false,
      server: {
        identify: (info) => {
          asked.push(info);
          return { tenantId: 'server-tenant', userId: 'server-user' };
        },
      },
    });
    const seen = await whoami(pair.client, 'forged', FORGED);
    await pair.close();

    expect(seen).toMatchObject({ tenantId: 'server-tenant', userId: 'server-user' });
    expect(seen.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    // An untrusted peer's correlation id is taken when valid, like the HTTP header: it is not identity.
    expect(seen.correlationId).toBe('forged-correlation');
    expect(asked.every((info) => info.trustedIdentity === undefined)).toBe(true);
    const [server] = spansNamed(kit.spans(), 'tools/call whoami');
    expect(server!.kind).toBe(SpanKind.SERVER);
    expect(server!.attributes).toMatchObject({ 'isotrace.tenant_id': 'server-tenant', 'user.id': 'server-user', 'isotrace.request_span': true, 'isotrace.audit.result': 'pass' });
    expect(parentOf(server!)).toBe('b7ad6b7169203331');
  });

  it('offers a trusted peer\'s _meta identity to identify() as trustedIdentity, and keeps its baggage', async () => {
    const pair = await connectPair({
      wrapClient: false,
      server: {
        trustInbound: ({ method }) => method === 'tools/call',
        identify: ({ trustedIdentity }) => trustedIdentity ?? { tenantId: 'server-tenant', userId: 'server-user' },
      },
    });
    const seen = await whoami(pair.client, 'trusted', { ...FORGED, baggage: `${FORGED.baggage},example.plan=gold` });
    await pair.close();

    expect(seen).toMatchObject({ tenantId: 'victim', userId: 'admin' });
    expect(spansNamed(kit.spans(), 'tools/call whoami')[0]!.attributes['isotrace.tenant_id']).toBe('victim');
  });

  it('refuses a request identify() does not identify (or throws for) with -32003 unauthenticated; the handler never runs', async () => {
    const pair = await connectPair({
      server: {
        identify: ({ method }) => {
          if (method === 'tools/call') throw new Error('token expired');
          return method === 'tools/list' ? undefined : { tenantId: 'server-tenant', userId: 'server-user' };
        },
      },
    });
    const call = withRequestContext({ tenantId: 't1', userId: 'u1' }, () => whoami(pair.client, 'x'));
    await expect(call).rejects.toMatchObject({ code: -32003, message: expect.stringContaining('unauthenticated') });
    await expect(pair.client.listTools()).rejects.toMatchObject({ code: -32003 });
    await pair.close();

    expect(pair.handlerRuns).toBe(0);
    expect(spansNamed(kit.spans(), 'tools/call whoami').filter((span) => span.kind === SpanKind.SERVER)).toEqual([]);
  });

  it('runs concurrent requests of one connection each in its own request context, identified asynchronously', async () => {
    let next = 0;
    const pair = await connectPair({
      server: {
        identify: async () => {
          const n = next++;
          await new Promise((resolve) => setTimeout(resolve, (n * 7) % 5));
          return { tenantId: `tenant-${n % 3}`, userId: `user-${n}` };
        },
      },
      onCall: (label) => new Promise((resolve) => setTimeout(resolve, Number(label) % 4)),
    });
    const seen = await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => Promise.all(Array.from({ length: 20 }, (_, i) => whoami(pair.client, String(i)))));
    await pair.close();

    const servers = spansNamed(kit.spans(), 'tools/call whoami').filter((span) => span.kind === SpanKind.SERVER);
    expect(new Set(seen.map((s) => s.requestId)).size).toBe(20);
    for (const s of seen) {
      const span = servers.find((candidate) => candidate.attributes['isotrace.request_id'] === s.requestId);
      expect(span!.attributes).toMatchObject({ 'isotrace.tenant_id': s.tenantId, 'user.id': s.userId });
    }
    expectNoCrossRequestLeakage(kit.spans());
  });

  it('never runs a request the client cancelled while identify() was still deciding', async () => {
    const identifying = deferred();
    const decide = deferred<{ tenantId: string; userId: string }>();
    const pair = await connectPair({
      server: {
        identify: ({ method }) => {
          if (method !== 'tools/call') return { tenantId: 'server-tenant', userId: 'server-user' };
          identifying.resolve();
          return decide.promise;
        },
      },
    });
    const abort = new AbortController();
    const call = withRequestContext({ tenantId: 't1', userId: 'u1' }, () => pair.client.callTool({ name: 'whoami', arguments: { label: 'late' } }, undefined, { signal: abort.signal }));
    await identifying.promise;
    abort.abort(new Error('caller gave up'));
    await expect(call).rejects.toThrow('caller gave up');
    decide.resolve({ tenantId: 'server-tenant', userId: 'server-user' });
    // A later call on the same connection completes: by then the cancelled one would have run.
    const after = await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => pair.client.listTools());
    await pair.close();

    expect(after.tools.length).toBeGreaterThan(0);
    expect(pair.handlerRuns).toBe(0);
  });

  it('records a context-owner violation when a response is sent from another request\'s context', async () => {
    const { transport, sent, deliver } = fakeTransport();
    const traced = mcpServerTransport(transport, { identify: () => ({ tenantId: 'owner', userId: 'u1' }) });
    const received: JSONRPCMessage[] = [];
    traced.onmessage = (message) => received.push(message);
    await traced.start();
    deliver({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'lookup', arguments: {} } });
    expect(received).toHaveLength(1);
    // A server that answers from a queue shared by requests: the answer leaves in another request's context.
    await withRequestContext({ tenantId: 'other', userId: 'u2' }, () => traced.send({ jsonrpc: '2.0', id: 7, result: { content: [] } }));

    expect(sent).toHaveLength(1);
    const [server] = spansNamed(kit.spans(), 'tools/call lookup');
    expect(server!.attributes['isotrace.audit.result']).toBe('violation');
    expect(server!.events.map((event) => event.attributes?.['isotrace.audit.check'])).toContain('context-owner');
    expect(() => expectNoCrossRequestLeakage(kit.spans())).toThrow(/context-owner/);
  });

  it('throws TypeError naming the option for a missing identify or a trustInbound that is not a function', () => {
    const { transport } = fakeTransport();
    expect(() => mcpServerTransport(transport, {} as never)).toThrow(/'identify'/);
    expect(() => mcpServerTransport(transport, { identify: () => undefined, trustInbound: true as never })).toThrow(/'trustInbound'/);
  });
});

/** A transport whose inbound messages the test delivers and whose sent messages it reads. */
function fakeTransport(): { transport: Transport; sent: JSONRPCMessage[]; deliver(message: JSONRPCMessage): void } {
  const sent: JSONRPCMessage[] = [];
  const transport: Transport = {
    start: async () => {},
    close: async () => {},
    send: async (message) => {
      sent.push(message);
    },
  };
  return { transport, sent, deliver: (message) => transport.onmessage?.(message) };
}
