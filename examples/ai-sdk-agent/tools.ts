// The agent's tools: plain AI SDK tools, wrapped once at module level by isotraceTools().
// Each request still gets its own tool system, made at its first tool call.
import { tool } from 'ai';
import { getRequestContext } from 'isotrace';
import { isotraceTools } from 'isotrace/ai-sdk';
import { z } from 'zod';

/** What a tool saw of its request, so main.ts can show that every call ran in its own. */
export interface Sighting {
  tool: string;
  callId: string;
  requestId: string;
  who: string;
}

export const sightings: Sighting[] = [];

function seen(tool: string, callId: string): void {
  const { requestId, tenantId, userId } = getRequestContext();
  sightings.push({ tool, callId, requestId, who: `${tenantId}/${userId}` });
}

export const tools = isotraceTools({
  order_status: tool({
    description: 'Status of one of the tenant’s orders',
    inputSchema: z.object({ orderId: z.string() }),
    execute: async ({ orderId }, { toolCallId }) => {
      seen('order_status', toolCallId);
      // The tenant's own data, read through the request's SharedState (tenant/user scoped).
      const orders = ((await getRequestContext().sharedState.get('orders')) ?? {}) as Record<string, string>;
      await new Promise((resolve) => setTimeout(resolve, orderId.length * 3));
      return { orderId, status: orders[orderId] ?? 'unknown' };
    },
  }),
  export_report: tool({
    description: 'Builds a report, streaming its progress',
    inputSchema: z.object({ pages: z.number() }),
    // A streaming tool: each yield reaches streamText() as a preliminary tool result.
    async *execute({ pages }, { toolCallId }) {
      for (let page = 1; page <= pages; page++) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        seen('export_report', toolCallId);
        yield { page, of: pages };
      }
    },
  }),
});
