/**
 * The agent's tools, as Vercel AI SDK tools. agentTools() makes them once per
 * service (they close over its configuration: the inventory URL and the
 * worker pool, never over a request); server.ts wraps them with
 * isotraceTools(), which runs every call as an audited isotrace tool call of
 * the request that called generateText(), in a tool system of that request's
 * own. Inside `execute`, getRequestContext() and getSharedState() are the
 * calling request's.
 */
import { tool } from 'ai';
import { getRequestContext, getSharedState } from 'isotrace';
import type { WorkerPool } from 'isotrace/workers';
import { z } from 'zod';
import { ITEMS } from '../shared/catalogue.ts';
import { SERVICE_TOKEN_HEADER, signServiceToken } from '../shared/service-token.ts';
import type { Summary } from './summarize-worker.ts';

/** The inventory service's answer to GET /stock. */
export interface StockAnswer {
  tenantId: string;
  item: string;
  quantity: number;
  warehouse: string;
}

/** What the tools need from their service. */
export interface AgentToolsConfig {
  /** Base URL of the inventory service, e.g. http://127.0.0.1:8081. */
  inventoryUrl: string;
  /** How long a lookup waits for the inventory service, in ms. */
  inventoryTimeoutMs: number;
  /** The secret the inventory service verifies service tokens with. */
  serviceSecret: string;
  /** The pool running summarize-worker.ts. */
  summarizePool: WorkerPool;
}

/** The agent's AI SDK tool set, as agentTools() makes it. */
export type AgentTools = ReturnType<typeof agentTools>;

/** The tools of one agent service: `inventory_lookup`, `summarize` and `remember`. */
export function agentTools(config: AgentToolsConfig) {
  const inventoryBase = config.inventoryUrl.endsWith('/') ? config.inventoryUrl : `${config.inventoryUrl}/`;

  return {
    inventory_lookup: tool({
      description: 'Looks up how many of an item the tenant has in stock (calls the inventory service).',
      // The model's input is untrusted: only catalogue items reach the inventory service.
      inputSchema: z.object({ item: z.enum(ITEMS) }),
      execute: async ({ item }, { abortSignal }): Promise<StockAnswer> => {
        const { tenantId, userId } = getRequestContext();
        const timeout = AbortSignal.timeout(config.inventoryTimeoutMs);
        // fetch is instrumented: a CLIENT span, traceparent always, baggage only if the host is in propagateTo.
        const response = await fetch(new URL(`stock?item=${encodeURIComponent(item)}`, inventoryBase), {
          headers: { [SERVICE_TOKEN_HEADER]: signServiceToken({ tenantId, userId }, config.serviceSecret) },
          signal: abortSignal ? AbortSignal.any([timeout, abortSignal]) : timeout,
        });
        if (!response.ok) throw new Error(`inventory service answered ${response.status}: ${await response.text()}`);
        return (await response.json()) as StockAnswer;
      },
    }),

    summarize: tool({
      description: 'Summarizes and fingerprints text on a worker thread.',
      inputSchema: z.object({ text: z.string() }),
      // The pool carries the request context: the worker sees this request's tenant and user.
      execute: ({ text }): Promise<Summary> => config.summarizePool.run<Summary>({ text }),
    }),

    remember: tool({
      description: "Counts the user's messages in SharedState (per tenant and user).",
      inputSchema: z.object({}),
      execute: (): Promise<number> => getSharedState().update<number>('messages', (count) => (count ?? 0) + 1),
    }),
  };
}
