// examples/openai-agents-agent runs as documented (node examples/openai-agents-agent/main.ts after the build):
// three tenants' runs of module-level agents at once, every tool result in its own request, agent and
// handoff spans in the tree, a clean audit.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runNode } from '../helpers/process.ts';

const MAIN = fileURLToPath(new URL('../../examples/openai-agents-agent/main.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('examples/openai-agents-agent', () => {
  it('exits 0, with each tool result in its own request, the agent and handoff spans and a clean audit', async () => {
    const { code, stdout, stderr } = await runNode([MAIN], { cwd: ROOT });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    for (const [tenant, user] of [['acme', 'ada'], ['globex', 'grace'], ['initech', 'ivan']] as const) {
      const forTenant = `\\(for ${tenant}\\)`;
      expect(stdout).toMatch(new RegExp(`^${tenant}/${user}: Sunny today, rain tomorrow, ${user}\\. \\(answered by Forecaster\\) \\[[^;]*${forTenant}; [^;]*${forTenant}; [^;]*${forTenant}\\]$`, 'm'));
    }
    expect(stdout).not.toContain('MISMATCH');
    expect(stdout).toMatch(
      /chat\.turn conversation conv-ada[^\n]*\n\s+invoke_agent Triage conversation conv-ada[^\n]*\n\s+execute_tool get_weather call ada_weather_\d conversation conv-ada[^\n]*audit=pass\n\s+execute_tool get_weather call ada_weather_\d[^\n]*audit=pass\n\s+handoff Forecaster[^\n]*\n\s+invoke_agent Forecaster conversation conv-ada[^\n]*\n\s+execute_tool get_forecast call ada_forecast[^\n]*audit=pass/,
    );
    expect(stdout).toContain('audit: 3 requests, 9 tool spans, 21 spans, 0 violations');
  }, 120_000);
});
