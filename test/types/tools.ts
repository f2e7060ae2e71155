/**
 * Type tests of isotrace/tools (checked by `tsc --noEmit`, never run):
 * defineTool() infers Args and Result from execute, the call is typed, and
 * createToolSystem() takes Tool classes, definitions and factories but not a
 * class that needs constructor arguments.
 */
import { withRequestContext } from 'isotrace';
import { createToolSystem, defineTool, Tool, type ToolCall, type ToolDefinition } from 'isotrace/tools';

const weather = defineTool({
  name: 'weather',
  async execute({ city }: { city: string }, { callId, signal, context }) {
    const id: string = callId;
    const aborted: boolean = signal.aborted;
    const tenant: string = context.tenantId;
    void [id, aborted, tenant];
    return { city, tempC: 21 };
  },
});

const stream = defineTool({
  name: 'stream',
  async *execute({ n }: { n: number }) {
    yield n;
  },
});

class Search extends Tool<{ q: string }, string[]> {
  static override toolName = 'search';
  run({ q }: { q: string }, call: ToolCall): string[] {
    return [q, call.callId];
  }
}

class IndexSearch extends Tool<{ q: string }, string[]> {
  static override toolName = 'index-search';
  constructor(readonly index: string) {
    super();
  }
  run({ q }: { q: string }): string[] {
    return [this.index, q];
  }
}

export async function typedTools(call: ToolCall): Promise<void> {
  // Args and Result are inferred from execute.
  const inferred: ToolDefinition<{ city: string }, { city: string; tempC: number }> = weather;
  const streamed: ToolDefinition<{ n: number }, AsyncGenerator<number, void, unknown>> = stream;
  const result: { city: string; tempC: number } = await weather.execute({ city: 'Oslo' }, call);
  void [inferred, streamed, result];

  // @ts-expect-error -- city is a string
  void weather.execute({ city: 42 }, call);
  // @ts-expect-error -- the result has no `humidity`
  void (await weather.execute({ city: 'Oslo' }, call)).humidity;
  // @ts-expect-error -- explicit type arguments check execute's return value
  defineTool<{ city: string }, number>({ name: 'wrong', execute: () => 'not a number' });
  // @ts-expect-error -- args are checked inside execute too
  defineTool({ name: 'wrong', execute: ({ city }: { city: string }) => city.toFixed() });
  // @ts-expect-error -- type is 'function' | 'extension' | 'datastore'
  defineTool({ name: 'wrong', type: 'plugin', execute: () => 1 });

  await withRequestContext({ tenantId: 't1', userId: 'u1' }, async () => {
    // Classes, definitions and factories mix in one system; the dispatcher stays as typed as before.
    const { dispatcher } = createToolSystem([Search, weather, stream, (ctx) => new IndexSearch(ctx.tenantId)]);
    const forecast = await dispatcher.execute<{ tempC: number }>('weather', { city: 'Oslo' }, { callId: 'call_1', signal: AbortSignal.timeout(1000) });
    void forecast.tempC;

    // @ts-expect-error -- a class whose constructor takes arguments must be given as a factory
    createToolSystem([IndexSearch]);
    // @ts-expect-error -- a factory returns a Tool instance
    createToolSystem([() => 42]);
    // @ts-expect-error -- a plain object is not a definition: use defineTool()
    createToolSystem([{ name: 'fake', description: '', type: 'function', execute: () => 1 }]);
    // @ts-expect-error -- the signal is an AbortSignal
    void dispatcher.execute('weather', { city: 'Oslo' }, { signal: new AbortController() });
  });
}
