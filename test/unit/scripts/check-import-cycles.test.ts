/** The lint step that keeps sdk/src free of runtime import cycles must be able to fail. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { runNode } from '../../helpers/process.ts';

const SCRIPT = fileURLToPath(new URL('../../../scripts/check-import-cycles.ts', import.meta.url));
let dir: string | undefined;

function tree(files: Record<string, string>): string {
  dir = mkdtempSync(join(tmpdir(), 'isotrace-cycles-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('scripts/check-import-cycles.ts', () => {
  it('fails on a runtime cycle, naming its modules', async () => {
    const run = await runNode([SCRIPT, tree({ 'a.ts': "import { b } from './b.js';\nexport const a = () => b;\n", 'b.ts': "import {\n  a,\n} from './a.js';\nexport const b = () => a;\n" })]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/import cycle: (a\.ts -> b\.ts -> a\.ts|b\.ts -> a\.ts -> b\.ts)/);
  });

  it('fails on a cycle through a re-export', async () => {
    const run = await runNode([SCRIPT, tree({ 'a.ts': "export * from './b.js';\n", 'b.ts': "import { x } from './c.js';\nexport const y = x;\n", 'c.ts': "export { y as x } from './a.js';\n" })]);
    expect(run.code).toBe(1);
  });

  it('passes when one side imports types only', async () => {
    const run = await runNode([SCRIPT, tree({ 'a.ts': "import type { B } from './b.js';\nexport type A = B;\nexport const a = 1;\n", 'b.ts': "import { a } from './a.js';\nexport type B = typeof a;\n" })]);
    expect(run.code).toBe(0);
  });

  it('finds none in sdk/src', async () => {
    const run = await runNode([SCRIPT]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
  });
});
