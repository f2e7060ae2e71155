// examples/ai-sdk-agent runs as documented in its README (node examples/ai-sdk-agent/main.ts
// after the build): every tool step ran in its own request, each call has one execute_tool span
// (the AI SDK's, enriched by isotrace) and the audit is clean.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runNode } from '../helpers/process.ts';

const MAIN = fileURLToPath(new URL('../../examples/ai-sdk-agent/main.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('examples/ai-sdk-agent', () => {
  it('exits 0, prints each request’s tool steps as run in that request, one enriched span per call and a clean audit', async () => {
    const { code, stdout, stderr } = await runNode([MAIN], { cwd: ROOT });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('acme/ada: Both orders are on their way. (A-17 shipped, B-2 packed) — 2 tool steps, run as acme/ada');
    expect(stdout).toContain('globex/grace: Both orders are on their way. (A-17 cancelled, B-2 delivered) — 2 tool steps, run as globex/grace');
    expect(stdout).toContain('acme/alan: Your report is ready. (progress 1/3 2/3 3/3) — 3 tool steps, run as acme/alan');
    expect(stdout).not.toContain('MISMATCH');
    expect(stdout).toMatch(/invoke_agent orders-agent[\s\S]*step 1[\s\S]*execute_tool order_status {2}\[acme\/ada\] {2}call_1 audit=pass\n.*execute_tool order_status {2}\[acme\/ada\] {2}call_2 audit=pass/);
    expect(stdout).toContain('5 execute_tool spans, 5 carrying isotrace\'s registry id and audit result');
    expect(stdout).toContain('audit: 3 requests, 5 tool spans, 23 spans, 0 violations');
  }, 120_000);
});
