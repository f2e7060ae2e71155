// isotrace and @opentelemetry/auto-instrumentations-node, in real child processes whose
// OTLP exporters point at a local collector. Under `--import .../register` (the hook owns
// a provider no span processor can be added to) isotrace refuses loudly and the host keeps
// tracing; with the documented `--import` file that replaces the hook, it isolates.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runNode } from '../../helpers/process.ts';
import { startRecorder, type Recorder } from '../../fixtures/otel-hosts/recorder.ts';
import { HOST_SPAN, type ScenarioResult } from '../../fixtures/otel-hosts/scenario.ts';
import { expectAuditedToolSpans, expectBaggageOnlyToAllowed, expectIdentityOnHostSpans } from './host-expectations.ts';

const fixture = (name: string): string => fileURLToPath(new URL(`../../fixtures/otel-hosts/${name}`, import.meta.url));

/** OTEL_* variables of a service exporting OTLP/JSON to `collector`, with no inherited OTEL_* settings. */
function otelEnv(collector: Recorder, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('OTEL_')));
  return {
    ...env,
    OTEL_SERVICE_NAME: 'agent-api',
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.origin,
    OTEL_METRICS_EXPORTER: 'none',
    OTEL_LOGS_EXPORTER: 'none',
    OTEL_NODE_RESOURCE_DETECTORS: 'none',
    ...extra,
  };
}

describe('under --import @opentelemetry/auto-instrumentations-node/register', () => {
  let collector: Recorder;
  beforeAll(async () => {
    collector = await startRecorder();
  });
  afterAll(async () => {
    await collector?.close();
  });

  async function runUnderRegisterHook(extra: Record<string, string> = {}) {
    const run = await runNode(['--import', '@opentelemetry/auto-instrumentations-node/register', fixture('register-hook-app.ts')], {
      env: otelEnv(collector, { OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'http,undici', ALLOWED_HOST: 'inventory.internal', ...extra }),
    });
    expect(run.code, run.stderr).toBe(0);
    return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Record<'startTracingOutcome' | 'attachOutcome', { name: string; message: string; missing?: string[] }>;
  }

  it('startTracing() rejects, pointing to createIsotrace, and attach() refuses, naming the span processor and the baggage propagator', async () => {
    const { startTracingOutcome, attachOutcome } = await runUnderRegisterHook();
    expect(startTracingOutcome.name).toBe('IsotraceSetupError');
    expect(startTracingOutcome.message).toMatch(/createIsotrace/);
    expect(attachOutcome.name).toBe('IsotraceSetupError');
    expect([...attachOutcome.missing!].sort()).toEqual(['baggage', 'propagator', 'span-processor']);
    expect(attachOutcome.message).toMatch(/auto-instrumentations-node\/register/);
    await collector.waitFor(() => collector.spans().some((span) => span.name === 'host span beside a refused isotrace'), "the host's span");
  });

  it('still refuses with OTEL_PROPAGATORS=none: the hook’s provider takes no isotrace span processor', async () => {
    const { attachOutcome } = await runUnderRegisterHook({ OTEL_PROPAGATORS: 'none' });
    expect(attachOutcome.name).toBe('IsotraceSetupError');
    expect([...attachOutcome.missing!].sort()).toEqual(['propagator', 'span-processor']);
  });
});

describe('with the --import file that replaces the register hook (getNodeAutoInstrumentations + isotrace)', () => {
  let collector: Recorder;
  let allowed: Recorder;
  let denied: Recorder;
  let result: ScenarioResult;
  let violations: number;

  beforeAll(async () => {
    [collector, allowed, denied] = await Promise.all([startRecorder(), startRecorder(), startRecorder()]);
    const run = await runNode(['--import', fixture('auto-instrumentations-telemetry.ts'), fixture('auto-instrumentations-app.ts')], {
      env: otelEnv(collector, {
        OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'fs,net,dns',
        ISOTRACE_PROPAGATE_TO: `127.0.0.1:${allowed.port}`,
        ALLOWED: allowed.origin,
        DENIED: denied.origin,
      }),
    });
    expect(run.code, run.stderr).toBe(0);
    ({ result, violations } = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { result: ScenarioResult; violations: number });
    await collector.waitFor(() => collector.spans().some((span) => span.name === `${HOST_SPAN} after shutdown`), 'the spans of the run');
  });
  afterAll(async () => {
    await Promise.all([collector, allowed, denied].map((recorder) => recorder?.close()));
  });

  it("stamps the request identity on the host's spans, the auto-instrumentations' own included", () => {
    const spans = collector.spans();
    expectIdentityOnHostSpans(spans, result, { clientSpans: true });
    const autoSpans = spans.filter((span) => span.traceId === result.traceId && /^(fs |tcp\.connect|dns\.)/.test(span.name));
    expect(autoSpans.length, `auto-instrumentation spans in ${spans.map((span) => span.name).join(', ')}`).toBeGreaterThan(0);
    for (const span of autoSpans) expect(span.attributes).toMatchObject({ 'isotrace.request_id': result.requestId, 'isotrace.tenant_id': 'acme' });
  });

  it('sends identity baggage only to the propagateTo destination', () => {
    expectBaggageOnlyToAllowed(allowed, denied, result);
  });

  it("exports isotrace's audited tool spans through the host's exporter and counts the planted leak", () => {
    expectAuditedToolSpans(collector.spans(), result);
    expect(violations).toBeGreaterThanOrEqual(1);
  });

  it("keeps the host's tracing running after isotrace's shutdown", () => {
    expect(collector.spans().map((span) => span.name)).toContain(`${HOST_SPAN} after shutdown`);
  });
});
