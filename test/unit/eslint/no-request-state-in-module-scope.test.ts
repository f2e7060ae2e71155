// isotrace/no-request-state-in-module-scope through ESLint's RuleTester: the
// seeds' bug classes in their JS forms (true positives) and the legitimate
// module-level state next to them (false positives), parsed as TypeScript.
import { describe, it } from 'vitest';
import { RuleTester } from 'eslint';
import tseslint from 'typescript-eslint';
import isotrace from 'isotrace/eslint';

RuleTester.describe = describe;
RuleTester.it = it;
RuleTester.itOnly = it.only;

const rule = isotrace.rules['no-request-state-in-module-scope'];
const tester = new RuleTester({ languageOptions: { parser: tseslint.parser } });

type Options = { requestHandlerCalls?: string[]; requestFunctions?: string[] };
type Valid = { name: string; code: string; options?: Options };

const ts = <T extends Valid>(test: T): T & { filename: string; options: [Options] | [] } => ({ ...test, filename: 'service.ts', options: test.options ? [test.options] : [] });

const IMPORTS = `import { withRequestContext, getRequestContext } from 'isotrace';
import { createToolSystem, Tool, defineTool, type ToolSystem } from 'isotrace/tools';
import { defineWorkerTask } from 'isotrace/workers';
`;

