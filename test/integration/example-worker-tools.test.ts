// examples/worker-tools runs as documented in its README (node examples/worker-tools/main.ts
// after the build) and reports each tenant's result computed in the worker for that tenant.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runNode } from '../helpers/process.ts';

const MAIN = fileURLToPath(new URL('../../examples/worker-tools/main.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('examples/worker-tools', () => {
  it('exits 0, prints each tenant as seen in the worker, the span tree and a clean audit', async () => {
    const { code, stdout, stderr } = await runNode([MAIN], { cwd: ROOT });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    for (const who of ['acme/ada', 'globex/grace', 'acme/alan']) {
      expect(stdout).toMatch(new RegExp(`^${who}: [0-9a-f]{16}… after 20000 rounds \\(worker saw ${who}\\)$`, 'm'));
    }
    expect(stdout).not.toContain('MISMATCH');
    expect(stdout).toMatch(/execute_tool hash_document[\s\S]*worker\.run default[\s\S]*worker\.task default[\s\S]*hash\.rounds/);
    expect(stdout).toContain('audit: 3 requests, 3 tool spans, 15 spans, 0 violations');
  }, 120_000);
});
