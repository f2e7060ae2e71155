import { describe, expect, it } from 'vitest';
import { SpanStatusCode } from '@opentelemetry/api';
import { getRequestContext, RequestContextMissingError, withRequestContext, type RequestContext, type SharedState } from 'isotrace';
import { expectNoCrossRequestLeakage, useTestTracing } from 'isotrace/testing';
import { createToolSystem, Tool, ToolDefinitionError, UnknownToolError, type ToolClass, type ToolType } from 'isotrace/tools';
import { createRandom, delay, testSeed } from '../../helpers/random.ts';
import { Echo, onlySpan } from './tool-test-helpers.ts';

const kit = useTestTracing();

const asUser = { tenantId: 't1', userId: 'u1' };

class Search extends Tool<{ q: string }, string[]> {
  static override toolName = 'search';
  static override description = 'Searches the catalogue';

  run({ q }: { q: string }): string[] {
    return [`hit for ${q}`];
  }
}

class Vault extends Tool {
  static override toolName = 'vault';
  static override description = 'Reads the vault';
  static override type: ToolType = 'datastore';

  run(): null {
    return null;
  }
}

/** Reports what a tool sees of its request from inside `run`. */
class WhoAmI extends Tool<void, { owner: RequestContext; state: SharedState }> {
  static override toolName = 'whoami';

  run(): { owner: RequestContext; state: SharedState } {
    return { owner: this.context, state: this.sharedState };
  }
}

describe('createToolSystem: where it may be called', () => {
  it('throws RequestContextMissingError outside a request, telling how to fix it', () => {
    expect(() => createToolSystem([Echo])).toThrow(RequestContextMissingError);
    expect(() => createToolSystem([Echo])).toThrow(/withRequestContext/);
  });

  it('works inside a request and carries its correlation id', async () => {
    await withRequestContext({ ...asUser, correlationId: 'corr-42' }, () => {
      const system = createToolSystem([Echo]);
      expect(system.correlationId).toBe('corr-42');
      expect(system.tools).toHaveLength(1);
    });
  });
});

describe('createToolSystem: registry id', () => {
  it('is user_<userId>_<requestId>_<n>, numbering the systems of one request 1, 2, 3', async () => {
    await withRequestContext({ tenantId: 't1', userId: 'alice', requestId: 'req-7' }, () => {
      const ids = [createToolSystem([Echo]), createToolSystem([Echo]), createToolSystem([Echo])].map((system) => system.registryId);
      expect(ids).toEqual(['user_alice_req-7_1', 'user_alice_req-7_2', 'user_alice_req-7_3']);
    });
  });

  it('is the same on the system, its registry and its dispatcher', async () => {
    await withRequestContext(asUser, () => {
      const system = createToolSystem([Echo]);
      expect(system.registry.registryId).toBe(system.registryId);
      expect(system.dispatcher.registryId).toBe(system.registryId);
    });
  });

  it('is unique across requests, each starting its own numbering', async () => {
    const ids = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        withRequestContext({ tenantId: 't1', userId: `u${i % 3}` }, (ctx) => {
          const id = createToolSystem([Echo]).registryId;
          expect(id).toBe(`user_${ctx.userId}_${ctx.requestId}_1`);
          return id;
        }),
      ),
    );
    expect(new Set(ids).size).toBe(50);
  });
});

describe('createToolSystem: registry', () => {
  it('get/has find tools by name; list() gives name, description and type', async () => {
    await withRequestContext(asUser, () => {
      const { registry, tools } = createToolSystem([Search, Vault, Echo]);
      expect(registry.has('search')).toBe(true);
      expect(registry.has('nope')).toBe(false);
      expect(registry.get('search')).toBeInstanceOf(Search);
      expect(registry.get('nope')).toBeUndefined();
      expect(registry.list()).toEqual([
        { name: 'search', description: 'Searches the catalogue', type: 'function' },
        { name: 'vault', description: 'Reads the vault', type: 'datastore' },
        { name: 'echo', description: 'Returns its arguments', type: 'function' },
      ]);
      expect(tools).toEqual([registry.get('search'), registry.get('vault'), registry.get('echo')]);
    });
  });

  it('defaults description to an empty string', async () => {
    await withRequestContext(asUser, () => {
      expect(createToolSystem([WhoAmI]).registry.list()).toEqual([{ name: 'whoami', description: '', type: 'function' }]);
    });
  });

  it('creates fresh tool instances for every system, in one request and across requests', async () => {
    const [first, second] = await withRequestContext(asUser, () => [createToolSystem([Search]), createToolSystem([Search])]);
    const third = await withRequestContext(asUser, () => createToolSystem([Search]));
    const instances = [first, second, third].map((system) => system.registry.get('search'));
    expect(new Set(instances).size).toBe(3);
  });
});

