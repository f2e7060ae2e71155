// What every host test checks after runScenario(): identity on the host's spans,
// baggage only to the propagateTo destination, audited tool spans.
import { expect } from 'vitest';
import type { AuditSpan } from 'isotrace/testing';
import { headerValues, type Recorder } from '../../fixtures/otel-hosts/recorder.ts';
import { INTRUDER, OWNER, type ScenarioResult } from '../../fixtures/otel-hosts/scenario.ts';

const TRACEPARENT = /^00-([0-9a-f]{32})-[0-9a-f]{16}-0[01]$/;

/** The request's identity on the host's own span (and, when the host exports them, on the HTTP CLIENT spans). */
export function expectIdentityOnHostSpans(spans: readonly AuditSpan[], result: ScenarioResult, { clientSpans }: { clientSpans: boolean }): void {
  const host = spans.find((span) => span.spanId === result.hostSpanId);
  expect(host, 'the host span reached the host exporter').toBeDefined();
  expect(host!.attributes).toMatchObject({ 'isotrace.request_id': result.requestId, 'isotrace.tenant_id': OWNER.tenantId, 'user.id': OWNER.userId });
  if (!clientSpans) return;
  const clients = spans.filter((span) => span.traceId === result.traceId && (span.attributes['http.request.method'] !== undefined || span.attributes['http.method'] !== undefined));
  // fetch and node:http to both destinations: one CLIENT span each (a second HTTP instrumentation would double them).
  expect(clients).toHaveLength(4);
  for (const client of clients) expect(client.attributes).toMatchObject({ 'isotrace.request_id': result.requestId, 'isotrace.tenant_id': OWNER.tenantId });
}

/** Identity baggage at the allowed destination (fetch and node:http), none at the denied one; one traceparent each, of the request's trace. */
export function expectBaggageOnlyToAllowed(allowed: Recorder, denied: Recorder, result: ScenarioResult): void {
  for (const [recorder, allowedHere] of [[allowed, true], [denied, false]] as const) {
    const calls = recorder.requests.filter((request) => request.path === '/fetch' || request.path === '/http');
    expect(calls.map((call) => call.path).sort()).toEqual(['/fetch', '/http']);
    for (const call of calls) {
      const traceparents = headerValues(call, 'traceparent');
      expect(traceparents, `one traceparent on ${call.path}`).toHaveLength(1);
      expect(TRACEPARENT.exec(traceparents[0]!)?.[1]).toBe(result.traceId);
      const baggage = headerValues(call, 'baggage').join(',');
      if (allowedHere) expect(baggage, `identity baggage on ${call.path}`).toContain(`isotrace.tenant_id=${OWNER.tenantId}`);
      else expect(baggage, `no isotrace baggage on ${call.path}`).not.toContain('isotrace.');
    }
  }
}

/** The tool call is an audited execute_tool span; the planted leak is a recorded violation. */
export function expectAuditedToolSpans(spans: readonly AuditSpan[], result: ScenarioResult): void {
  const tools = spans.filter((span) => span.name === 'execute_tool lookup');
  const passed = tools.find((span) => span.attributes['isotrace.request_id'] === result.requestId && span.traceId === result.traceId);
  expect(passed?.attributes).toMatchObject({ 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'lookup', 'isotrace.audit.result': 'pass' });
  const leaked = tools.find((span) => span.attributes['isotrace.audit.result'] === 'violation');
  expect(leaked, 'the leaked tool call was audited as a violation').toBeDefined();
  expect(leaked!.events?.map((event) => event.attributes?.['isotrace.audit.check'])).toContain('context-owner');
  expect(JSON.stringify(leaked!.events)).toContain(INTRUDER.tenantId);
}
