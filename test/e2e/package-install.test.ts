/**
 * The package as a consumer gets it: `npm pack`, installed from the tarball
 * into a scratch app (nothing of this repository on its module path), every
 * entry point imported by Node and a consumer file type-checked by tsc.
 * Needs `dist/` (npm test builds first) and the npm cache or registry.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumerEnv } from '../helpers/source-mode.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  exports: Record<string, unknown>;
  dependencies: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies: Record<string, string>;
};
const entryPoints = Object.keys(manifest.exports)
  .filter((key) => key !== './package.json')
  .map((key) => (key === '.' ? 'isotrace' : `isotrace/${key.slice(2)}`));

let app: string;

beforeAll(async () => {
  app = mkdtempSync(join(tmpdir(), 'isotrace-consumer-'));
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', app], { cwd: root });
  const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
  // A consumer brings the peers it uses; the versions are this repository's own.
  const peers = Object.keys(manifest.peerDependencies ?? {}).filter((name) => name !== 'eslint');
  const dependencies = Object.fromEntries([
    ['isotrace', `file:./${filename}`],
    ...peers.map((name) => [name, manifest.dependencies[name] ?? manifest.devDependencies[name] ?? manifest.peerDependencies![name]!]),
  ]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies }));
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: app, timeout: 240_000 });
}, 300_000);

afterAll(() => {
  if (app) rmSync(app, { recursive: true, force: true });
});

describe('the packed package, installed into a scratch app', () => {
  it('imports every entry point', async () => {
    expect(entryPoints.length).toBeGreaterThanOrEqual(7);
    const script = entryPoints.map((entry, i) => `import * as m${i} from '${entry}'; if (Object.keys(m${i}).length === 0) throw new Error('${entry} exports nothing');`).join('\n');
    writeFileSync(join(app, 'imports.mjs'), `${script}\nconsole.log('imported ${entryPoints.length}');\n`);
    // consumerEnv(): without the tests' source mode, which would point the installed package at its shipped .ts sources.
    const { stdout } = await run(process.execPath, ['imports.mjs'], { cwd: app, env: consumerEnv() });
    expect(stdout.trim()).toBe(`imported ${entryPoints.length}`);
  });

  it('type-checks a consumer file against the shipped declarations', async () => {
    writeFileSync(
      join(app, 'consumer.ts'),
      [
        "import { startTracing, withRequestContext, getRequestContext, type RequestContext } from 'isotrace';",
        "import { Tool, createToolSystem } from 'isotrace/tools';",
        "import { setupTestTracing, expectNoCrossRequestLeakage } from 'isotrace/testing';",
        "class Echo extends Tool<{ text: string }, string> { static toolName = 'echo'; static description = 'echo'; async run(args: { text: string }) { return args.text; } }",
        'export async function main(): Promise<void> {',
        '  const kit = await setupTestTracing();',
        "  await withRequestContext({ tenantId: 't', userId: 'u' }, async (ctx: RequestContext) => {",
        "    const text: string = await createToolSystem([Echo]).dispatcher.execute('echo', { text: ctx.tenantId });",
        '    return text + getRequestContext().userId;',
        '  });',
        '  expectNoCrossRequestLeakage(kit.spans());',
        '  await kit.shutdown();',
        '  void startTracing;',
        '}',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2024', noEmit: true, skipLibCheck: false, typeRoots: [join(root, 'node_modules/@types')], types: ['node'] }, files: ['consumer.ts'] }),
    );
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const result = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: app }).catch((error: { stdout: string; code: number }) => error);
    expect(result.stdout).toBe('');
  });
});

/**
 * A consumer with none of the optional peers (a service that uses neither
 * Redis nor WebSockets nor a framework adapter) installs only isotrace: the
 * core entry points load and work, the ones for a missing peer say which
 * package to install, and nothing loads OpenTelemetry's NodeSDK, exporters or
 * HTTP instrumentations before startTracing() runs (not the core entry points,
 * not a worker thread's first task).
 */
