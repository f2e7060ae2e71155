/**
 * Simulated users: each user of each tenant holds a short chat session, half
 * over HTTP and half over one WebSocket, all users at once. Every reply is
 * checked to be for its own tenant and user. Runs with tracing suppressed: the
 * users are outside the system, so each request starts its own trace.
 */
import { context } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import { chatOverHttp, openChatSocket, type AgentReply, type ChatIdentity } from '../shared/chat-client.ts';
import { ITEMS } from '../shared/catalogue.ts';

export interface LoadOptions {
  agentUrl: string;
  wsUrl: string;
  tenants: number;
  users: number;
  turns: number;
  onProgress(done: number, total: number, failures: number): void;
}

export interface LoadResult {
  requests: number;
  http: number;
  websocket: number;
  failures: string[];
  /** Replies that answered for another tenant or user than the one who asked. */
  crossed: number;
  replies: AgentReply[];
}

export function runLoad(options: LoadOptions): Promise<LoadResult> {
  return context.with(suppressTracing(context.active()), () => simulate(options));
}

async function simulate(options: LoadOptions): Promise<LoadResult> {
  const total = options.users * options.turns;
  const result: LoadResult = { requests: 0, http: 0, websocket: 0, failures: [], crossed: 0, replies: [] };
  const record = (identity: ChatIdentity, reply: AgentReply): void => {
    result.replies.push(reply);
    if (reply.tenantId !== identity.tenantId || reply.userId !== identity.userId) result.crossed++;
  };
  const progress = (): void => options.onProgress(result.requests, total, result.failures.length);

  await Promise.all(
    Array.from({ length: options.users }, async (_, u) => {
      const identity = { tenantId: `tenant-${u % options.tenants}`, userId: `user-${u}` };
      const overSocket = u % 2 === 1;
      const socket = overSocket ? await openChatSocket(options.wsUrl, identity, 'headers') : undefined;
      try {
        for (let turn = 0; turn < options.turns; turn++) {
          const message = messageFor(u, turn);
          try {
            if (socket) {
              const reply = await socket.ask(turn, message);
              if ('error' in reply) throw new Error(reply.error);
              record(identity, reply);
              result.websocket++;
            } else {
              record(identity, await chatOverHttp(options.agentUrl, identity, message));
              result.http++;
            }
          } catch (error) {
            result.failures.push(`${identity.tenantId}/${identity.userId}: ${(error as Error).message}`);
          }
          result.requests++;
          progress();
        }
      } finally {
        await socket?.close();
      }
    }),
  );
  return result;
}

function messageFor(user: number, turn: number): string {
  const item = ITEMS[(user + turn) % ITEMS.length];
  const other = ITEMS[(user * 3 + turn + 1) % ITEMS.length];
  return turn % 3 === 2 ? `Thanks! Please note that I prefer the ${item}.` : `How many ${item}s and ${other}s do we have in stock?`;
}

/** A one-line progress bar on a terminal; a line every 10% otherwise. */
export function progressBar(out: NodeJS.WriteStream): (done: number, total: number, failures: number) => void {
  let lastDecile = -1;
  return (done, total, failures) => {
    const width = 30;
    const filled = Math.round((done / total) * width);
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} requests${failures ? `, ${failures} failed` : ''}`;
    if (out.isTTY) {
      out.write(`\r${line}${done === total ? '\n' : ''}`);
      return;
    }
    const decile = Math.floor((done / total) * 10);
    if (decile !== lastDecile) {
      lastDecile = decile;
      out.write(`${line}\n`);
    }
  };
}
