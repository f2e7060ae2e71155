// The demo's load, end to end: agent + inventory services → collector tier (a Jaeger
// binary running collector-config/otel-collector.yaml) → Jaeger (collector-config/jaeger.yaml),
// then checked through Jaeger's api/v3 and the `isotrace audit` CLI.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spansFromOtlpJson, type AuditReport, type AuditSpan } from 'isotrace/testing';
import { runNode, type NodeRun } from '../helpers/process.ts';
import { ensureJaegerBinary, queryTraces, startJaeger, type CollectorProcess, type JaegerProcess } from '../helpers/jaeger.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

interface DemoSummary {
  ok: boolean;
  requests: number;
  failures: number;
  crossed: number;
  audit: AuditReport;
}

async function runDemo(collector: CollectorProcess, jaeger: JaegerProcess, args: string[]): Promise<{ code: number | null; summary: DemoSummary; stderr: string }> {
  const result = await runNode(['examples/demo/main.ts', '--otlp', collector.otlpHttpUrl, '--jaeger', jaeger.queryUrl, '--json', ...args], { cwd: root });
  const last = result.stdout.trim().split('\n').at(-1) ?? '';
  let summary: DemoSummary;
  try {
    summary = JSON.parse(last) as DemoSummary;
  } catch {
    throw new Error(`the demo printed no JSON summary (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  }
  return { code: result.code, summary, stderr: result.stderr };
}

/** All spans Jaeger holds for `service`'s traces, once `requests` of its request spans and their downstream spans arrived. */
async function spansInJaeger(jaeger: JaegerProcess, service: string, requests: number): Promise<AuditSpan[]> {
  const deadline = Date.now() + 60_000;
  let previous = -1;
  for (;;) {
    const spans = spansFromOtlpJson(await queryTraces(jaeger.queryUrl, { service, limit: 5000 }));
    const agentRequests = spans.filter((s) => s.serviceName === service && s.attributes['isotrace.request_span'] === true).length;
    // Complete when every request arrived and one more poll brought nothing new (the collector batches).
    if (agentRequests >= requests && spans.length === previous) return spans;
    if (Date.now() > deadline) throw new Error(`Jaeger holds ${agentRequests} of ${requests} request spans of ${service} after 60 s (${spans.length} spans)`);
    previous = spans.length;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function audit(jaeger: JaegerProcess, service: string, ...extra: string[]): Promise<NodeRun> {
  return runNode(['dist/cli/isotrace.js', 'audit', '--jaeger', jaeger.queryUrl, '--service', service, '--since', '1h', '--limit', '5000', ...extra], { cwd: root });
}

describe('the demo through the collector tier into Jaeger', () => {
  let jaeger: JaegerProcess;
  let collector: CollectorProcess;
  let keepingCollector: CollectorProcess;

  beforeAll(async () => {
    await ensureJaegerBinary();
    jaeger = await startJaeger();
    collector = await startJaeger({ config: 'collector', exportTo: jaeger.otlpGrpcEndpoint });
    keepingCollector = await startJaeger({ config: 'collector', exportTo: jaeger.otlpGrpcEndpoint, keepToolArguments: true });
  }, 30 * 60_000);

  afterAll(async () => {
    await Promise.all([keepingCollector?.stop(), collector?.stop()]);
    await jaeger?.stop();
  });

  it('200 requests of 10 tenants arrive as one trace each, every hop in its caller’s trace, and the audit CLI finds them clean', async () => {
    const service = 'demo-clean';
    const { code, summary, stderr } = await runDemo(collector, jaeger, ['--service-name', service, '--tenants', '10', '--users', '40', '--turns', '5']);
    expect(code, stderr).toBe(0);
    expect(summary).toMatchObject({ ok: true, requests: 200, failures: 0, crossed: 0 });

    const spans = await spansInJaeger(jaeger, service, 200);
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const agentRequests = spans.filter((s) => s.serviceName === service && s.attributes['isotrace.request_span'] === true);
    expect(agentRequests).toHaveLength(200);
    // Every request is its own trace.
    expect(new Set(agentRequests.map((s) => s.traceId)).size).toBe(200);
    const requestOfTrace = new Map(agentRequests.map((s) => [s.traceId, s]));

    const tools = spans.filter((s) => s.attributes['gen_ai.operation.name'] === 'execute_tool');
    expect(tools.length).toBe(summary.audit.toolSpans);
    for (const tool of tools) {
      const owner = requestOfTrace.get(tool.traceId);
      expect(owner, `tool span ${tool.name} outside any request trace`).toBeDefined();
      expect(tool.name).toBe(`execute_tool ${String(tool.attributes['gen_ai.tool.name'])}`);
      expect(tool.attributes).toMatchObject({
        'gen_ai.tool.type': expect.any(String),
        'gen_ai.tool.call.id': expect.stringMatching(/^call_/),
        'gen_ai.tool.description': expect.any(String),
        'isotrace.request_id': owner!.attributes['isotrace.request_id'],
        'isotrace.correlation_id': owner!.attributes['isotrace.correlation_id'],
        'isotrace.tenant_id': owner!.attributes['isotrace.tenant_id'],
        'user.id': owner!.attributes['user.id'],
        'isotrace.registry_id': expect.stringMatching(/^user_/),
        'isotrace.audit.result': 'pass',
      });
    }

    const workerTasks = spans.filter((s) => s.name.startsWith('worker.task'));
    expect(workerTasks.length).toBeGreaterThanOrEqual(200);
    for (const task of workerTasks) {
      expect(requestOfTrace.has(task.traceId)).toBe(true);
      expect(byId.get(task.parentSpanId ?? '')?.name).toMatch(/^worker\.run/);
    }

    const downstream = spans.filter((s) => s.serviceName === 'inventory-service' && s.attributes['isotrace.request_span'] === true);
    expect(downstream.length).toBeGreaterThan(0);
    for (const call of downstream) {
      expect(requestOfTrace.has(call.traceId), 'inventory span in its caller’s trace').toBe(true);
      const parent = byId.get(call.parentSpanId ?? '');
      expect(parent?.serviceName).toBe(service);
      expect(byId.get(parent?.parentSpanId ?? '')?.name).toBe('execute_tool inventory_lookup');
    }

    const cli = await audit(jaeger, service, '--json');
    expect(cli.code, cli.stderr).toBe(0);
    const report = JSON.parse(cli.stdout) as AuditReport;
    expect(report).toMatchObject({ ok: true, violations: [], requests: summary.audit.requests, toolSpans: summary.audit.toolSpans });
    const text = await audit(jaeger, service);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`requests ${summary.audit.requests}`);
    expect(text.stdout).toContain('violations 0');
  }, 10 * 60_000);

  it('with a planted leak (a global tool registry) the audit CLI exits 1 and names the check and the trace', async () => {
    const service = 'demo-leaky';
    const { code, summary } = await runDemo(collector, jaeger, ['--service-name', service, '--tenants', '5', '--users', '10', '--turns', '2', '--plant-leak', 'global-registry']);
    expect(code).toBe(1);
    expect(summary.audit.ok).toBe(false);

    await spansInJaeger(jaeger, service, 20);
    const cli = await audit(jaeger, service);
    expect(cli.code, cli.stderr).toBe(1);
    const line = cli.stdout.split('\n').find((l) => l.includes('VIOLATION context-owner'));
    expect(line, cli.stdout).toBeDefined();
    const traceId = /\/trace\/([0-9a-f]{32})/.exec(line!)?.[1];
    expect(traceId).toBeDefined();
    expect(line).toContain(`${jaeger.queryUrl}/trace/${traceId}`);

    // The run-time counter went the metrics way: OTLP → collector tier → Prometheus endpoint.
    const metrics = await (await fetch(collector.metricsUrl!)).text();
    const contextOwner = /^isotrace_isolation_violations(?:_total)?\{[^}]*isotrace_audit_check="context-owner"[^}]*\} (\d+)/m.exec(metrics);
    expect(contextOwner, metrics.slice(0, 2000)).not.toBeNull();
    expect(Number(contextOwner![1])).toBeGreaterThan(0);
  }, 10 * 60_000);

  it('recorded tool arguments do not reach Jaeger through the collector tier unless its flag is set', async () => {
    const dropped = await runDemo(collector, jaeger, ['--service-name', 'demo-args-dropped', '--users', '4', '--turns', '1', '--record-tool-arguments']);
    const kept = await runDemo(keepingCollector, jaeger, ['--service-name', 'demo-args-kept', '--users', '4', '--turns', '1', '--record-tool-arguments']);
    expect([dropped.code, kept.code]).toEqual([0, 0]);

    const toolSpans = async (service: string): Promise<AuditSpan[]> =>
      (await spansInJaeger(jaeger, service, 4)).filter((s) => s.serviceName === service && s.attributes['gen_ai.operation.name'] === 'execute_tool');
    const withoutFlag = await toolSpans('demo-args-dropped');
    const withFlag = await toolSpans('demo-args-kept');
    expect(withoutFlag.length).toBeGreaterThan(0);
    expect(withFlag.length).toBeGreaterThan(0);
    for (const span of withoutFlag) {
      expect(span.attributes).not.toHaveProperty('gen_ai.tool.call.arguments');
      expect(span.attributes).not.toHaveProperty('gen_ai.tool.call.result');
    }
    // `remember` takes no arguments; the tools that do have them, and their results, in Jaeger.
    const withArguments = withFlag.filter((span) => span.attributes['gen_ai.tool.name'] !== 'remember');
    expect(withArguments.length).toBeGreaterThan(0);
    for (const span of withArguments) {
      expect(span.attributes['gen_ai.tool.call.arguments']).toEqual(expect.any(String));
      expect(span.attributes['gen_ai.tool.call.result']).toEqual(expect.any(String));
    }
  }, 10 * 60_000);
});
