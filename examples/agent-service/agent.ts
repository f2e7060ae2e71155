/**
 * One agent turn on the Vercel AI SDK: generateText() with the planner model
 * (a scripted mock, see planner-model.ts) and the agent's tools. The model
 * asks for its tool calls in one step, the SDK runs them in parallel, and the
 * model answers from their results. The tools come wrapped by isotraceTools()
 * (server.ts): each call runs in a tool system of this request's own, in an
 * audited `execute_tool` span with the model's call id.
 */
import { generateText, isStepCount } from 'ai';
import { getRequestContext } from 'isotrace';
import { plannerModel } from './planner-model.ts';
import type { Summary } from './summarize-worker.ts';
import type { AgentTools, StockAnswer } from './tools.ts';

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

/** Runs one turn for the current request (call it inside a request context) with the service's tool set. */
export async function runAgentTurn(message: string, tools: AgentTools): Promise<AgentReply> {
  const ctx = getRequestContext();
  // Two steps: the tool calls, then the answer.
  const result = await generateText({ model: plannerModel(), tools, prompt: message, stopWhen: isStepCount(2) });
  const parts = result.steps.flatMap((step) => step.content);
  // The SDK hands a failed tool to the model as a tool-error; this agent fails the turn, as before, with the tool's own error.
  const failed = parts.find((part) => part.type === 'tool-error');
  if (failed) throw failed.error;
  const outputs = parts.flatMap((part) => (part.type === 'tool-result' ? [part] : []));
  const summary = outputs.find((part) => part.toolName === 'summarize')?.output as Summary | undefined;
  const messageCount = outputs.find((part) => part.toolName === 'remember')?.output as number | undefined;
  if (summary === undefined || messageCount === undefined) throw new Error(`the model did not call summarize and remember (it called: ${outputs.map((part) => part.toolName).join(', ') || 'nothing'})`);
  return {
    requestId: ctx.requestId,
    correlationId: ctx.correlationId,
    traceId: ctx.traceId,
    tenantId: ctx.tenantId,
    userId: ctx.userId,
    answer: result.text,
    // In the order the model asked (`parts` follows the calls).
    stock: outputs.filter((part) => part.toolName === 'inventory_lookup').map((part) => part.output as StockAnswer),
    summary,
    messageCount,
  };
}
