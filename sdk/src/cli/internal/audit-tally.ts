import { auditSpans } from '../../audit/internal/audit-spans.js';
import type { AuditReport, AuditSpan } from '../../audit/types.js';

/**
 * Audits traces one at a time as answers arrive and keeps only each trace's
 * findings, so memory grows with the traces audited, not the spans fetched.
 * Every rule of auditSpans() stays within one trace, so auditing trace by
 * trace finds exactly what auditing everything at once would.
 */
export class AuditTally {
  readonly #byTrace = new Map<string, AuditReport>();

  /** Audits one trace's spans; a trace seen before is audited again only if this copy has more spans (some were still arriving). */
  add(traceId: string, spans: readonly AuditSpan[]): void {
    const previous = this.#byTrace.get(traceId);
    if (previous && previous.spans >= spans.length) return;
    this.#byTrace.set(traceId, auditSpans(spans));
  }

  /** All traces' findings as one report. */
  report(): AuditReport {
    const total: AuditReport = { ok: true, spans: 0, traces: this.#byTrace.size, requests: 0, toolSpans: 0, violations: [], violationsByCheck: {} };
    for (const trace of this.#byTrace.values()) {
      total.spans += trace.spans;
      total.requests += trace.requests;
      total.toolSpans += trace.toolSpans;
      total.violations.push(...trace.violations);
      for (const [check, count] of Object.entries(trace.violationsByCheck)) total.violationsByCheck[check] = (total.violationsByCheck[check] ?? 0) + count;
    }
    total.ok = total.violations.length === 0;
    return total;
  }
}
