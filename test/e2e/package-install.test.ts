/**
 * The package as a consumer gets it: `npm pack`, installed from the tarball
 * into a scratch app (nothing of this repository on its module path), every
 * entry point imported by Node and a consumer file type-checked by tsc.
 * Needs `dist/` (npm test builds first) and the npm cache or registry.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

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
    const { stdout } = await run(process.execPath, ['imports.mjs'], { cwd: app });
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