describe('createToolSystem: bad definitions', () => {
  it('rejects the execution of an unknown tool with UnknownToolError listing the known ones, and the span records it', async () => {
    const error = await withRequestContext(asUser, async () => {
      const { dispatcher } = createToolSystem([Search, Echo]);
      return dispatcher.execute('serach', { q: 'x' }).catch((e: unknown) => e);
    });
    expect(error).toBeInstanceOf(UnknownToolError);
    expect((error as UnknownToolError).toolName).toBe('serach');
    expect((error as Error).message).toMatch(/'serach'/);
    expect((error as Error).message).toMatch(/search, echo/);

    const span = onlySpan(kit, 'execute_tool serach');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['error.type']).toBe('UnknownToolError');
    expect(span.events.some((event) => event.name === 'exception')).toBe(true);
  });

  it('throws ToolDefinitionError for two tools with the same toolName', async () => {
    class OtherSearch extends Tool {
      static override toolName = 'search';
      run(): void {}
    }
    await withRequestContext(asUser, () => {
      expect(() => createToolSystem([Search, OtherSearch])).toThrow(ToolDefinitionError);
      expect(() => createToolSystem([Search, OtherSearch])).toThrow(/'search'/);
    });
  });

  it('throws ToolDefinitionError for a class without toolName, naming the class', async () => {
    class Nameless extends Tool {
      run(): void {}
    }
    await withRequestContext(asUser, () => {
      expect(() => createToolSystem([Nameless])).toThrow(ToolDefinitionError);
      expect(() => createToolSystem([Nameless])).toThrow(/Nameless has no static toolName/);
    });
  });

  it('throws ToolDefinitionError for a class that does not extend Tool', async () => {
    class Impostor {
      static toolName = 'impostor';
      static description = '';
      static type: ToolType = 'function';
      run(): void {}
    }
    await withRequestContext(asUser, () => {
      expect(() => createToolSystem([Impostor as unknown as ToolClass])).toThrow(ToolDefinitionError);
      expect(() => createToolSystem([Impostor as unknown as ToolClass])).toThrow(/Impostor is not a subclass of Tool/);
      expect(() => createToolSystem([(() => 1) as unknown as ToolClass])).toThrow(ToolDefinitionError);
    });
  });

  it('throws ToolDefinitionError for a static type other than function, extension or datastore', async () => {
    class Odd extends Tool {
      static override toolName = 'odd';
      static override type = 'plugin' as unknown as ToolType;
      run(): void {}
    }
    await withRequestContext(asUser, () => {
      expect(() => createToolSystem([Odd])).toThrow(ToolDefinitionError);
      expect(() => createToolSystem([Odd])).toThrow(/Odd\.type/);
    });
  });

  it('throws ToolDefinitionError when not given an array', async () => {
    await withRequestContext(asUser, () => {
      expect(() => createToolSystem(Echo as unknown as ToolClass[])).toThrow(ToolDefinitionError);
    });
  });
});

describe('Tool: context and sharedState', () => {
  it('this.context is the owning request and this.sharedState the active request’s SharedState', async () => {
    await withRequestContext({ tenantId: 't-own', userId: 'u-own' }, async (ctx) => {
      const seen = await createToolSystem([WhoAmI]).dispatcher.execute<{ owner: RequestContext; state: SharedState }>('whoami');
      expect(seen.owner).toBe(ctx);
      expect(seen.state).toBe(ctx.sharedState);
      expect(seen.state.scope).toEqual({ tenantId: 't-own', userId: 'u-own' });
    });
  });

  it('this.sharedState throws RequestContextMissingError when run is called outside any request', async () => {
    const tool = await withRequestContext(asUser, () => createToolSystem([WhoAmI]).registry.get('whoami') as WhoAmI);
    expect(() => tool.run()).toThrow(RequestContextMissingError);
    expect(() => tool.run()).toThrow(/WhoAmI\.sharedState/);
  });

  it('a tool constructed by hand has no owner: this.context throws RequestContextMissingError, in or out of a request', async () => {
    class ContextReader extends Tool<void, RequestContext> {
      static override toolName = 'context-reader';
      run(): RequestContext {
        return this.context;
      }
    }
    const outside = new ContextReader();
    expect(() => outside.run()).toThrow(RequestContextMissingError);
    expect(() => outside.run()).toThrow(/createToolSystem/);
    await withRequestContext(asUser, () => {
      const inside = new ContextReader();
      expect(() => inside.run()).toThrow(RequestContextMissingError);
      // The same class made by createToolSystem() does have an owner.
      expect((createToolSystem([ContextReader]).registry.get('context-reader') as ContextReader).run()).toBe(getRequestContext());
    });
  });
});

describe('tool systems under concurrency', () => {
  /** Records which instance ran and which request it thought it belonged to. */
  class Probe extends Tool<void, { self: Tool; owner: string; active: string }> {
    static override toolName = 'probe';
    async run(): Promise<{ self: Tool; owner: string; active: string }> {
      await Promise.resolve();
      return { self: this, owner: this.context.requestId, active: getRequestContext().requestId };
    }
  }

  it('many concurrent requests with random delays never share a tool instance', async () => {
    const seed = testSeed();
    const random = createRandom(seed);
    const delays = Array.from({ length: 200 }, () => [random.int(0, 4), random.int(0, 4)] as const);
    const before = await kit.violationCount();

    const perRequest = await Promise.all(
      delays.map(([first, second], i) =>
        withRequestContext({ tenantId: `tenant-${i % 10}`, userId: `user-${i % 30}` }, async (ctx) => {
          const system = createToolSystem([Probe, Echo]);
          await delay(first);
          const probed = await system.dispatcher.execute<{ self: Tool; owner: string; active: string }>('probe');
          await delay(second);
          expect(probed, `seed ${seed}`).toMatchObject({ owner: ctx.requestId, active: ctx.requestId });
          return new Set<Tool>([...system.tools, system.registry.get('probe')!, system.registry.get('echo')!, probed.self]);
        }),
      ),
    );

    // Each request saw exactly its two instances, and no instance appears in two requests.
    for (const instances of perRequest) expect(instances.size).toBe(2);
    const union = new Set(perRequest.flatMap((instances) => [...instances]));
    expect(union.size, `seed ${seed}`).toBe(perRequest.length * 2);
    expect(await kit.violationCount()).toBe(before);
    expect(expectNoCrossRequestLeakage(kit.spans()).toolSpans).toBe(200);
  });
});
