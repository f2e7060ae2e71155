/**
 * The example agent service (what `npm start` runs) drives each turn through
 * the Vercel AI SDK: generateText() with the scripted planner model, tools
 * wrapped by isotraceTools(). Concurrent requests of many tenants must each
 * run the model's tool calls (its call ids) as audited tool calls of their
 * own request, in a tool system of their own; and the planted
 * global-registry bug (--plant-leak global-registry) must still be caught.
 *
 * Replay a failure with ISOTRACE_TEST_SEED=<printed seed>.
 */
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditSpans, expectNoCrossRequestLeakage, setupTestTracing, type TestTracing } from 'isotrace/testing';
import { createAgentService, type AgentService } from '../../examples/agent-service/server.ts';
import { createInventoryService, type InventoryService } from '../../examples/inventory-service/server.ts';
import { ITEMS } from '../../examples/shared/catalogue.ts';
import { waitFor } from '../helpers/http.ts';
import { createRandom, delay, testSeed } from '../helpers/random.ts';
import { chatOverHttp, type AgentReply, type ChatIdentity } from '../helpers/services.ts';

const REQUESTS = 60;
const TENANTS = 10;

interface Turn extends ChatIdentity {
  items: string[];
  reply: AgentReply;
}

/** REQUESTS concurrent chats of TENANTS tenants, each naming two different items, started at random moments. */
async function chat(agent: AgentService, seed: number): Promise<Turn[]> {
  const random = createRandom(seed);
  return Promise.all(
    Array.from({ length: REQUESTS }, async (_, i) => {
      const [first, second] = random.shuffle(ITEMS);
      const identity = { tenantId: `tenant-${i % TENANTS}`, userId: `user-${i}` };
      const wait = random.int(0, 20);
      await delay(wait);
      return { ...identity, items: [first!, second!], reply: await chatOverHttp(agent.url, identity, `How many ${first}s and ${second}s do we have?`) };
    }),
  );
}

function toolSpansOf(spans: readonly ReadableSpan[], traceId: string): ReadableSpan[] {
  return spans
    .filter((span) => span.spanContext().traceId === traceId && span.attributes['gen_ai.operation.name'] === 'execute_tool')
    .sort((a, b) => String(a.attributes['gen_ai.tool.call.id']).localeCompare(String(b.attributes['gen_ai.tool.call.id'])));
}

describe('the example agent service on the Vercel AI SDK', () => {
  const seed = testSeed();
  let kit: TestTracing;
  let inventory: InventoryService;

  beforeAll(async () => {
    console.log(`agent-service-ai-sdk seed: ${seed} (replay with ISOTRACE_TEST_SEED=${seed})`);
    inventory = await createInventoryService();
    kit = await setupTestTracing({ propagateTo: [new URL(inventory.url).host] });
  });
  afterAll(async () => {
    await inventory?.close();
    await kit?.shutdown();
  });

  async function settledSpans(): Promise<ReadableSpan[]> {
    // A SERVER span ends once its response is flushed, which can be just after the client read it.
    return waitFor(() => {
      const spans = kit.spans();
      return spans.filter((span) => span.attributes['isotrace.request_span'] === true && span.attributes['url.path'] === '/chat').length >= REQUESTS && spans;
    }, `${REQUESTS} agent request spans`);
  }

  it("runs the planner model's tool calls (call_1…call_4) as audited tool calls of each request, in a tool system per request", async () => {
    const agent = await createAgentService({ inventoryUrl: inventory.url, inventoryTimeoutMs: 60_000 });
    try {
      kit.reset();
      const turns = await chat(agent, seed);
      const spans = await settledSpans();
      expectNoCrossRequestLeakage(spans);
      const registries = new Set<unknown>();
      for (const { tenantId, userId, items, reply } of turns) {
        const who = `${tenantId}/${userId}`;
        expect(`${reply.tenantId}/${reply.userId}`, who).toBe(who);
        expect(reply.stock.map((s) => `${s.tenantId}:${s.item}`), who).toEqual(items.map((item) => `${tenantId}:${item}`));
        // The answer is the model's second step, written from the tool results it was sent.
        expect(reply.answer, who).toBe(reply.stock.map((s) => `${s.quantity} × ${s.item} in the ${s.warehouse} warehouse`).join('; '));
        expect(reply.summary).toMatchObject({ tenantId, userId, requestId: reply.requestId });

        const tools = toolSpansOf(spans, reply.traceId);
        expect(tools.map((span) => [span.attributes['gen_ai.tool.call.id'], span.attributes['gen_ai.tool.name']]), who).toEqual([
          ['call_1', 'inventory_lookup'],
          ['call_2', 'inventory_lookup'],
          ['call_3', 'summarize'],
          ['call_4', 'remember'],
        ]);
        for (const span of tools) expect(span.attributes, who).toMatchObject({ 'isotrace.request_id': reply.requestId, 'isotrace.tenant_id': tenantId, 'user.id': userId, 'isotrace.audit.result': 'pass' });
        const registryIds = new Set(tools.map((span) => span.attributes['isotrace.registry_id']));
        expect(registryIds.size, who).toBe(1);
        registries.add([...registryIds][0]);
      }
      expect(registries.size).toBe(REQUESTS);
    } finally {
      await agent.close();
    }
  }, 120_000);

  it('with the planted global-registry leak, one tool system serves every request and the audits report context-owner violations', async () => {
    const agent = await createAgentService({ inventoryUrl: inventory.url, inventoryTimeoutMs: 60_000, plantLeak: 'global-registry' });
    try {
      kit.reset();
      await chat(agent, seed ^ 0x1ea4);
      const spans = await settledSpans();
      const tools = spans.filter((span) => span.attributes['gen_ai.operation.name'] === 'execute_tool');
      expect(tools).toHaveLength(REQUESTS * 4);
      expect(new Set(tools.map((span) => span.attributes['isotrace.registry_id'])).size).toBe(1);
      const report = auditSpans(spans);
      expect(report.ok).toBe(false);
      expect(report.violationsByCheck['context-owner']).toBeGreaterThan(0);
    } finally {
      await agent.close();
    }
  }, 120_000);
});
