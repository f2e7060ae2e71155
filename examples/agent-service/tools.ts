/**
 * The agent's tools. The classes are made once per service (they close over
 * its configuration: the inventory URL and the worker pool); createToolSystem()
 * makes fresh instances for every request, so no tool instance is ever shared
 * between two users.
 */
import { Tool, type ToolClass } from 'isotrace/tools';
import type { WorkerPool } from 'isotrace/workers';
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

/** The tool classes of one agent service. */
export function agentTools(config: AgentToolsConfig): ToolClass[] {
  const inventoryBase = config.inventoryUrl.endsWith('/') ? config.inventoryUrl : `${config.inventoryUrl}/`;

  class InventoryLookup extends Tool<{ item: string }, StockAnswer> {
    static override toolName = 'inventory_lookup';
    static override description = 'Looks up how many of an item the tenant has in stock (calls the inventory service).';

    async run({ item }: { item: string }): Promise<StockAnswer> {
      const { tenantId, userId } = this.context;
      // fetch is instrumented: a CLIENT span, traceparent always, baggage only if the host is in propagateTo.
      const response = await fetch(new URL(`stock?item=${encodeURIComponent(item)}`, inventoryBase), {
        headers: { [SERVICE_TOKEN_HEADER]: signServiceToken({ tenantId, userId }, config.serviceSecret) },
        signal: AbortSignal.timeout(config.inventoryTimeoutMs),
      });
      if (!response.ok) throw new Error(`inventory service answered ${response.status}: ${await response.text()}`);
      return (await response.json()) as StockAnswer;
    }
  }

  class Summarize extends Tool<{ text: string }, Summary> {
    static override toolName = 'summarize';
    static override description = 'Summarizes and fingerprints text on a worker thread.';

    run({ text }: { text: string }): Promise<Summary> {
      return config.summarizePool.run<Summary>({ text });
    }
  }

  class Remember extends Tool<Record<string, never>, number> {
    static override toolName = 'remember';
    static override description = "Counts the user's messages in SharedState (per tenant and user).";
    static override type = 'datastore' as const;

    run(): Promise<number> {
      return this.sharedState.update<number>('messages', (count) => (count ?? 0) + 1);
    }
  }

  return [InventoryLookup, Summarize, Remember];
}
