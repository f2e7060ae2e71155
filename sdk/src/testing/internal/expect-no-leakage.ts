import { AssertionError } from 'node:assert';
import { auditSpans, isRequestSpan, toAuditSpan, type AuditableSpan } from '../../audit/internal/audit-spans.js';
import type { AuditReport } from '../../audit/types.js';

/**
 * Asserts that no span crossed between requests (the rules of auditSpans()).
 * Fails, listing each violation with trace id, span name, expected and
 * actual, when one did; also fails when there is no request span at all, so
 * a test whose spans never arrived cannot pass. Returns the report.
 */
export function expectNoCrossRequestLeakage(spans: Iterable<AuditableSpan>): AuditReport {
  const all = [...spans].map(toAuditSpan);
  if (!all.some(isRequestSpan)) {
    throw new AssertionError({ message: `expectNoCrossRequestLeakage: no request spans among ${all.length} spans, so nothing was audited. Did the exporter receive the spans?` });
  }
  const report = auditSpans(all);
  if (!report.ok) {
    const lines = report.violations.map((v) => `  - trace ${v.traceId} span '${v.spanName}' (${v.spanId}): ${v.check} expected ${v.expected}, actual ${v.actual}`);
    const shown = lines.slice(0, 50);
    if (lines.length > shown.length) shown.push(`  … and ${lines.length - shown.length} more`);
    throw new AssertionError({ message: `${report.violations.length} cross-request leak(s) in ${report.spans} spans:\n${shown.join('\n')}` });
  }
  return report;
}
