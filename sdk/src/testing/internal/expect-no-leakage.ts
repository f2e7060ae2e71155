import { AssertionError } from 'node:assert';
import { auditSpans, isRequestSpan, toAuditSpan, type AuditableSpan } from '../../audit/internal/audit-spans.js';
import type { AuditReport } from '../../audit/types.js';
import { RUNTIME_VIOLATIONS, type ViolationTally } from './recorded-spans.js';

/**
 * Asserts that no span crossed between requests (the rules of auditSpans()).
 * Fails, listing each violation with trace id, span name, expected and
 * actual, when one did; also fails when there is no request span at all, so
 * a test whose spans never arrived cannot pass. Given the spans of the test
 * kit (`kit.spans()`), it also fails when the run-time audits counted a
 * violation since the kit's last reset(), even one no span shows. Returns
 * the report.
 *
 * ```ts
 * expectNoCrossRequestLeakage(kit.spans());
 * ```
 */
export function expectNoCrossRequestLeakage(spans: Iterable<AuditableSpan>): AuditReport {
  const runtime = runtimeViolationsOf(spans);
  const all = [...spans].map(toAuditSpan);
  if (!all.some(isRequestSpan)) {
    throw new AssertionError({ message: `expectNoCrossRequestLeakage: no request spans among ${all.length} spans, so nothing was audited. Did the exporter receive the spans?` });
  }
  const report = auditSpans(all);
  if (!report.ok) {
    const lines = report.violations.map((v) => `  - trace ${v.traceId} span '${v.spanName}' (${v.spanId}): ${v.check} expected ${v.expected}, actual ${v.actual}`);
    const shown = lines.slice(0, 50);
    if (lines.length > shown.length) shown.push(`  … and ${lines.length - shown.length} more`);
    throw new AssertionError({ message: `${report.violations.length} cross-request leak(s) in ${report.spans} spans:\n${shown.join('\n')}${runtime ? `\n${runtime}` : ''}` });
  }
  if (runtime) throw new AssertionError({ message: `no span shows a cross-request leak, but ${runtime}` });
  return report;
}

/** A description of the run-time violations the kit counted with these spans, or undefined when there were none. */
function runtimeViolationsOf(spans: Iterable<AuditableSpan>): string | undefined {
  const tally = (spans as { [RUNTIME_VIOLATIONS]?: ViolationTally })[RUNTIME_VIOLATIONS];
  const counted = Object.entries(tally ?? {}).filter(([, count]) => count > 0);
  if (counted.length === 0) return undefined;
  const total = counted.reduce((sum, [, count]) => sum + count, 0);
  return `the run-time audits counted ${total} isolation violation(s) (isotrace.isolation.violations: ${counted.map(([check, count]) => `${check} ${count}`).join(', ')}).`;
}
