// The isotrace/eslint plugin as users turn it on (flat config), on the planted
// leaks of the fault-injection suite, and on the examples and the demo.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ESLint, Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import isotrace from 'isotrace/eslint';

const RULE = 'isotrace/no-request-state-in-module-scope';
const root = fileURLToPath(new URL('../../../', import.meta.url));
const plantedLeaks = new URL('../../fixtures/planted-leaks/', import.meta.url);

/** The rule's reports on TypeScript `code`, with the recommended preset plus `options`. */
function lint(code: string, options?: object): Linter.LintMessage[] {
  const config: Linter.Config[] = [
    { files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } },
    { files: ['**/*.ts'], ...isotrace.configs.recommended },
    ...(options ? [{ files: ['**/*.ts'], rules: { [RULE]: ['error', options] } } as Linter.Config] : []),
  ];
  return new Linter().verify(code, config, 'service.ts');
}

describe('flat config', () => {
  it('isotrace.configs.recommended registers the plugin and reports a module-level current request as an error', () => {
    const messages = lint(`import { withRequestContext } from 'isotrace';
let current: string | undefined;
await withRequestContext({ tenantId: 't', userId: 'u' }, async (ctx) => { current = ctx.userId; await 0; return current; });`);
    expect(messages).toEqual([expect.objectContaining({ ruleId: RULE, severity: 2, line: 3 })]);
    expect(messages[0]?.message).toContain('Keep per-request data in a local variable or in the request context');
  });

  it('refuses an unknown option, naming it', () => {
    expect(() => lint('let x = 1;', { requestHandler: ['app.get'] })).toThrow(/requestHandler/);
  });
});

describe('the planted leaks (test/fixtures/planted-leaks)', () => {
  const fixtures = readdirSync(plantedLeaks).filter((file) => file.endsWith('.ts'));
  const reported = (options?: object): string[] =>
    fixtures.filter((file) => lint(readFileSync(new URL(file, plantedLeaks), 'utf8'), options).length > 0).sort();

  it('flags the leaks that live in a recognised request scope: Tool.run and defineWorkerTask', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(10);
    expect(reported()).toEqual(['class-shared-state.ts', 'worker-cached-context.ts']);
  });

  it('flags every module-level leak once handleRequest is named a request function, and none of the correct files', () => {
    expect(reported({ requestFunctions: ['handleRequest'] })).toEqual([
      'busy-callback-queue.ts',
      'captured-tool-instance.ts',
      'class-shared-state.ts',
      'current-request-variable.ts',
      'global-registry.ts',
      'worker-cached-context.ts',
    ]);
  });
});

describe('the examples and the demo', () => {
  it('pass the rule', async () => {
    const eslint = new ESLint({
      cwd: root,
      overrideConfigFile: true,
      overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } }, { files: ['**/*.ts'], ...isotrace.configs.recommended }],
    });
    const results = await eslint.lintFiles(['examples/**/*.ts']);
    expect(results.map((result) => result.filePath)).toEqual(expect.arrayContaining([expect.stringContaining('examples/demo/main.ts')]));
    expect(results.length).toBeGreaterThanOrEqual(15);
    expect(results.flatMap((result) => result.messages.map((message) => `${result.filePath}:${message.line} ${message.message}`))).toEqual([]);
  });

  it("are checked: a current-request slot planted in the agent service's HTTP handler is reported", () => {
    const server = readFileSync(new URL('examples/agent-service/server.ts', `file://${root}`), 'utf8');
    const handler = "name: 'POST /chat' }, async (req, res) => {";
    expect(server).toContain(handler);
    const planted = `${server.replace(handler, `${handler}\n    lastRequest = req;`)}\nlet lastRequest: unknown;\nexport const seen = (): unknown => lastRequest;\n`;
    expect(lint(planted)).toEqual([expect.objectContaining({ ruleId: RULE, messageId: 'requestDataStored' })]);
  });

  it("are linted with the rule on by the project's eslint.config.js", async () => {
    const config = (await new ESLint({ cwd: root }).calculateConfigForFile('examples/agent-service/server.ts')) as Linter.Config;
    expect((config.rules?.[RULE] as unknown[] | undefined)?.[0]).toBe(2);
  });
});
