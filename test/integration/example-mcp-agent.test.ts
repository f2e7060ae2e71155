// examples/mcp-agent runs as documented in its README (node examples/mcp-agent/main.ts
// after the build): every MCP tool call runs on the stdio server as its caller, and
// the MCP call enriches the agent's execute_tool span.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runNode } from '../helpers/process.ts';

const MAIN = fileURLToPath(new URL('../../examples/mcp-agent/main.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('examples/mcp-agent', () => {
  it('exits 0, prints each call as the server ran it, the enriched tool spans and a clean audit', async () => {
    const { code, stdout, stderr } = await runNode([MAIN], { cwd: ROOT });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^acme\/ada: lamp=12 \(server ran as acme\/ada\), chair=40 \(server ran as acme\/ada\)$/m);
    expect(stdout).toMatch(/^globex\/grace: lamp=3 \(server ran as globex\/grace\), chair=0 \(server ran as globex\/grace\)$/m);
    expect(stdout).toMatch(/^acme\/alan: chair=40 \(server ran as acme\/alan\)$/m);
    expect(stdout).not.toContain('MISMATCH');
    expect(stdout).toMatch(/agent\.turn\n {4}execute_tool check_stock {2}mcp\.method\.name=tools\/call jsonrpc\.request\.id=\d+\n {4}execute_tool check_stock {2}mcp\.method\.name=tools\/call/);
    expect(stdout).toContain('audit: 3 requests, 5 tool spans, 9 spans, 0 violations');
  }, 120_000);
});
