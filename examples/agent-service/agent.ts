/**
 * One agent turn. A real agent asks a model which tools to call; this one
 * plans with a rule (look up every catalogue item the message names, always
 * summarize and remember) so the demo needs no model and stays deterministic.
 * Every turn gets its own tool system (server.ts's systemFor): tools, registry
 * and dispatcher belong to this request alone.
 */
import { getRequestContext } from 'isotrace';
import type { ToolSystem } from 'isotrace/tools';
import { ITEMS, type Item } from '../shared/catalogue.ts';
import type { Summary } from './summarize-worker.ts';
import type { StockAnswer } from './tools.ts';

/** The answer to one chat message (HTTP body, or WebSocket reply with the message's `id`). */
export interface AgentReply {
  requestId: string;
  correlationId: string;
  traceId: string;
  tenantId: string;
  userId: string;
  answer: string;
  stock: StockAnswer[];
  summary: Summary;
  /** How many messages this user has sent (SharedState, per tenant and user). */
  messageCount: number;
}

const ITEM_PATTERN = new RegExp(`\\b(${ITEMS.join('|')})s?\\b`, 'gi');

/** Runs one turn for the current request (call it inside a request context) with the tool system `systemFor()` gives. */
export async function runAgentTurn(message: string, systemFor: () => ToolSystem): Promise<AgentReply> {
  const ctx = getRequestContext();
  const { dispatcher } = systemFor();
  const [stock, summary, messageCount] = await Promise.all([
    Promise.all(itemsIn(message).map((item) => dispatcher.execute<StockAnswer>('inventory_lookup', { item }))),
    dispatcher.execute<Summary>('summarize', { text: message }),
    dispatcher.execute<number>('remember'),
  ]);
  return {
    requestId: ctx.requestId,
    correlationId: ctx.correlationId,
    traceId: ctx.traceId,
    tenantId: ctx.tenantId,
    userId: ctx.userId,
    answer: answerText(stock, summary),
    stock,
    summary,
    messageCount,
  };
}

function itemsIn(message: string): Item[] {
  const found = [...message.matchAll(ITEM_PATTERN)].map((match) => match[1]!.toLowerCase() as Item);
  return [...new Set(found)];
}

function answerText(stock: readonly StockAnswer[], summary: Summary): string {
  if (stock.length === 0) return `You said "${summary.preview}" (${summary.words} words). Ask me about a ${ITEMS.join(', ')}.`;
  return stock.map((s) => `${s.quantity} × ${s.item} in the ${s.warehouse} warehouse`).join('; ');
}