tester.run('no-request-state-in-module-scope', rule, {
  valid: [
    ts({
      name: 'a tool system per request, in a local',
      code: `${IMPORTS}
await withRequestContext({ tenantId: 't', userId: 'u' }, async () => {
  const system = createToolSystem([]);
  await system.dispatcher.execute('search', {});
  return system.registryId;
});`,
    }),
    ts({
      name: 'a module-level cache keyed by tenant (Map.set and a computed key)',
      code: `${IMPORTS}
const byTenant = new Map<string, unknown>();
const byUser: Record<string, unknown> = {};
await withRequestContext({ tenantId: 't', userId: 'u' }, async (ctx) => {
  byTenant.set(ctx.tenantId, await fetch('https://x'));
  byUser[\`\${ctx.tenantId}:\${ctx.userId}\`] = 1;
  byTenant.set(getRequestContext().tenantId, 2);
  await fetch('https://y');
  return [byTenant.get(ctx.tenantId), byUser[ctx.userId]];
});`,
    }),
    ts({
      name: 'constants and module-level state that is only read',
      code: `${IMPORTS}
const LIMIT = 10;
let config = { retries: 3 };
await withRequestContext({ tenantId: 't', userId: 'u' }, async () => {
  await fetch('https://x');
  return LIMIT + config.retries;
});`,
    }),
    ts({
      name: 'lazy singletons set up at start or outside any request, and lazily with no request data inside one',
      code: `${IMPORTS}
declare function createClient(): { get(): Promise<number> };
let client: ReturnType<typeof createClient> | undefined;
let pool: ReturnType<typeof createClient> | undefined;
let db: ReturnType<typeof createClient> | undefined;
client ??= createClient();
function getPool() {
  pool ??= createClient();
  return pool;
}
await withRequestContext({ tenantId: 't', userId: 'u' }, async () => {
  db ??= createClient();
  if (!client) client = createClient();
  await db.get();
  return [await client.get(), await getPool().get(), await db.get()];
});`,
    }),
    ts({
      name: 'state on per-request tool instances (this.x), and a tool run that only reads static fields',
      code: `${IMPORTS}
class Search extends Tool<{ q: string }, string> {
  static override toolName = 'search';
  last: string | undefined;
  async run({ q }: { q: string }) {
    this.last = q;
    await fetch('https://x');
    return this.last + Search.toolName;
  }
}`,
    }),
    ts({
      name: 'counters and timestamps: written, never read back after an await',
      code: `${IMPORTS}
let served = 0;
let lastRequestAt = 0;
class Search extends Tool {
  static calls = 0;
  async run() {
    Search.calls++;
    await fetch('https://x');
  }
}
await withRequestContext({ tenantId: 't', userId: 'u' }, async () => {
  served++;
  lastRequestAt = Date.now();
  await fetch('https://x');
  served--;
});`,
    }),
    ts({
      name: 'module-level state written in plain functions that are no request scope',
      code: `
let current: unknown;
export async function handleRequest(item: string) {
  current = item;
  await fetch('https://x');
  return current;
}`,
    }),
    ts({
      name: 'a read after an await in a sibling callback does not follow the write',
      code: `${IMPORTS}
let stamp = 0;
await withRequestContext({ tenantId: 't', userId: 'u' }, async () => {
  const log = async () => { await fetch('https://x'); };
  stamp = Date.now();
  void log();
  return stamp;
});`,
    }),
    ts({
      name: 'classes and bindings declared inside the request are per request',
      code: `${IMPORTS}
await withRequestContext({ tenantId: 't', userId: 'u' }, async (ctx) => {
  let current = ctx.userId;
  class Local { static owner = ''; }
  Local.owner = ctx.userId;
  await fetch('https://x');
  return [current, Local.owner];
});`,
    }),
    {
      name: 'plain JavaScript (espree): a module-level cache keyed by userId',
      filename: 'service.js',
      languageOptions: { parser: undefined, sourceType: 'module' },
      code: `import { withRequestContext } from 'isotrace';
const seen = new Set();
withRequestContext({ tenantId: 't', userId: 'u' }, async (ctx) => { seen.add(ctx.userId); await 0; return seen.has(ctx.userId); });`,
    },
  ],
  invalid: [
    ts({
      name: 'the module-level current request (threading.local mistake), with the message users see',
      code: `${IMPORTS}
let current: ToolSystem | undefined;
await withRequestContext({ tenantId: 't', userId: 'u' }, async () => {
  current = createToolSystem([]);
  await fetch('https://x');
  return current.dispatcher.execute('search', {});
});`,
      errors: [
        {
          message:
            'Module-level `current` is written inside a request handler (withRequestContext) and read again after an await: another request may have overwritten it in between. Keep per-request data in a local variable or in the request context (getRequestContext().set/get).',
          line: 7,
        },
      ],
    }),
    ts({
      name: "the seeds' global registry: lazily built from the first request's tool system",
      code: `${IMPORTS}
let globalSystem: ToolSystem | undefined;
await withRequestContext({ tenantId: 't', userId: 'u' }, () => {
  globalSystem ??= createToolSystem([]);
  return globalSystem.registryId;
});`,
      errors: [{ messageId: 'lazyFromRequest', data: { what: 'Module-level `globalSystem`', scope: 'a request handler (withRequestContext)' } }],
    }),
    ts({
      name: 'class-level shared state: a static field assigned inside Tool.run (the seeds\' BaseTool._shared_state = …)',
      code: `${IMPORTS}
class Notes extends Tool<{ item: string }, number> {
  static shared: unknown;
  async run({ item }: { item: string }) {
    Notes.shared ??= this.sharedState;
    return item.length;
  }
}`,
      errors: [{ messageId: 'lazyFromRequest', data: { what: 'Static field `Notes.shared`', scope: 'the tool method Notes.run' } }],
    }),
    ts({
      name: 'a static field on a Tool class declared in a factory, through an intermediate base class',
      code: `${IMPORTS}
class BaseTool extends Tool {}
export function tools() {
  class Remember extends BaseTool {
    static lastUser: string | undefined;
    run = async () => {
      Remember.lastUser = this.context.userId;
    };
  }
  return [Remember];
}`,
      errors: [{ messageId: 'requestDataStored', data: { what: 'Static field `Remember.lastUser`', scope: 'the tool method Remember.run' } }],
    }),
    ts({
      name: 'Tool classes resolved in any source order (a class expression that extends a class declared below it)',
      code: `${IMPORTS}
class Base extends Tool {}
export const makeDeep = () => class Deep extends Middle { async run() { await fetch('https://x'); } };
class Middle extends Base {
  static owner = '';
  run() { Middle.owner = this.context.userId; }
}`,
      errors: [{ messageId: 'requestDataStored', data: { what: 'Static field `Middle.owner`', scope: 'the tool method Middle.run' } }],
    }),
    ts({
      name: 'a property of a module-level object written in a defineTool execute and read after an await',
      code: `${IMPORTS}
const state = { user: '' };
export const lookup = defineTool({
  name: 'lookup',
  async execute(args: { user: string }) {
    state.user = args.user;
    await fetch('https://x');
    return state.user;
  },
});`,
      errors: [{ messageId: 'overwrittenAfterAwait', data: { what: 'Module-level `state.user`', scope: 'a tool execute (defineTool)' } }],
    }),
    ts({
      name: 'a module-level Map keyed by something other than the tenant or user, in a worker task',
      code: `${IMPORTS}
const results = new Map<string, unknown>();
export default defineWorkerTask(async ({ item }: { item: string }) => {
  results.set(item, getRequestContext().values());
  return item;
});`,
      errors: [{ messageId: 'requestDataStored', data: { what: 'Module-level `results`', scope: 'a worker task (defineWorkerTask)' } }],
    }),
    ts({
      name: 'a worker task caching its first request context',
      code: `${IMPORTS}
let cachedCtx: ReturnType<typeof getRequestContext> | undefined;
export default defineWorkerTask(async () => {
  if (cachedCtx === undefined) cachedCtx = getRequestContext();
  return cachedCtx.tenantId;
});`,
      errors: [{ messageId: 'lazyFromRequest', data: { what: 'Module-level `cachedCtx`', scope: 'a worker task (defineWorkerTask)' } }],
    }),
    ts({
      name: 'a shared callback queue drained by whichever request runs (a handler passed by name)',
      code: `import { httpRequestContext } from 'isotrace/http';
const queue: Array<() => Promise<unknown>> = [];
async function handler(req: unknown, res: { end(body: string): void }) {
  queue.push(async () => req);
  await new Promise((resolve) => setTimeout(resolve, 1));
  while (queue.length > 0) await queue.shift()!();
  res.end('ok');
}
export const listener = httpRequestContext({ identify: () => ({ tenantId: 't', userId: 'u' }) }, handler);`,
      errors: [{ messageId: 'overwrittenAfterAwait', data: { what: 'Module-level `queue`', scope: 'a request handler (httpRequestContext)' } }],
    }),
    ts({
      name: 'the module-level current user set by an Express middleware and route (requestHandlerCalls)',
      options: { requestHandlerCalls: ['app.use', '*.get'] },
      code: `
declare const app: { use(fn: (req: any, res: any, next: () => void) => void): void; get(path: string, fn: (req: any, res: any) => unknown): void };
declare const router: typeof app;
let currentUser: string | undefined;
let lastPath = '';
app.use((req, _res, next) => { currentUser = req.user; next(); });
router.get('/me', async (req, res) => {
  lastPath = req.path;
  await fetch('https://x');
  res.send(lastPath);
});`,
      errors: [
        { messageId: 'requestDataStored', data: { what: 'Module-level `currentUser`', scope: 'a request handler (app.use)' } },
        { messageId: 'overwrittenAfterAwait', data: { what: 'Module-level `lastPath`', scope: 'a request handler (router.get)' } },
      ],
    }),
    ts({
      name: 'named request functions (requestFunctions), a write in a nested closure and a loop around the await',
      options: { requestFunctions: ['handleRequest', 'onMessage'] },
      code: `
let current: string | undefined;
let turn = 0;
export async function handleRequest(items: string[]) {
  items.forEach((item) => { current = item.trim(); });
  await fetch('https://x');
  return current;
}
export const handlers = {
  async onMessage(messages: string[]) {
    for (const message of messages) {
      if (turn > 0) console.log(turn, message);
      turn = Date.now();
      await fetch('https://x');
    }
  },
};`,
      errors: [
        { messageId: 'overwrittenAfterAwait', data: { what: 'Module-level `current`', scope: 'the request function handleRequest' } },
        { messageId: 'overwrittenAfterAwait', data: { what: 'Module-level `turn`', scope: 'the request function onMessage' } },
      ],
    }),
    ts({
      name: 'reads after for await and yield count as after an await',
      code: `${IMPORTS}
let chunkOwner = '';
let generation = 0;
await withRequestContext({ tenantId: 't', userId: 'u' }, async () => {
  chunkOwner = 'me';
  for await (const chunk of [Promise.resolve(1)]) console.log(chunk, chunkOwner);
});
export const stream = () => withRequestContext({ tenantId: 't', userId: 'u' }, function* () {
  generation = 1;
  yield generation;
  yield generation;
});`,
      errors: [
        { messageId: 'overwrittenAfterAwait', data: { what: 'Module-level `chunkOwner`', scope: 'a request handler (withRequestContext)' } },
        { messageId: 'overwrittenAfterAwait', data: { what: 'Module-level `generation`', scope: 'a request handler (withRequestContext)' } },
      ],
    }),
    ts({
      name: 'one report per state and request scope: the first offending write',
      code: `${IMPORTS}
let current = '';
await withRequestContext({ tenantId: 't', userId: 'u' }, async (ctx) => {
  current = ctx.userId;
  current = ctx.tenantId;
  await fetch('https://x');
  return current;
});`,
      errors: [{ messageId: 'overwrittenAfterAwait', line: 7 }],
    }),
  ],
});
