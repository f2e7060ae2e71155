// examples/langchain-agent runs as documented (node examples/langchain-agent/main.ts after the build):
// three tenants' agent runs at once, every tool result and every callback in its own request, a clean audit.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runNode } from '../helpers/process.ts';

const MAIN = fileURLToPath(new URL('../../examples/langchain-agent/main.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('examples/langchain-agent', () => {
  it('exits 0, with each callback and tool result in its own request, the span tree and a clean audit', async () => {
    const { code, stdout, stderr } = await runNode([MAIN], { cwd: ROOT });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    for (const [who, user] of [['acme/ada', 'ada'], ['globex/grace', 'grace'], ['initech/ivan', 'ivan']] as const) {
      const tenant = who.split('/')[0]!;
      expect(stdout).toMatch(new RegExp(`^${who}: Weather for .* on its way, ${user}\\. \\[.*\\(forecast for ${tenant}\\); .*\\(forecast for ${tenant}\\)\\]$`, 'm'));
      for (const n of [0, 1]) expect(stdout).toMatch(new RegExp(`^callback: get_weather ${user}_call_${n} started in ${who}$`, 'm'));
    }
    expect(stdout).not.toContain('MISMATCH');
    expect(stdout).not.toContain('no request');
    expect(stdout).toMatch(/chat\.turn[^\n]*\n\s+invoke_agent weather_agent[^\n]*\n\s+execute_tool get_weather call ada_call_\d[^\n]*audit=pass\n\s+execute_tool get_weather call ada_call_\d[^\n]*audit=pass/);
    expect(stdout).toContain('audit: 3 requests, 6 tool spans, 12 spans, 0 violations');
  }, 120_000);
});