describe('the packed package, installed without its optional peers', () => {
  const optionalPeers = ['redis', 'ws', 'fastify', 'ai', '@langchain/core', '@modelcontextprotocol/sdk', '@openai/agents-core', 'eslint'];
  const coreEntries = ['isotrace', 'isotrace/tools', 'isotrace/workers', 'isotrace/http', 'isotrace/testing', 'isotrace/otel', 'isotrace/shared-state'];
  let bare: string;

  beforeAll(async () => {
    bare = mkdtempSync(join(tmpdir(), 'isotrace-consumer-bare-'));
    const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', bare], { cwd: root });
    const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
    // Only isotrace: npm adds its required peer (@opentelemetry/api), never an optional one.
    writeFileSync(join(bare, 'package.json'), JSON.stringify({ name: 'bare-consumer', private: true, type: 'module', dependencies: { isotrace: `file:./${filename}` } }));
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: bare, timeout: 240_000 });
  }, 300_000);

  afterAll(() => {
    if (bare) rmSync(bare, { recursive: true, force: true });
  });

  /** Runs an ES module script in the scratch app (as the built package's consumer) and returns the JSON it prints last. */
  async function runScript<T>(name: string, code: string, nodeArgs: string[] = []): Promise<T> {
    writeFileSync(join(bare, name), code);
    const { stdout } = await run(process.execPath, [...nodeArgs, name], { cwd: bare, env: consumerEnv(), timeout: 60_000 });
    return JSON.parse(stdout.trim().split('\n').at(-1)!) as T;
  }

  it('has no optional peer installed, and @opentelemetry/api as the required one', () => {
    // Fail closed: with a peer present, the checks below would examine nothing.
    expect(optionalPeers.filter((peer) => existsSync(join(bare, 'node_modules', peer)))).toEqual([]);
    expect(existsSync(join(bare, 'node_modules/@opentelemetry/api/package.json'))).toBe(true);
  });

  it("installs one copy of each OpenTelemetry SDK package (the versions @opentelemetry/sdk-node pins), not a second beside sdk-node's", () => {
    const shared = ['core', 'resources', 'sdk-trace', 'sdk-metrics', 'context-async-hooks', 'instrumentation', 'otlp-exporter-base', 'otlp-transformer'];
    const copies = (readdirSync(join(bare, 'node_modules'), { recursive: true }) as string[])
      .map((path) => path.replaceAll('\\', '/'))
      .filter((path) => shared.some((name) => path.endsWith(`node_modules/@opentelemetry/${name}/package.json`)));
    // Fail closed: the walk saw the packages (at the top level) in the first place.
    expect(shared.every((name) => existsSync(join(bare, 'node_modules/@opentelemetry', name, 'package.json')))).toBe(true);
    // instrumentation-undici (contrib, released apart) still asks for @opentelemetry/instrumentation ^0.300: its own small copy.
    expect(copies.filter((path) => !path.startsWith('@opentelemetry/instrumentation-undici/'))).toEqual([]);
  });

  it('imports and uses the core entry points; RedisStore names the missing redis package', async () => {
    const result = await runScript<{ imported: string[]; failed: string[]; memory: string; tenant: string; redis: { name: string; message: string } | null }>(
      'core.mjs',
      `
const entries = ${JSON.stringify(coreEntries)};
const imported = [], failed = [];
for (const entry of entries) {
  try { const m = await import(entry); if (Object.keys(m).length > 0) imported.push(entry); else failed.push(entry + ': exports nothing'); }
  catch (error) { failed.push(entry + ': ' + error.message); }
}
const { MemoryStore, RedisStore } = await import('isotrace/shared-state');
const store = new MemoryStore();
await store.set({ tenantId: 't1', userId: 'u1' }, 'plan', '"pro"');
const memory = await store.get({ tenantId: 't1', userId: 'u1' }, 'plan');
await store.close?.();
const { startTracing, withRequestContext, getSharedState } = await import('isotrace');
const tracing = await startTracing({ serviceName: 'bare-consumer', exporter: 'none' });
const tenant = await withRequestContext({ tenantId: 't2', userId: 'u2' }, async (ctx) => { await getSharedState().set('seen', true); return ctx.tenantId; });
await tracing.shutdown();
let redis = null;
try { new RedisStore({ url: 'redis://127.0.0.1:6379' }); } catch (error) { redis = { name: error.name, message: error.message }; }
console.log(JSON.stringify({ imported, failed, memory, tenant, redis }));
`,
    );
    expect(result.failed).toEqual([]);
    expect(result.imported).toEqual(coreEntries);
    expect(result.memory).toBe('"pro"');
    expect(result.tenant).toBe('t2');
    expect(result.redis?.name).toBe('IsotraceError');
    expect(result.redis?.message).toContain("needs the package 'redis'");
    expect(result.redis?.message).toContain('npm install redis');
  });

  it('loads every other entry point, or fails naming the optional peer it needs; handleWebSocketMessages names ws', async () => {
    const others = entryPoints.filter((entry) => !coreEntries.includes(entry));
    expect(others.length).toBeGreaterThan(0);
    const result = await runScript<{ outcomes: Record<string, string>; ws: string }>(
      'peers.mjs',
      `
const outcomes = {};
for (const entry of ${JSON.stringify(others)}) {
  try { await import(entry); outcomes[entry] = 'loaded'; } catch (error) { outcomes[entry] = error.message; }
}
const { startTracing } = await import('isotrace');
const tracing = await startTracing({ serviceName: 'bare-consumer', exporter: 'none' });
let ws = 'no error';
try {
  const { handleWebSocketMessages } = await import('isotrace/ws');
  // What a service without the ws package could hand it: an object that is not a ws WebSocket.
  handleWebSocketMessages({ send() {} }, { identify: () => ({ tenantId: 't', userId: 'u' }) }, () => {});
} catch (error) { ws = error.message; }
await tracing.shutdown();
console.log(JSON.stringify({ outcomes, ws }));
`,
    );
    for (const [entry, outcome] of Object.entries(result.outcomes)) {
      if (outcome === 'loaded') continue;
      // Node's "Cannot find package '<peer>'": the message must name one of the optional peers.
      expect(optionalPeers.some((peer) => outcome.includes(`'${peer}'`)), `${entry}: ${outcome}`).toBe(true);
    }
    expect(result.ws).toMatch(/from the ws library/);
  });

  it("loads no NodeSDK, exporter or HTTP instrumentation before startTracing(), in the process or a worker thread's first task", async () => {
    // A load hook, in the process and (through --import) in every worker thread, records each module's URL.
    writeFileSync(
      join(bare, 'record-loads.mjs'),
      `import { registerHooks } from 'node:module';
const loaded = (globalThis.__loadedUrls = new Set());
registerHooks({ load(url, context, nextLoad) { loaded.add(url); return nextLoad(url, context); } });
globalThis.__heavyLoaded = () => [...new Set([...loaded].map((url) => url.match(/\\/node_modules\\/(@opentelemetry\\/(?:sdk-node|exporter-[\\w-]+|instrumentation-(?:http|undici))|@grpc\\/[\\w-]+)\\//)?.[1]).filter(Boolean))].sort();
`,
    );
    writeFileSync(
      join(bare, 'first-task-worker.mjs'),
      `import { getRequestContext } from 'isotrace';
import { defineWorkerTask } from 'isotrace/workers';
export default defineWorkerTask(() => ({ tenantId: getRequestContext().tenantId, recorded: globalThis.__loadedUrls?.size ?? 0, heavy: globalThis.__heavyLoaded?.() }));
`,
    );
    const result = await runScript<{ recorded: number; afterImports: string[]; afterStart: string[]; worker: { tenantId: string; recorded: number; heavy: string[] } }>(
      'loads.mjs',
      `
for (const entry of ${JSON.stringify(coreEntries)}) await import(entry);
const recorded = globalThis.__loadedUrls.size;
const afterImports = globalThis.__heavyLoaded();
const { startTracing, withRequestContext } = await import('isotrace');
const { createWorkerPool } = await import('isotrace/workers');
const tracing = await startTracing({ serviceName: 'bare-consumer', exporter: 'otlp', endpoint: 'http://127.0.0.1:9', flushTimeoutMs: 1000 });
const afterStart = globalThis.__heavyLoaded();
const pool = createWorkerPool({ filename: new URL('./first-task-worker.mjs', import.meta.url), minThreads: 1, maxThreads: 1 });
const worker = await withRequestContext({ tenantId: 't1', userId: 'u1' }, () => pool.run({}));
await pool.close();
await tracing.shutdown().catch(() => {});
console.log(JSON.stringify({ recorded, afterImports, afterStart, worker }));
`,
      ['--import', './record-loads.mjs'],
    );
    // Fail closed: the hook saw the imports, and it does see these packages once they load.
    expect(result.recorded).toBeGreaterThan(50);
    expect(result.afterStart).toEqual(expect.arrayContaining(['@opentelemetry/sdk-node', '@opentelemetry/exporter-trace-otlp-http', '@opentelemetry/instrumentation-http']));
    expect(result.afterImports).toEqual([]);
    expect(result.worker.tenantId).toBe('t1');
    expect(result.worker.recorded).toBeGreaterThan(50);
    expect(result.worker.heavy).toEqual([]);
  });

  it('type-checks a consumer of the core entry points without the optional peers (and their types) installed', async () => {
    writeFileSync(
      join(bare, 'consumer.ts'),
      [
        ...coreEntries.map((entry, i) => `import * as m${i} from '${entry}';`),
        "import { MemoryStore, RedisStore, type SharedStateStore } from 'isotrace/shared-state';",
        'export const stores: SharedStateStore[] = [new MemoryStore(), new RedisStore({ url: process.env.REDIS_URL })];',
        `export const modules = [${coreEntries.map((_, i) => `m${i}`).join(', ')}];`,
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(bare, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2024', noEmit: true, skipLibCheck: false, typeRoots: [join(root, 'node_modules/@types')], types: ['node'] }, files: ['consumer.ts'] }),
    );
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const result = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: bare }).catch((error: { stdout: string; code: number }) => error);
    expect(result.stdout).toBe('');
  });
});
