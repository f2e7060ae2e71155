/**
 * A Tool's owner is bound by its tool system right after construction, never
 * read from the ambient context: tools may take constructor arguments (given
 * as factories), and an instance no tool system owns fails closed.
 */
import { describe, expect, it } from 'vitest';
import { RequestContextMissingError, withRequestContext, type RequestContext, type SharedState } from 'isotrace';
import { useTestTracing } from 'isotrace/testing';
import { createToolSystem, Tool, ToolDefinitionError, type ToolClass } from 'isotrace/tools';
import { onlySpan } from './tool-test-helpers.ts';

const kit = useTestTracing();
const asUser = { tenantId: 't1', userId: 'u1' };

/** Reads its index (a constructor argument), its owner and the SharedState. */
class IndexSearch extends Tool<{ q: string }, { index: string; owner: RequestContext; state: SharedState }> {
  static override toolName = 'index-search';
  static override description = 'Searches one index';
  readonly #index: string;

  constructor(index: string) {
    super();
    this.#index = index;
  }

  run(): { index: string; owner: RequestContext; state: SharedState } {
    return { index: this.#index, owner: this.context, state: this.sharedState };
  }
}

class ContextReader extends Tool<void, RequestContext> {
  static override toolName = 'context-reader';
  run(): RequestContext {
    return this.context;
  }
}

class SharedStateReader extends Tool<void, SharedState> {
  static override toolName = 'shared-state-reader';
  run(): SharedState {
    return this.sharedState;
  }
}

describe('tools with constructor arguments', () => {
  it('a factory makes the instance; the system passes it the owning request and binds that request to it', async () => {
    const factoryGot: RequestContext[] = [];
    await withRequestContext({ tenantId: 'acme', userId: 'alice' }, async (ctx) => {
      const system = createToolSystem([
        (owner) => {
          factoryGot.push(owner);
          return new IndexSearch(`products-${owner.tenantId}`);
        },
      ]);
      const seen = await system.dispatcher.execute<{ index: string; owner: RequestContext; state: SharedState }>('index-search', { q: 'lamp' });
      expect(seen.index).toBe('products-acme');
      expect(seen.owner).toBe(ctx);
      expect(seen.state).toBe(ctx.sharedState);
      expect(factoryGot).toEqual([ctx]);
    });
    expect(onlySpan(kit, 'execute_tool index-search').attributes).toMatchObject({ 'gen_ai.tool.description': 'Searches one index', 'isotrace.audit.result': 'pass' });
  });

  it('a class whose constructor takes arguments, given as a class, is rejected with a hint to use a factory', async () => {
    await withRequestContext(asUser, () => {
      expect(() => createToolSystem([IndexSearch as unknown as ToolClass])).toThrow(ToolDefinitionError);
      expect(() => createToolSystem([IndexSearch as unknown as ToolClass])).toThrow(/constructor of IndexSearch takes arguments.*\(\) => new IndexSearch/);
    });
  });

  it('a factory that returns one shared instance works once and is rejected by every later system', async () => {
    const shared = new IndexSearch('shared');
    const factory = (): Tool => shared;
    await withRequestContext(asUser, () => expect(createToolSystem([factory]).registry.get('index-search')).toBe(shared));
    await withRequestContext(asUser, () => {
      expect(() => createToolSystem([factory])).toThrow(ToolDefinitionError);
      expect(() => createToolSystem([factory])).toThrow(/already belongs to a tool system/);
    });
  });

  it('a factory that returns something other than a Tool, or a Tool instance given directly, is rejected', async () => {
    await withRequestContext(asUser, () => {
      expect(() => createToolSystem([(() => ({ run: () => 1 })) as never])).toThrow(/returned an object, not a Tool instance/);
      expect(() => createToolSystem([(async () => new IndexSearch('x')) as never])).toThrow(/returned a Promise, not a Tool instance/);
      expect(() => createToolSystem([new IndexSearch('x') as never])).toThrow(ToolDefinitionError);
      expect(() => createToolSystem([new IndexSearch('x') as never])).toThrow(/got a IndexSearch instance.*\(\) => new IndexSearch/);
    });
  });

  it('a factory-made instance without a static toolName is rejected like a class', async () => {
    class Nameless extends Tool {
      run(): void {}
    }
    await withRequestContext(asUser, () => {
      expect(() => createToolSystem([() => new Nameless()])).toThrow(/Nameless has no static toolName/);
    });
  });
});

describe('an instance no tool system owns fails closed', () => {
  it('this.context and this.sharedState throw RequestContextMissingError inside a request, saying to use createToolSystem()', async () => {
    await withRequestContext(asUser, () => {
      for (const tool of [new ContextReader(), new SharedStateReader()]) {
        expect(() => tool.run()).toThrow(RequestContextMissingError);
        expect(() => tool.run()).toThrow(/belongs to no tool system: create tools through createToolSystem\(\)/);
      }
      // The same classes made by a tool system work.
      const { registry } = createToolSystem([ContextReader, SharedStateReader]);
      expect((registry.get('context-reader') as ContextReader).run()).toBeDefined();
      expect((registry.get('shared-state-reader') as SharedStateReader).run()).toBeDefined();
    });
  });

  it('a tool made inside another tool’s constructor during createToolSystem() does not pick up the ambient owner', async () => {
    let helper: ContextReader | undefined;
    class WithHelper extends Tool {
      static override toolName = 'with-helper';
      constructor() {
        super();
        helper = new ContextReader();
      }
      run(): void {}
    }
    await withRequestContext(asUser, () => {
      createToolSystem([WithHelper]);
      expect(() => helper!.run()).toThrow(RequestContextMissingError);
    });
  });

  it('reading this.context in the constructor throws, telling to read it in run()', async () => {
    class EagerReader extends Tool {
      static override toolName = 'eager';
      readonly tenant = this.context.tenantId;
      run(): string {
        return this.tenant;
      }
    }
    await withRequestContext(asUser, () => {
      expect(() => createToolSystem([EagerReader])).toThrow(RequestContextMissingError);
      expect(() => createToolSystem([EagerReader])).toThrow(/read context in run\(\), not in the constructor/);
    });
  });
});
