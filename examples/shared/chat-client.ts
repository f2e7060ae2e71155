/**
 * Chat clients for the agent service (examples/agent-service): POST /chat, and
 * a WebSocket whose replies are matched by message id. Used by the demo's load
 * generator and by the integration tests.
 */
import { once } from 'node:events';
import WebSocket from 'ws';
import type { AgentReply } from '../agent-service/agent.ts';

export type { AgentReply };

/** Who a client acts for (the agent's stand-in auth). */
export interface ChatIdentity {
  tenantId: string;
  userId: string;
}

/** POST /chat as `identity`; rejects on a non-200 answer. */
export async function chatOverHttp(agentUrl: string, identity: ChatIdentity, message: string): Promise<AgentReply> {
  const response = await fetch(`${agentUrl}/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-tenant-id': identity.tenantId, 'x-user-id': identity.userId },
    body: JSON.stringify({ message }),
  });
  const body = await response.text();
  if (response.status !== 200) throw new Error(`POST /chat as ${identity.tenantId}/${identity.userId} answered ${response.status}: ${body}`);
  return JSON.parse(body) as AgentReply;
}

/** A WebSocket reply: the agent's reply with the message's id, or an error. */
export type SocketReply = (AgentReply & { id: number }) | { id?: number; error: string };

/** An open chat socket; `ask` sends `{ id, message }` and resolves with the reply carrying that id. */
export interface ChatSocket {
  ask(id: number, message: string): Promise<SocketReply>;
  close(): Promise<void>;
}

/**
 * Opens `/ws` as `identity`, sent as x-tenant-id/x-user-id upgrade headers or
 * as `?tenant=…&user=…` (how browsers, which cannot set headers, would do it).
 */
export async function openChatSocket(wsUrl: string, identity: ChatIdentity, via: 'headers' | 'query'): Promise<ChatSocket> {
  const url = new URL(wsUrl);
  if (via === 'query') {
    url.searchParams.set('tenant', identity.tenantId);
    url.searchParams.set('user', identity.userId);
  }
  const headers = via === 'headers' ? { 'x-tenant-id': identity.tenantId, 'x-user-id': identity.userId } : {};
  const ws = new WebSocket(url, { headers });
  await once(ws, 'open');
  const pending = new Map<number, (reply: SocketReply) => void>();
  ws.on('message', (data) => {
    const reply = JSON.parse(String(data)) as SocketReply;
    const resolve = typeof reply.id === 'number' ? pending.get(reply.id) : undefined;
    if (!resolve) throw new Error(`unexpected WebSocket reply: ${String(data).slice(0, 300)}`);
    pending.delete(reply.id!);
    resolve(reply);
  });
  return {
    ask: (id, message) =>
      new Promise((resolve) => {
        pending.set(id, resolve);
        ws.send(JSON.stringify({ id, message }));
      }),
    close: async () => {
      if (ws.readyState === WebSocket.CLOSED) return;
      const closed = once(ws, 'close');
      ws.close();
      await closed;
    },
  };
}
