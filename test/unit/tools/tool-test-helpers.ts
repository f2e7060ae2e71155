// Small helpers shared by the tool and audit unit tests: finding spans and reading violation events.
import { expect } from 'vitest';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import type { SharedState } from 'isotrace';
import type { TestTracing } from 'isotrace/testing';
import { Tool } from 'isotrace/tools';

/** Tool spans (GenAI `execute_tool`) finished since the last reset. */
export function toolSpans(kit: TestTracing): ReadableSpan[] {
  return kit.spans().filter((span) => span.attributes['gen_ai.operation.name'] === 'execute_tool');
}

/** The one finished span named `name` (fails when there are none or several). */
export function onlySpan(kit: TestTracing, name: string): ReadableSpan {
  const found = kit.spans().filter((span) => span.name === name);
  expect(found, `spans named '${name}'`).toHaveLength(1);
  return found[0]!;
}

/** The request span of request `requestId`. */
export function requestSpanOf(kit: TestTracing, requestId: string): ReadableSpan {
  const found = kit.spans().filter((span) => span.attributes['isotrace.request_span'] === true && span.attributes['isotrace.request_id'] === requestId);
  expect(found, `request spans of ${requestId}`).toHaveLength(1);
  return found[0]!;
}

export function parentIdOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}

/** The `isotrace.isolation_violation` events of a span, as { check, expected, actual }. */
export function violationEvents(span: ReadableSpan): Array<{ check: unknown; expected: unknown; actual: unknown }> {
  return span.events
    .filter((event) => event.name === 'isotrace.isolation_violation')
    .map((event) => ({ check: event.attributes?.['isotrace.audit.check'], expected: event.attributes?.['isotrace.audit.expected'], actual: event.attributes?.['isotrace.audit.actual'] }));
}

/** Counts of `isotrace.isolation.violations` per check, to compare before and after a scenario. */
export async function violationCounts(kit: TestTracing): Promise<Record<string, number>> {
  const checks = ['context-owner', 'trace', 'baggage', 'shared-state'];
  const counts = await Promise.all(checks.map((check) => kit.violationCount(check)));
  return Object.fromEntries(checks.map((check, i) => [check, counts[i]!]));
}

/** How much each check's counter moved between two violationCounts() readings (all four checks listed). */
export function countsMoved(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(after).map((check) => [check, after[check]! - (before[check] ?? 0)]));
}

/** A tool that touches nothing of the request: returns its arguments. */
export class Echo extends Tool<unknown, unknown> {
  static override toolName = 'echo';
  static override description = 'Returns its arguments';

  run(args: unknown): unknown {
    return args;
  }
}

/** Reads `key` through the SharedState handle it is given (the leak the audits look for: a handle from another request). */
export class HandleReader extends Tool<{ state: SharedState; key: string }, unknown> {
  static override toolName = 'handle-reader';
  run({ state, key }: { state: SharedState; key: string }): Promise<unknown> {
    return state.get(key);
  }
}
