/**
 * A tool's constant span attributes (GenAI name, type, description) are made
 * once per tool class, not once per tool system: every system still shows
 * its own registry id and each class its own statics, as they are when the
 * call runs.
 */
import { describe, it, expect } from 'vitest';
import { withRequestContext } from 'isotrace';
import { useTestTracing } from 'isotrace/testing';
import { createToolSystem, defineTool, Tool } from 'isotrace/tools';
import { toolSpans } from './tool-test-helpers.ts';

const kit = useTestTracing();

const asUser = { tenantId: 'acme', userId: 'u1' };

function makeLookup() {
  return class Lookup extends Tool<unknown, string> {
    static override toolName = 'lookup';
    static override description = 'Looks things up';
    run(): string {
      return 'hit';
    }
  };
}

/** The tool span attributes of one call of `name` through a new tool system of `tools`. */
async function callOnce(tools: Parameters<typeof createToolSystem>[0], name: string): Promise<{ registryId: string; attributes: Record<string, unknown> }> {
  kit.reset();
  const registryId = await withRequestContext(asUser, async () => {
    const system = createToolSystem(tools);
    await system.dispatcher.execute(name, {});
    return system.registryId;
  });
  const [span] = toolSpans(kit);
  return { registryId, attributes: { ...span!.attributes } };
}

describe('tool span attributes across tool systems', () => {
  it("carry each system's own registry id and the class's description and type", async () => {
    const Lookup = makeLookup();
    const first = await callOnce([Lookup], 'lookup');
    const second = await callOnce([Lookup], 'lookup');
    expect(first.registryId).not.toBe(second.registryId);
    for (const call of [first, second]) {
      expect(call.attributes).toMatchObject({
        'isotrace.registry_id': call.registryId,
        'isotrace.audit.result': 'pass',
        'gen_ai.tool.name': 'lookup',
        'gen_ai.tool.type': 'function',
        'gen_ai.tool.description': 'Looks things up',
      });
    }
  });

  it('show a static description or type changed since an earlier system called the tool', async () => {
    const Lookup = makeLookup();
    await callOnce([Lookup], 'lookup');
    Lookup.description = 'Looks things up, faster';
    Lookup.type = 'datastore';
    const later = await callOnce([Lookup], 'lookup');
    expect(later.attributes).toMatchObject({ 'gen_ai.tool.description': 'Looks things up, faster', 'gen_ai.tool.type': 'datastore' });
  });

  it('keep apart two tool classes with the same toolName', async () => {
    const Products = makeLookup();
    const Orders = makeLookup();
    Orders.description = 'Looks up orders';
    Orders.type = 'extension';
    await callOnce([Products], 'lookup');
    const orders = await callOnce([Orders], 'lookup');
    const products = await callOnce([Products], 'lookup');
    expect(orders.attributes).toMatchObject({ 'gen_ai.tool.description': 'Looks up orders', 'gen_ai.tool.type': 'extension' });
    expect(products.attributes).toMatchObject({ 'gen_ai.tool.description': 'Looks things up', 'gen_ai.tool.type': 'function' });
  });

  it('keep apart two defineTool() definitions with the same name', async () => {
    const products = defineTool({ name: 'lookup', description: 'Looks up products', execute: () => 'hit' });
    const orders = defineTool({ name: 'lookup', description: 'Looks up orders', type: 'datastore', execute: () => 'hit' });
    expect((await callOnce([products], 'lookup')).attributes).toMatchObject({ 'gen_ai.tool.description': 'Looks up products', 'gen_ai.tool.type': 'function' });
    expect((await callOnce([orders], 'lookup')).attributes).toMatchObject({ 'gen_ai.tool.description': 'Looks up orders', 'gen_ai.tool.type': 'datastore' });
  });

  it('of an unknown tool name carry the registry id and the name asked for', async () => {
    kit.reset();
    const registryId = await withRequestContext(asUser, async () => {
      const system = createToolSystem([makeLookup()]);
      await expect(system.dispatcher.execute('missing', {})).rejects.toThrow();
      return system.registryId;
    });
    const [span] = toolSpans(kit);
    expect(span!.attributes).toMatchObject({ 'gen_ai.tool.name': 'missing', 'isotrace.registry_id': registryId });
    expect(span!.attributes['gen_ai.tool.description']).toBeUndefined();
  });
});
